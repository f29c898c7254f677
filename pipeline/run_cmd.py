"""`run_cmd`: run any shell command as a job, the smallest complete pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .cluster import load_cluster_config
from .experiment import Experiment, RunAfter, submit_experiment, wait_for
from .job import Job
from .wrap import extra_args


def run_cmd(
    command: str,
    cluster: str = "local",
    expname: str = "run_cmd",
    output_dir: str = "./assay_output",
    num_gpus: int = 0,
    num_nodes: int = 1,
    time: Optional[str] = None,
    run_after: RunAfter = None,
    dependency_type: str = "afterok",
    dependent_jobs: int = 0,
    dry_run: bool = False,
    wait: Optional[bool] = None,
    ctx=None,
) -> Experiment:
    """Run a shell command as a job on a cluster.

    Args:
        command: The shell command, run with `bash -c` on the node.
        cluster: Cluster config name (a YAML in cluster_configs/) or path.
        expname: Experiment name: the job's name, and what `run_after` refers to.
        output_dir: Logs go to `<output_dir>/logs/<expname>/`.
        num_gpus: GPUs per node for the job.
        num_nodes: Nodes for the job.
        time: Time limit (Slurm format, e.g. 01:00:00); the cluster's default when unset.
        run_after: Expname(s) this job waits for (comma-separated or a list).
        dependency_type: afterok (start only if every upstream job succeeded) or afterany.
        dependent_jobs: Follow-up copies of the job, each starting after the previous ends, for short time limits.
        dry_run: Print what would be submitted (the sbatch script or local command) and submit nothing.
        wait: Wait for the jobs to end and raise on failure; default: yes on local clusters, no on Slurm.
        ctx: Extra arguments appended to the command (from `wrap_arguments` or the CLI).
    """
    cluster_cfg = load_cluster_config(cluster)
    full_command = command
    extra = extra_args(ctx)
    if extra:
        import shlex

        full_command = f"{command} {shlex.join(extra)}"
    job = Job(
        name=expname,
        command=["bash", "-c", full_command],
        output_dir=Path(output_dir).absolute(),
        nodes=num_nodes,
        gpus_per_node=num_gpus,
        time=time,
    )
    experiment = submit_experiment(
        cluster_cfg,
        expname,
        [job],
        run_after=run_after,
        dependency_type=dependency_type,
        dependent_jobs=dependent_jobs,
        dry_run=dry_run,
    )
    if wait_for([experiment], cluster_cfg, wait, dry_run):
        for handle in experiment.final:
            print(f"{handle.name}: job {handle.job_id} COMPLETED; log {handle.stdout_path}", flush=True)
    return experiment
