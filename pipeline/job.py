"""Jobs as the pipeline builds them, and handles to the jobs once submitted.

A `Job` is what one submission runs: a command (an argument list, never a shell string built with
f-strings), its resources, env and dependencies. A `JobHandle` is what the user gets back: the job id,
where its logs are, and `wait()`, which raises `JobFailedError` with the tail of the failed job's log.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .executors import get_executor
from .log_follow import log_tail

DEPENDENCY_KINDS = ("afterok", "afterany")
FINAL_STATES = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "REVOKED",
}


class JobFailedError(RuntimeError):
    """A job ended without success; the message holds its state and the tail of its log."""


@dataclass
class Dependency:
    """This job starts after `upstream` ends: with success (`afterok`) or in any state (`afterany`)."""

    upstream: "JobHandle | Job"
    """A submitted job, or an earlier job of the same experiment (see submit_experiment)."""
    kind: str = "afterok"

    def __post_init__(self) -> None:
        if self.kind not in DEPENDENCY_KINDS:
            raise ValueError(f"dependency kind must be one of {DEPENDENCY_KINDS}, got '{self.kind}'")


@dataclass
class Job:
    """One submission: the command run on the node and what it needs."""

    name: str
    """The experiment name; the cluster's job name is the cluster's prefix plus this."""
    command: list[str]
    """The argument list run on the node."""
    output_dir: Path
    """Results go here; logs go to `<output_dir>/logs/<name>/`."""
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: Optional[int] = None
    mem: Optional[str] = None
    time: Optional[str] = None
    """Time limit in Slurm's format; the cluster's default when None."""
    env: dict[str, str] = field(default_factory=dict)
    container: str = "assay"
    """Which of the cluster's containers runs the command."""
    dependencies: list[Dependency] = field(default_factory=list)
    services: list = field(default_factory=list)
    """ServiceSpecs started beside the command on the node (model server, sandbox)."""
    next_commands: list[list[str]] = field(default_factory=list)
    """More commands run after `command`, in order, in the same job (with the same services)."""
    follow_up_copies: bool = True
    """Whether `dependent_jobs` copies apply (not for quick bookkeeping jobs such as merges)."""
    takes_local_slot: bool = True
    """Whether it counts against a local cluster's `max_parallel_jobs`; not for a job that only submits other
    jobs and waits for them (it would hold the slot they need)."""
    container_paths: bool = True
    """In a container, whether its paths are translated through the cluster's mounts (pipeline/mounts.py); not
    for a job that submits other jobs with the launcher's paths (a deferred eval)."""

    @property
    def log_dir(self) -> Path:
        return Path(self.output_dir) / "logs" / self.name

    def command_line(self) -> str:
        """The commands as shell-quoted lines (what a user would paste to rerun them)."""
        return "\n".join(shlex.join(c) for c in [self.command, *self.next_commands])


@dataclass
class JobHandle:
    """A submitted job (or, in a dry run, one that would have been)."""

    name: str
    job_id: str
    executor: str
    """The name of the executor that ran it (local, slurm, ...; see executors/)."""
    log_dir: Path
    submitit_job: Any = None
    dry_run: bool = False
    """Nothing was submitted: the handle stands for what would have been (its id is a placeholder)."""
    after_ok: list["JobHandle"] = field(default_factory=list)
    """The upstreams it must wait to succeed (afterok), to name the one that failed when it never ran."""
    mounts: list = field(default_factory=list)
    """The mounts of the container it ran in (mounts.Mount), whose paths its log tails and errors are mapped back
    through for the launcher; none when it ran on the host."""

    def on_host(self, text: str) -> str:
        """Text the job wrote, with the container's paths given the launcher's names."""
        from .mounts import text_on_host

        return text_on_host(text, self.mounts)

    def tail(self) -> str:
        """The end of the job's stderr (its stdout when stderr is empty), in the launcher's paths."""
        return self.on_host(log_tail(self.stderr_path) or log_tail(self.stdout_path))

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"{self.job_id}_0_log.out"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.job_id}_0_log.err"

    @property
    def result_pickle(self) -> Path:
        return self.log_dir / f"{self.job_id}_0_result.pkl"

    def state(self) -> str:
        """Scheduler state in Slurm's words (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ...); DRY_RUN."""
        if self.dry_run:
            return "DRY_RUN"
        return get_executor(self.executor).state(self)

    def done(self) -> bool:
        return self.state() in FINAL_STATES

    def wait(self, timeout_s: Optional[float] = None, poll_s: float = 1.0, follow: bool = False) -> Any:
        """Block until the job ends; return its result or raise JobFailedError with its log tail.

        With `follow=True` the job's output is copied to the terminal as it is written.
        """
        if self.dry_run:
            return None
        from .log_follow import LogFollower

        follower = LogFollower(self.stdout_path, self.stderr_path) if follow else None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.done():
            if follower:
                follower.poll()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} ({self.job_id}) still {self.state()} after {timeout_s}s")
            time.sleep(poll_s)
        if follower:
            follower.poll()
        state = self.state()
        if state == "COMPLETED":
            return self._result()
        if self.result_pickle.exists():
            self._result()  # raises with the job's own error message
        failure = self.failed_upstream()
        if failure is not None:
            failed, failed_state = failure
            raise JobFailedError(
                f"{self.name} (job {self.job_id}) ended {state} without running: its upstream {failed.name} "
                f"(job {failed.job_id}) ended {failed_state}.\nupstream log: {failed.stdout_path}\n--- tail ---\n"
                f"{failed.tail()}"
            )
        raise JobFailedError(
            f"{self.name} (job {self.job_id}) ended {state} without running to completion.\n"
            f"log: {self.stdout_path}\n--- tail ---\n{self.tail()}"
        )

    def failed_upstream(self) -> Optional[tuple["JobHandle", str]]:
        """The afterok upstream that ended without success and its state (one scheduler query per upstream),
        followed back to the first such job of the chain."""
        for upstream in self.after_ok:
            state = upstream.state()
            if state in FINAL_STATES and state != "COMPLETED":
                return upstream.failed_upstream() or (upstream, state)
        return None

    def _result(self) -> Any:
        import submitit

        try:
            if self.submitit_job is not None:
                return self.submitit_job.result()
            outcome, value = _load_pickle(self.result_pickle)
            if outcome == "success":
                return value
            raise submitit.core.utils.FailedJobError(value)
        except submitit.core.utils.FailedJobError as exc:
            message = self.on_host(_own_message(str(exc)))
            raise JobFailedError(f"{self.name} (job {self.job_id}) failed: {message}") from None

    def cancel(self) -> None:
        """Stop the job (scancel on Slurm, SIGINT to the local process, which stops its command)."""
        if not self.dry_run:
            get_executor(self.executor).cancel(self)

    def describe(self) -> str:
        return f"{self.name}: job {self.job_id} ({self.executor}); log {self.stdout_path}"


def _load_pickle(path: Path) -> Any:
    import pickle

    with path.open("rb") as f:
        return pickle.load(f)


def _own_message(submitit_message: str) -> str:
    """The last exception of submitit's remote traceback (ours carries the command's log tail)."""
    marker = "assay.pipeline.job_runner."
    idx = submitit_message.rfind(marker)
    message = submitit_message[idx + len(marker) :] if idx >= 0 else submitit_message
    return message.split("\n\n----------------------")[0].strip()
