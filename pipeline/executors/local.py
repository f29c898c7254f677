"""The local executor: each job is a child process of the launcher, through submitit's `LocalExecutor`.

Dependencies are waited for by the job itself (its runner polls the upstream's result file), and a
cluster's `max_parallel_jobs` is a set of slots shared by every launcher on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Iterator

from ...core.config import ConfigError
from ..cluster import ClusterConfig, ClusterConfigError, parse_time_minutes
from ..job import Job, JobHandle
from ..job_runner import JobSpec, LocalUpstream, run_job, upstream_outcome
from ..local_slots import LocalSlots
from . import EXECUTORS, Executor, next_dry_run_id, print_dry_run, upstream_handles, upstreams_on
from .local_containers import check_runtime, in_containers

DEFAULT_TIME = "10-00:00:00"
"""Local jobs still need a limit for submitit; ten days is none in practice."""

CONTROLLER_LOG = "local_controller.log"
"""Where the stderr of submitit's local controller processes goes (the jobs' own output has its log files)."""


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    name = "local"
    waits_by_default = stops_with_launcher = shares_one_machine = True  # see Executor for what each means

    def check_cluster(self, cluster: ClusterConfig) -> None:
        if cluster.containers:
            try:
                check_runtime(cluster)
            except ConfigError as exc:
                raise ClusterConfigError(str(exc)) from None

    def check_job(self, job: Job, cluster: ClusterConfig) -> None:
        if cluster.containers:  # what cannot run stops the submission now (upstreams are not submitted yet)
            in_containers(job, self._spec(job, cluster, dry_run=True, upstreams=False), cluster)

    def submit(self, job: Job, cluster: ClusterConfig, dry_run: bool) -> JobHandle:
        import submitit

        spec = self._spec(job, cluster, dry_run)
        if cluster.containers:
            spec = in_containers(job, spec, cluster)
        if cluster.max_parallel_jobs and job.takes_local_slot:
            spec.slots = LocalSlots.for_cluster(cluster.name, cluster.max_parallel_jobs)
        if dry_run:
            job_id = next_dry_run_id()
            after = ", ".join(f"{kind}:{up.job_id}" for kind, up in upstream_handles(job)) or "none"
            limit = f"; then a free slot of {spec.slots.count} in {spec.slots.folder}" if spec.slots else ""
            print_dry_run(
                job, job_id, self.name, spec, f"# runs as a local child process; starts after: {after}{limit}"
            )
            return JobHandle(job.name, job_id, self.name, job.log_dir, dry_run=True)
        executor = submitit.LocalExecutor(folder=job.log_dir)
        params: dict = {"timeout_min": parse_time_minutes(job.time or cluster.time or DEFAULT_TIME)}
        if job.gpus_per_node:
            params["gpus_per_node"] = job.gpus_per_node
        executor.update_parameters(**params)
        job.log_dir.mkdir(parents=True, exist_ok=True)
        with _stderr_to(job.log_dir / CONTROLLER_LOG), _interruptible_children():
            submitted = executor.submit(run_job, spec)
        return JobHandle(job.name, str(submitted.job_id), self.name, job.log_dir, submitted)

    def _spec(self, job: Job, cluster: ClusterConfig, dry_run: bool, upstreams: bool = True) -> JobSpec:
        cluster_env = cluster.explicit_env() if dry_run else cluster.env()
        waits = (
            [
                LocalUpstream(up.name, up.job_id, str(up.result_pickle), kind)
                for kind, up in upstreams_on(job, self.name)
            ]
            if upstreams
            else []
        )
        return JobSpec(
            name=job.name,
            command=job.command,
            env={**cluster_env, **job.env},
            wait_for=waits,
            services=list(job.services),
            log_dir=str(job.log_dir),
            next_commands=list(job.next_commands),
        )

    def state(self, handle: JobHandle) -> str:
        outcome = upstream_outcome(LocalUpstream(handle.name, handle.job_id, str(handle.result_pickle)))
        return {"success": "COMPLETED", "error": "FAILED", None: "RUNNING"}[outcome]

    def cancel(self, handle: JobHandle) -> None:
        """SIGINT to the local process, which stops its command (a handle read back from disk has none)."""
        if handle.submitit_job is not None:
            handle.submitit_job.cancel()


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
