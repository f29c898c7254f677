"""One pipeline call = one experiment: its jobs, chained after earlier experiments, with follow-up copies.

`run_after="sdg"` makes every job of this experiment depend on the jobs `sdg` stands for (afterok
unless `dependency_type="afterany"`); an unknown expname is an error, never a silent no-op.
`dependent_jobs=N` submits N copies of each job, each starting after the previous ends in any state
(`afterany`), for clusters whose time limit is shorter than the work: every stage resumes where the
previous copy stopped. Later experiments chain after the last copy.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass, field, replace
from typing import Iterator, Optional

from . import registry
from .cluster import ClusterConfig
from .executors import get_executor, submit_job
from .job import Dependency, Job, JobFailedError, JobHandle
from .job_options import JobOptions, RunAfter


class UnknownUpstreamError(ValueError):
    """`run_after` names an experiment that was never submitted."""


def _names(run_after: RunAfter) -> list[str]:
    if run_after is None:
        return []
    if isinstance(run_after, str):
        return [n.strip() for n in run_after.split(",") if n.strip()]
    return [n for item in run_after for n in _names(item)]


def resolve_run_after(
    cluster: ClusterConfig, run_after: RunAfter, dependency_type: str = "afterok"
) -> list[Dependency]:
    """Dependencies on every job each expname in `run_after` stands for."""
    deps: list[Dependency] = []
    for name in _names(run_after):
        handles = registry.lookup(cluster.name, name)
        if handles is None:
            raise UnknownUpstreamError(
                f"run_after='{name}': no experiment named '{name}' was submitted to cluster '{cluster.name}' "
                f"by this launcher or recorded in {registry.records_dir() / cluster.name}. "
                "Submit it first (in the same script or earlier), or drop run_after."
            )
        deps.extend(Dependency(h, dependency_type) for h in handles)
    return deps


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """While waiting, SIGTERM and SIGHUP (kill, a closed terminal) stop the launcher like Ctrl-C does, so the
    local jobs it started are stopped with it instead of running on, orphaned. Main thread only (Python
    delivers signals there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # a signal the user chose to ignore stays ignored (`nohup` ignores SIGHUP: closing the terminal must not stop it)
    catch = [s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {s: signal.signal(s, interrupt) for s in catch}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def wait_for(experiments: list["Experiment"], cluster: ClusterConfig, wait: Optional[bool], dry_run: bool) -> bool:
    """Wait for the experiments when asked (`wait=None`: as the cluster's executor does by default), showing the
    jobs' output where they run on this machine. Returns whether it waited (and so every job succeeded)."""
    executor = get_executor(cluster.executor)
    if dry_run or not (executor.waits_by_default if wait is None else wait):
        return False
    for experiment in experiments:
        experiment.wait(follow=executor.waits_by_default)
    return True


@dataclass
class Experiment:
    """The jobs of one pipeline call; `final` holds the last copy of each job."""

    name: str
    cluster: ClusterConfig
    handles: list[JobHandle] = field(default_factory=list)
    final: list[JobHandle] = field(default_factory=list)
    dry_run: bool = False

    def wait(self, timeout_s: Optional[float] = None, follow: bool = False) -> list:
        """Block until every job ends; raise JobFailedError when a final job failed.

        `follow=True` shows each job's output on the terminal while waiting (local runs do).
        """
        try:
            with _stop_signals_interrupt():
                return self._wait(timeout_s, follow)
        except KeyboardInterrupt:
            # Ctrl-C (or kill, or a closed terminal) while a launcher waits on local jobs stops them too
            # (Slurm jobs keep their own life)
            local = [
                h
                for h in self.handles
                if not h.dry_run and get_executor(h.executor).stops_with_launcher and not h.done()
            ]
            for handle in local:
                handle.cancel()
            if local:
                print(f"\n[assay] interrupted: stopped {len(local)} local job(s) of {self.name}", flush=True)
            raise

    def _wait(self, timeout_s: Optional[float], follow: bool) -> list:
        results = []
        for handle in self.handles:
            try:
                results.append(handle.wait(timeout_s=timeout_s, follow=follow, poll_s=0.5 if follow else 1.0))
            except JobFailedError as exc:
                if handle in self.final:
                    raise
                print(f"[assay] {handle.name}: job {handle.job_id} ended early, a follow-up copy resumes it:\n{exc}")
        return results

    def describe(self) -> str:
        return "\n".join(h.describe() for h in self.handles)


def submit(cluster: ClusterConfig, options: JobOptions, jobs: list[Job]) -> Experiment:
    """Submit `jobs` as the experiment `options.expname`, chained as the options say."""
    return submit_experiment(
        cluster,
        options.expname,
        jobs,
        run_after=options.run_after,
        dependency_type=options.dependency_type,
        dependent_jobs=options.dependent_jobs,
        dry_run=options.dry_run,
    )


def submit_experiment(
    cluster: ClusterConfig,
    expname: str,
    jobs: list[Job],
    run_after: RunAfter = None,
    dependency_type: str = "afterok",
    dependent_jobs: int = 0,
    dry_run: bool = False,
) -> Experiment:
    """Submit `jobs` under one expname, after `run_after`, each with `dependent_jobs` follow-up copies.

    A job may depend on an earlier job of the same list (`Dependency(upstream=<that Job>)`, e.g. a merge
    after its chunks); such a dependency points at the upstream's last copy. Jobs without one wait for
    `run_after`. The experiment's final jobs, which later `run_after`s wait for, are those no other job
    of the list depends on.
    """
    if dependent_jobs < 0:
        raise ValueError("dependent_jobs must be >= 0")
    upstream = resolve_run_after(cluster, run_after, dependency_type)
    executor = get_executor(cluster.executor)
    for job in jobs:  # every job is checked before the first is submitted
        executor.check_job(job, cluster)
    experiment = Experiment(expname, cluster, dry_run=dry_run)
    try:
        last_copy, depended_on = _submit_all(experiment, jobs, upstream, dependent_jobs, cluster, dry_run)
    except BaseException:
        _cancel_partial(experiment)
        raise
    experiment.final = [last_copy[id(job)] for job in jobs if id(job) not in depended_on]
    registry.record(cluster.name, expname, experiment.final)
    return experiment


def _submit_all(
    experiment: "Experiment",
    jobs: list[Job],
    upstream: list[Dependency],
    dependent_jobs: int,
    cluster: ClusterConfig,
    dry_run: bool,
) -> tuple[dict[int, JobHandle], set[int]]:
    """Submit every job (and its copies) in order, recording each handle in the experiment as it is made."""
    last_copy: dict[int, JobHandle] = {}
    depended_on: set[int] = set()
    for job in jobs:
        internal = [d for d in job.dependencies if isinstance(d.upstream, Job)]
        for dep in internal:
            if id(dep.upstream) not in last_copy:
                raise ValueError(f"{job.name} depends on {dep.upstream.name}, which must come earlier in the list")
            depended_on.add(id(dep.upstream))
        first_deps = [
            Dependency(last_copy[id(d.upstream)], d.kind) if isinstance(d.upstream, Job) else d
            for d in job.dependencies
        ]
        if not internal:
            first_deps = list(upstream) + first_deps
        previous: Optional[JobHandle] = None
        copies = dependent_jobs if job.follow_up_copies else 0
        for copy in range(copies + 1):
            deps = first_deps if previous is None else [Dependency(previous, "afterany")]
            handle = submit_job(replace(job, dependencies=deps), cluster, dry_run=dry_run)
            experiment.handles.append(handle)
            if not dry_run:
                suffix = f" (copy {copy} of {copies}, afterany on the previous)" if copy else ""
                print(f"Submitted {handle.describe()}{suffix}", flush=True)
            previous = handle
        assert previous is not None  # the loop runs at least once
        last_copy[id(job)] = previous
    return last_copy, depended_on


def _cancel_partial(experiment: "Experiment") -> None:
    """A submission that failed midway leaves nothing queued: cancel what was submitted, and say so."""
    live = [h for h in experiment.handles if not h.dry_run]
    if not live:
        return
    cancelled = []
    for handle in live:
        try:
            handle.cancel()
            cancelled.append(handle.job_id)
        except Exception as exc:  # noqa: BLE001 - report every job that could not be cancelled, then re-raise
            print(f"[assay] could not cancel job {handle.job_id} ({handle.name}): {exc}", flush=True)
    print(
        f"[assay] submitting {experiment.name} failed after {len(live)} job(s); cancelled {', '.join(cancelled)} "
        "so nothing of it is left queued",
        flush=True,
    )
