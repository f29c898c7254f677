"""Submit jobs with submitit: `SlurmExecutor` on Slurm clusters, `LocalExecutor` on `local`.

With `dry_run=True` nothing is submitted: the exact sbatch script submitit would write (or, locally,
the command and its env) is printed instead, job by job, with placeholder ids for the dependencies.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Iterator, Optional

from .cluster import ClusterConfig, parse_time_minutes
from .job import FINAL_SLURM_STATES, Job, JobHandle, slurm_states
from .job_runner import JobSpec, LocalUpstream, run_job
from .local_slots import LocalSlots

LOCAL_DEFAULT_TIME = "10-00:00:00"  # local jobs still need a limit for submitit; ten days is none in practice
_DRY_RUN_IDS = itertools.count(1)


class DependencyError(RuntimeError):
    """A dependency that can never be satisfied (its upstream failed) or that mixes executors."""


def submit_job(job: Job, cluster: ClusterConfig, dry_run: bool = False) -> JobHandle:
    """Submit one job; return its handle (printing what would run instead, in a dry run)."""
    if dry_run and cluster.missing_env():
        print(
            f"# warning: env var(s) {', '.join(cluster.missing_env())} named in cluster config '{cluster.name}' "
            "are not set here; a real submission would stop with an error",
            flush=True,
        )
    if cluster.executor == "slurm":
        return _submit_slurm(job, cluster, dry_run)
    return _submit_local(job, cluster, dry_run)


# ----------------------------------------------------------------------------- slurm


def slurm_dependency(job: Job) -> Optional[str]:
    """`afterok:1:2,afterany:3` for the upstream jobs still to finish.

    An upstream already COMPLETED needs no dependency; one that ended otherwise is an error for
    afterok (the job could never start) and no dependency for afterany.
    """
    live = [d for d in job.dependencies if d.upstream.executor == "slurm"]
    for dep in job.dependencies:
        if dep.upstream.executor == "local":
            raise DependencyError(f"{job.name} runs on Slurm but depends on local job {dep.upstream.name}")
    states = slurm_states([d.upstream.job_id for d in live])
    ids: dict[str, list[str]] = {"afterok": [], "afterany": []}
    for dep in job.dependencies:
        up = dep.upstream
        if up.executor == "dry_run":
            ids[dep.kind].append(up.job_id)
            continue
        state = states.get(up.job_id, "UNKNOWN")
        if state == "COMPLETED":
            continue
        if state in FINAL_SLURM_STATES:
            if dep.kind == "afterok":
                raise DependencyError(
                    f"{job.name} needs {up.name} (job {up.job_id}) to succeed, but it ended {state}; "
                    f"see {up.stdout_path}"
                )
            continue
        ids[dep.kind].append(up.job_id)
    parts = [f"{kind}:{':'.join(job_ids)}" for kind, job_ids in ids.items() if job_ids]
    return ",".join(parts) or None


def _slurm_executor(job: Job, cluster: ClusterConfig, dependency: Optional[str], dry_run: bool = False):
    import submitit

    container = cluster.container_args(job.container)
    # inside a container the launcher's interpreter path does not exist; the image's python runs the job
    executor = submitit.SlurmExecutor(folder=job.log_dir, python="python" if container else None)
    params: dict = {
        "job_name": f"{cluster.job_name_prefix}{job.name}",
        "time": parse_time_minutes(job.time or cluster.time or "04:00:00"),
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
    if cluster.sbatch_args:
        params["additional_parameters"] = dict(cluster.sbatch_args)
    if container:
        params["srun_args"] = container
    env = cluster.explicit_env() if dry_run else cluster.env()
    if env:
        params["setup"] = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    if job.gpus_per_node > cluster.gpus_per_node:
        raise ValueError(
            f"{job.name} asks for {job.gpus_per_node} GPUs per node; cluster '{cluster.name}' has {cluster.gpus_per_node}"
        )
    executor.update_parameters(**params)
    return executor


def _submit_slurm(job: Job, cluster: ClusterConfig, dry_run: bool) -> JobHandle:
    dependency = slurm_dependency(job)
    executor = _slurm_executor(job, cluster, dependency, dry_run)
    spec = JobSpec(
        name=job.name,
        command=job.command,
        env=dict(job.env),
        services=list(job.services),
        log_dir=str(job.log_dir),
        next_commands=list(job.next_commands),
    )
    if dry_run:
        job_id = f"dryrun-{next(_DRY_RUN_IDS)}"
        script = executor._make_submission_file_text(executor._submitit_command_str, uid="<uid>")
        _print_dry_run(job, job_id, "slurm", spec, script)
        return JobHandle(job.name, job_id, "dry_run", job.log_dir)
    job.log_dir.mkdir(parents=True, exist_ok=True)
    submitted = executor.submit(run_job, spec)
    return JobHandle(job.name, str(submitted.job_id), "slurm", job.log_dir, submitted)


# ----------------------------------------------------------------------------- local


def _local_upstreams(job: Job) -> list[LocalUpstream]:
    upstreams = []
    for dep in job.dependencies:
        up = dep.upstream
        if up.executor == "slurm":
            raise DependencyError(f"{job.name} runs locally but depends on Slurm job {up.name}")
        if up.executor == "local":
            upstreams.append(LocalUpstream(up.name, up.job_id, str(up.result_pickle), dep.kind))
    return upstreams


def _submit_local(job: Job, cluster: ClusterConfig, dry_run: bool) -> JobHandle:
    import submitit

    cluster_env = cluster.explicit_env() if dry_run else cluster.env()
    spec = JobSpec(
        name=job.name,
        command=job.command,
        env={**cluster_env, **job.env},
        wait_for=_local_upstreams(job),
        services=list(job.services),
        log_dir=str(job.log_dir),
        next_commands=list(job.next_commands),
    )
    if cluster.max_parallel_jobs and job.takes_local_slot:
        spec.slots = LocalSlots.for_cluster(cluster.name, cluster.max_parallel_jobs)
    if dry_run:
        job_id = f"dryrun-{next(_DRY_RUN_IDS)}"
        after = ", ".join(f"{d.kind}:{d.upstream.job_id}" for d in job.dependencies) or "none"
        limit = f"; then a free slot of {spec.slots.count} in {spec.slots.folder}" if spec.slots else ""
        _print_dry_run(job, job_id, "local", spec, f"# runs as a local child process; starts after: {after}{limit}")
        return JobHandle(job.name, job_id, "dry_run", job.log_dir)
    executor = submitit.LocalExecutor(folder=job.log_dir)
    params: dict = {"timeout_min": parse_time_minutes(job.time or cluster.time or LOCAL_DEFAULT_TIME)}
    if job.gpus_per_node:
        params["gpus_per_node"] = job.gpus_per_node
    executor.update_parameters(**params)
    job.log_dir.mkdir(parents=True, exist_ok=True)
    with _stderr_to(job.log_dir / CONTROLLER_LOG), _interruptible_children():
        submitted = executor.submit(run_job, spec)
    return JobHandle(job.name, str(submitted.job_id), "local", job.log_dir, submitted)


CONTROLLER_LOG = "local_controller.log"
"""Where the stderr of submitit's local controller processes goes (the jobs' own output has its log files)."""


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Point file descriptor 2 at `path` while submitit starts a local job's controller, which inherits it.

    Stopped by Ctrl-C or a cancel, the controller prints its own KeyboardInterrupt traceback, which on the
    launcher's terminal reads like a crash of the launcher; in the log it stays available and out of the way.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _interruptible_children() -> Iterator[None]:
    """Start local job controllers with SIGINT handled, even when this launcher ignores it.

    Stopping a local job is a SIGINT to its controller (submitit's `cancel`), which passes it on to the
    job. A launcher started in the background by a script (`assay eval ... &`) ignores SIGINT, and an
    ignored signal stays ignored in every process it starts: its jobs would outlive a `kill` of the
    launcher. A handled signal is reset to its default in a child, so the controllers get Python's usual
    KeyboardInterrupt. Main thread only (the only one that may set handlers).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    ):
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _print_dry_run(job: Job, job_id: str, executor: str, spec: JobSpec, script: str) -> None:
    lines = [
        f"### {job.name} [{job_id}] on {executor} (dry run: nothing submitted)",
        f"# command(s) run on the node:\n{job.command_line()}",
    ]
    for service in spec.services:
        lines.append(
            f"# service {service.name} started first, healthy at {service.health_url} ({{port}}: a free port):\n"
            + shlex.join(service.command)
        )
    if spec.env:
        lines.append("# env set for the command:\n" + "\n".join(f"{k}={shlex.quote(v)}" for k, v in spec.env.items()))
    lines.append(f"# logs: {job.log_dir}/")
    lines.append(script.rstrip())
    print("\n".join(lines) + "\n", flush=True)
