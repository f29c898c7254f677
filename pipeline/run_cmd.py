"""`run_cmd`: run any shell command as a job, the smallest complete pipeline."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

from .cluster import load_cluster_config, node_python
from .experiment import Experiment, submit, wait_for
from .job import Job
from .job_options import JOB_DEFAULTS, JobOptions, takes_job_options
from .server_options import SERVER_DEFAULTS, ServerOptions, ServerSetup, takes_server_options
from .wrap import extra_args


@takes_job_options(expname="run_cmd")
@takes_server_options(("num_jobs",))
def run_cmd(
    command: str,
    output_dir: str = "./assay_output",
    num_gpus: int = 0,
    num_nodes: int = 1,
    ctx=None,
    *,
    model: Optional[str] = None,
    server: ServerOptions = SERVER_DEFAULTS,
    options: JobOptions = JOB_DEFAULTS,
) -> Experiment:
    """Run a shell command as a job on a cluster, with a model server and a sandbox beside it if asked.

    With `model`, a server (server_type, server_gpus, ...) is started in the job before the command, or
    server_address is used; the command finds it in $ASSAY_SERVER_URL (an OpenAI-compatible base URL) and
    $ASSAY_SERVER_MODEL (the name to request). With with_sandbox, the sandbox's URL is in $ASSAY_SANDBOX_URL
    (and its token in $ASSAY_SANDBOX_TOKEN).

    Args:
        command: The shell command, run with `bash -c` on the node.
        output_dir: Logs go to `<output_dir>/logs/<expname>/`.
        num_gpus: GPUs per node for the command (a server started beside it uses the first server_gpus of the job's GPUs).
        num_nodes: Nodes for the job.
        ctx: Extra arguments appended to the command (from `wrap_arguments` or the CLI).
        model: Serve this model beside the command (a path, a served name, or the alias smollm2); none when unset.
    """
    cluster_cfg = load_cluster_config(options.cluster)
    full_command = command
    extra = extra_args(ctx)
    if extra:
        full_command = f"{command} {shlex.join(extra)}"
    setup = ServerSetup.of(model, server)
    if model:
        setup.check()
    job = Job(
        name=options.expname,
        command=["bash", "-c", full_command],
        output_dir=Path(output_dir).absolute(),
        nodes=num_nodes,
        gpus_per_node=num_gpus,
        time=options.time,
    )
    setup.attach(job, node_python(cluster_cfg))  # a server only with a model; the sandbox with with_sandbox
    if model:
        job.env.update(setup.command_env())
    experiment = submit(cluster_cfg, options, [job])
    if wait_for([experiment], cluster_cfg, options.wait, options.dry_run):
        for handle in experiment.final:
            print(f"{handle.name}: job {handle.job_id} COMPLETED; log {handle.stdout_path}", flush=True)
    return experiment
