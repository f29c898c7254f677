"""`run_cmd`: run any shell command as a job, the smallest complete pipeline."""

from __future__ import annotations

import shlex
from pathlib import Path

from .cluster import load_cluster_config
from .experiment import Experiment, submit, wait_for
from .job import Job
from .job_options import JOB_DEFAULTS, JobOptions, takes_job_options
from .wrap import extra_args


@takes_job_options(expname="run_cmd")
def run_cmd(
    command: str,
    output_dir: str = "./assay_output",
    num_gpus: int = 0,
    num_nodes: int = 1,
    ctx=None,
    options: JobOptions = JOB_DEFAULTS,
) -> Experiment:
    """Run a shell command as a job on a cluster.

    Args:
        command: The shell command, run with `bash -c` on the node.
        output_dir: Logs go to `<output_dir>/logs/<expname>/`.
        num_gpus: GPUs per node for the job.
        num_nodes: Nodes for the job.
        ctx: Extra arguments appended to the command (from `wrap_arguments` or the CLI).
    """
    cluster_cfg = load_cluster_config(options.cluster)
    full_command = command
    extra = extra_args(ctx)
    if extra:
        full_command = f"{command} {shlex.join(extra)}"
    job = Job(
        name=options.expname,
        command=["bash", "-c", full_command],
        output_dir=Path(output_dir).absolute(),
        nodes=num_nodes,
        gpus_per_node=num_gpus,
        time=options.time,
    )
    experiment = submit(cluster_cfg, options, [job])
    if wait_for([experiment], cluster_cfg, options.wait, options.dry_run):
        for handle in experiment.final:
            print(f"{handle.name}: job {handle.job_id} COMPLETED; log {handle.stdout_path}", flush=True)
    return experiment
