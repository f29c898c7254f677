"""Executors: where a job runs. One module per executor (local.py, slurm.py), chosen by the cluster
config's `executor` field through `EXECUTORS`.

An executor submits a `Job` and gives back a `JobHandle`; it also answers for the handles it made (their
state, how to cancel them) and for the choices that differ between executors (whether the launcher waits by
default, whether a job can span nodes). Adding an executor is one module here that subclasses `Executor`
and registers itself: `@EXECUTORS.register("name")`.

With `dry_run=True` nothing is submitted: the exact sbatch script submitit would write (or, locally, the
command and its env) is printed instead, job by job, with placeholder ids for the dependencies.
"""

from __future__ import annotations

import itertools
import shlex
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, cast

from ...core.registry import Registry

if TYPE_CHECKING:
    from ..cluster import ClusterConfig
    from ..job import Job, JobHandle
    from ..job_runner import JobSpec


class DependencyError(RuntimeError):
    """A dependency that can never be satisfied (its upstream failed) or that mixes executors."""


class SubmissionError(RuntimeError):
    """The scheduler refused a job (sbatch's own message is in it)."""


class Executor(ABC):
    """How jobs are submitted to one kind of cluster, and how their handles are followed."""

    name: str = ""
    waits_by_default: bool = False
    """Whether a pipeline call waits for its jobs (and shows their output) unless told otherwise. Local jobs
    are children of the launcher, so it stays with them; Slurm jobs live on without it."""
    stops_with_launcher: bool = False
    """Whether an interrupted launcher stops the jobs it started (Ctrl-C while waiting)."""
    multi_node: bool = False
    """Whether one job can span several nodes."""
    shares_one_machine: bool = False
    """Whether all jobs run on the launcher's machine (then a generation starts one model server, not one per
    task)."""

    def check_cluster(self, cluster: ClusterConfig) -> None:
        """Refuse cluster-config fields this executor cannot honour (raise ClusterConfigError); none by default."""
        return None

    def check_job(self, job: Job, cluster: ClusterConfig) -> None:
        """Refuse a job the cluster cannot run (raise ValueError); called for every job of an experiment before
        the first is submitted, so a bad one never leaves the others half-submitted. Nothing by default."""
        return None

    @abstractmethod
    def submit(self, job: Job, cluster: ClusterConfig, dry_run: bool) -> JobHandle:
        """Submit one job (or, in a dry run, print what would be submitted) and return its handle."""

    @abstractmethod
    def state(self, handle: JobHandle) -> str:
        """Scheduler state in Slurm's words: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ..."""

    @abstractmethod
    def cancel(self, handle: JobHandle) -> None:
        """Stop the job."""


EXECUTORS: Registry[Executor] = Registry(
    "executor", __name__, "Add one with a module in assay/pipeline/executors/ (see its __init__.py)."
)


def get_executor(name: str) -> Executor:
    """The executor named by a cluster config (an UnknownNameError lists the known ones)."""
    return EXECUTORS.get(name)


def submit_job(job: Job, cluster: ClusterConfig, dry_run: bool = False) -> JobHandle:
    """Submit one job with its cluster's executor; return its handle (printing what would run, in a dry run)."""
    if dry_run and cluster.missing_env():
        print(
            f"# warning: env var(s) {', '.join(cluster.missing_env())} named in cluster config '{cluster.name}' "
            "are not set here; a real submission would stop with an error",
            flush=True,
        )
    return get_executor(cluster.executor).submit(job, cluster, dry_run)


_DRY_RUN_IDS = itertools.count(1)


def next_dry_run_id() -> str:
    """A placeholder job id, unique in this launcher, that later jobs of the dry run depend on."""
    return f"dryrun-{next(_DRY_RUN_IDS)}"


def print_dry_run(job: Job, job_id: str, executor: str, spec: JobSpec, script: str) -> None:
    """What a job would run: its commands, the services started beside them, env, logs, and the script."""
    lines = [
        f"### {job.name} [{job_id}] on {executor} (dry run: nothing submitted)",
        "# command(s) run on the node:\n" + "\n".join(shlex.join(c) for c in [spec.command, *spec.next_commands]),
    ]
    for service in spec.services:
        if service.own_step:
            url = service.health_url.replace("{port}", str(service.port))
            lines.append(f"# service {service.name}: its own step, started by the batch script below, healthy at {url}")
            continue
        lines.append(
            f"# service {service.name} started first, healthy at {service.health_url} ({{port}}: a free port):\n"
            + shlex.join(service.command)
        )
    if spec.env:
        lines.append("# env set for the command:\n" + "\n".join(f"{k}={shlex.quote(v)}" for k, v in spec.env.items()))
    lines.append(f"# logs: {job.log_dir}/")
    lines.append(script.rstrip())
    print("\n".join(lines) + "\n", flush=True)


def upstream_handles(job: Job) -> list[tuple[str, JobHandle]]:
    """(dependency kind, upstream handle) of each dependency; by now every upstream has been submitted."""
    pairs = []
    for dep in job.dependencies:
        if not hasattr(dep.upstream, "job_id"):
            raise DependencyError(f"{job.name} depends on {dep.upstream.name}, which was not submitted before it")
        pairs.append((dep.kind, cast("JobHandle", dep.upstream)))
    return pairs


def upstreams_on(job: Job, executor: str) -> list[tuple[str, JobHandle]]:
    """The dependencies of `job` on real (not dry-run) jobs; each must run on the same executor."""
    live = []
    for kind, up in upstream_handles(job):
        if up.dry_run:
            continue
        if up.executor != executor:
            raise DependencyError(f"{job.name} runs on {executor} but depends on {up.executor} job {up.name}")
        live.append((kind, up))
    return live
