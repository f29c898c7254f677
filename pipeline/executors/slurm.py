"""The Slurm executor: one sbatch submission per job through submitit's `SlurmExecutor`.

Dependencies become `--dependency=afterok:ID,...` with `--kill-on-invalid-dep=yes`, so a job whose
upstream fails after submission is cancelled by Slurm instead of pending forever. An upstream that already
ended is checked first, so a job that could never start is an error at submission; one that Slurm no
longer knows (purged from its accounting) is judged by the result file it left, or stops the submission.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Optional

from ...core.config import ConfigError
from ..cluster import ClusterConfig, parse_time_minutes
from ..job import FINAL_STATES, Job, JobHandle
from ..job_runner import JobSpec, run_job
from ..mounts import in_container, parse_mounts, require_all_mounted, require_mounted, to_container
from . import (
    EXECUTORS,
    DependencyError,
    Executor,
    SubmissionError,
    next_dry_run_id,
    print_dry_run,
    upstream_handles,
    upstreams_on,
)
from .slurm_steps import service_steps

DEFAULT_TIME = "04:00:00"
"""A job's time limit when neither the job nor the cluster config sets one."""


@EXECUTORS.register("slurm")
class SlurmExecutor(Executor):
    name = "slurm"
    multi_node = True

    def check_job(self, job: Job, cluster: ClusterConfig) -> None:
        if job.gpus_per_node > cluster.gpus_per_node:
            raise ConfigError(
                f"{job.name} asks for {job.gpus_per_node} GPUs per node; cluster '{cluster.name}' has "
                f"{cluster.gpus_per_node} (gpus_per_node in its config)"
            )
        if cluster.container_args(job.container) and job.container_paths:
            mounts = parse_mounts(cluster.mounts)
            require_mounted(f"{job.name}'s log folder", str(job.log_dir), mounts, cluster.name)
            require_all_mounted(job, mounts, cluster.name)
        service_steps(job, _job_spec(job), cluster)  # a service step that cannot be built stops the submission now

    def submit(self, job: Job, cluster: ClusterConfig, dry_run: bool) -> JobHandle:
        self.check_job(job, cluster)
        dependency = slurm_dependency(job)
        steps, spec = service_steps(job, _job_spec(job), cluster)
        executor = _submitit_executor(job, cluster, dependency, dry_run, steps)
        if cluster.container_args(job.container) and job.container_paths:
            spec = in_container(spec, parse_mounts(cluster.mounts))
        if dry_run:
            job_id = next_dry_run_id()
            script = executor._make_submission_file_text(executor._submitit_command_str, uid="<uid>")
            print_dry_run(job, job_id, self.name, spec, script)
            return JobHandle(job.name, job_id, self.name, job.log_dir, dry_run=True)
        job.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            submitted = executor.submit(run_job, spec)
        except Exception as exc:  # noqa: BLE001 - submitit wraps sbatch's refusal in several error types
            raise SubmissionError(f"sbatch refused {job.name}: {str(exc).strip()[-1500:]}") from None
        after_ok = [up for kind, up in upstream_handles(job) if kind == "afterok" and not up.dry_run]
        mounts = parse_mounts(cluster.mounts) if cluster.container_args(job.container) and job.container_paths else []
        return JobHandle(
            job.name, str(submitted.job_id), self.name, job.log_dir, submitted, after_ok=after_ok, mounts=mounts
        )

    def state(self, handle: JobHandle) -> str:
        return slurm_states([handle.job_id]).get(handle.job_id, "UNKNOWN")

    def cancel(self, handle: JobHandle) -> None:
        subprocess.run(["scancel", handle.job_id], check=True, capture_output=True)


def _job_spec(job: Job) -> JobSpec:
    return JobSpec(
        name=job.name,
        command=job.command,
        env=dict(job.env),
        services=list(job.services),
        log_dir=str(job.log_dir),
        next_commands=list(job.next_commands),
    )


def _container_executor(folder: Path, container_folder: str):
    """submitit's SlurmExecutor, except that the job inside the container reads its pickle from the container's
    name for the log folder (sbatch and srun, on the host, still write the logs under the host's name)."""
    import submitit

    class ContainerExecutor(submitit.SlurmExecutor):
        @property
        def _submitit_command_str(self) -> str:
            return " ".join([self.python, "-u -m submitit.core._submit", shlex.quote(container_folder)])

    return ContainerExecutor(folder=folder, python="python")


def slurm_dependency(job: Job) -> Optional[str]:
    """`afterok:1:2,afterany:3` for the upstream jobs still to finish.

    An upstream already COMPLETED needs no dependency; one that ended otherwise is an error for
    afterok (the job could never start) and no dependency for afterany.
    """
    live = upstreams_on(job, "slurm")
    states = slurm_states([up.job_id for _, up in live])
    ids: dict[str, list[str]] = {"afterok": [], "afterany": []}
    for kind, up in upstream_handles(job):
        if up.dry_run:
            ids[kind].append(up.job_id)
            continue
        state = states.get(up.job_id, "UNKNOWN")
        if state == "UNKNOWN":
            state = _state_from_result_file(job, up)
        if state == "COMPLETED":
            continue
        if state in FINAL_STATES:
            if kind == "afterok":
                raise DependencyError(
                    f"{job.name} needs {up.name} (job {up.job_id}) to succeed, but it ended {state}; "
                    f"see {up.stdout_path}"
                )
            continue
        ids[kind].append(up.job_id)
    parts = [f"{kind}:{':'.join(job_ids)}" for kind, job_ids in ids.items() if job_ids]
    return ",".join(parts) or None


def _state_from_result_file(job: Job, up: JobHandle) -> str:
    """COMPLETED or FAILED from the result file submitit left in the upstream's log folder, for a job Slurm no
    longer lists; DependencyError when there is none (nothing says whether it ever succeeded)."""
    import pickle

    from submitit.core.utils import JobPaths

    path = JobPaths(up.log_dir, up.job_id, 0).result_pickle
    try:
        with open(path, "rb") as f:
            outcome = pickle.load(f)[0]
    except FileNotFoundError:
        raise DependencyError(
            f"{job.name} depends on {up.name} (job {up.job_id}), which Slurm no longer knows (neither sacct nor "
            f"squeue list it) and which left no result in {up.log_dir}; submit that stage again, or drop run_after"
        ) from None
    except (OSError, pickle.UnpicklingError, EOFError, IndexError, TypeError):
        return "FAILED"
    return "COMPLETED" if outcome == "success" else "FAILED"


def _submitit_executor(
    job: Job, cluster: ClusterConfig, dependency: Optional[str], dry_run: bool = False, steps: Optional[list] = None
):
    """submitit's executor for the job; `steps`: batch-script lines that start its services (slurm_steps.py)."""
    import submitit

    container = cluster.container_args(job.container)
    if container:  # the image's python runs the job, from the container's name for the log folder
        mounts = parse_mounts(cluster.mounts) if job.container_paths else []
        inside = to_container(str(job.log_dir), mounts) or str(job.log_dir)
        executor = _container_executor(job.log_dir, inside)
    else:
        executor = submitit.SlurmExecutor(folder=job.log_dir)
    params: dict = {
        "job_name": f"{cluster.job_name_prefix}{job.name}",
        "time": parse_time_minutes(job.time or cluster.time or DEFAULT_TIME),
        "nodes": job.nodes,
        "ntasks_per_node": 1,
        "signal_delay_s": cluster.signal_delay_s,
    }
    optional = {
        "partition": cluster.partition,
        "account": cluster.account,
        "gpus_per_node": job.gpus_per_node or None,
        "cpus_per_task": job.cpus_per_task or cluster.cpus_per_task,
        "mem": job.mem or cluster.mem,
        "dependency": dependency,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    extra = dict(cluster.sbatch_args or {})
    if dependency:
        extra["kill_on_invalid_dep"] = "yes"  # an upstream that fails later cancels this job, never strands it
    if extra:
        params["additional_parameters"] = extra
    if container:
        params["srun_args"] = container
    env = cluster.explicit_env() if dry_run else cluster.env()
    setup = [f"export {k}={shlex.quote(v)}" for k, v in env.items()] + list(steps or [])
    if setup:
        params["setup"] = setup
    executor.update_parameters(**params)
    return executor


def slurm_states(job_ids: list[str]) -> dict[str, str]:
    """Current Slurm state of each job id, from sacct (squeue for jobs sacct does not know yet)."""
    if not job_ids:
        return {}
    states: dict[str, str] = {}
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in out.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2:
            states[parts[0]] = parts[1].split()[0]  # "CANCELLED by 0" -> CANCELLED
    missing = [j for j in job_ids if j not in states]
    if missing:
        out = subprocess.run(
            ["squeue", "-h", "-o", "%i|%T", "-j", ",".join(missing)], capture_output=True, text=True, check=False
        )
        for line in out.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 2:
                states[parts[0]] = parts[1]
    return states
