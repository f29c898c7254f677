"""What runs on the node for every job: wait for local upstream jobs, run the command, report its failure.

submitit pickles `run_job(spec)` and calls it inside the allocation (Slurm) or a child process (local).
The command's stdout and stderr go straight to the job's log files; when it fails, the error raised
here carries the tail of its log, so the user sees *why* from `job.wait()` or the CLI.

Time limits: Slurm warns a job `signal_delay_s` before its limit with SIGUSR2 (submitit's
`--signal=USR2@...`), to every process of the step. Every child starts with SIGUSR2 ignored, so a
model server, a sandbox or a user's script is not killed by the warning; assay's own stages (the
trainers, the generation stage) install a handler and stop cleanly: a trainer saves a checkpoint at
the end of its step, the generation stage syncs its partial file, and both exit non-zero so that
`afterok` jobs wait while the next `dependent_jobs` copy resumes. The runner also forwards the warning
to the command's process group, for schedulers that signal only the batch step. On SIGTERM the command
gets SIGTERM and STOP_GRACE_S to finish before SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .local_slots import LocalSlots, hold_slot
from .log_follow import log_tail
from .services import RunningService, ServiceSpec, StepWatch, start_service, wait_healthy, watch_step

_PR_SET_PDEATHSIG = 1

STOP_GRACE_S = 60.0
"""Seconds a stopped command has, after SIGTERM, to save its work before SIGKILL (a checkpoint of a real model
takes tens of seconds); Slurm's own KillWait bounds it at a time limit."""

TIME_LIMIT_WARNING = signal.SIGUSR2
"""What Slurm sends before a time limit (submitit's `--signal=USR2@<signal_delay_s>`)."""
TIME_LIMIT_FILE_ENV = "ASSAY_TIME_LIMIT_FILE"
"""A file the runner creates when the warning arrives, so that a command still starting up (loading a model, with
no handler installed yet) learns of the warning once it looks (training checks it after every step)."""


class CommandFailedError(RuntimeError):
    """The job's command exited with a non-zero status."""


class DependencyFailedError(RuntimeError):
    """An upstream job of an afterok dependency failed, so this job did not run its command."""


@dataclass
class LocalUpstream:
    """A local job this one waits for (local jobs have no scheduler to hold them back)."""

    name: str
    job_id: str
    result_pickle: str
    kind: str = "afterok"


@dataclass
class JobSpec:
    """Everything `run_job` needs; pickled by submitit."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    next_commands: list[list[str]] = field(default_factory=list)
    """Run after `command`, in order, while the services stay up; the job stops at the first failure."""
    workdir: Optional[str] = None
    wait_for: list[LocalUpstream] = field(default_factory=list)
    services: list[ServiceSpec] = field(default_factory=list)
    """Started (and healthy) before the command; `{<name>_port}` in the command or env is the service's port."""
    log_dir: Optional[str] = None
    """Where service logs go (`<job id>_<service>.log`); the job's log folder."""
    poll_interval_s: float = 0.5
    slots: Optional[LocalSlots] = None
    """Local jobs of a cluster with `max_parallel_jobs`: hold one of these slots while running."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is as good as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def upstream_outcome(upstream: LocalUpstream) -> Optional[str]:
    """'success', 'error', or None while the upstream job still runs."""
    import pickle

    path = Path(upstream.result_pickle)
    if path.exists():
        try:
            with path.open("rb") as f:
                return "success" if pickle.load(f)[0] == "success" else "error"
        except Exception:  # noqa: BLE001 - a result being written; read it on the next poll
            return None
    if upstream.job_id.isdigit() and not _pid_alive(int(upstream.job_id)):
        time.sleep(0.5)  # the result file is written just before the process exits
        return None if path.exists() else "error"
    return None


def _wait_for_upstream(spec: JobSpec) -> None:
    for upstream in spec.wait_for:
        print(f"[assay] waiting for {upstream.name} (local job {upstream.job_id}, {upstream.kind})", flush=True)
        while (outcome := upstream_outcome(upstream)) is None:
            time.sleep(spec.poll_interval_s)
        if outcome != "success" and upstream.kind == "afterok":
            raise DependencyFailedError(
                f"{spec.name} did not run: upstream job {upstream.name} ({upstream.job_id}) failed "
                "and this job depends on it with afterok"
            )


def _log_paths() -> tuple[Optional[Path], Optional[Path]]:
    try:
        import submitit

        paths = submitit.JobEnvironment().paths
        return Path(paths.stdout), Path(paths.stderr)
    except Exception:  # noqa: BLE001 - run outside submitit (tests, direct calls): no log files to read
        return None, None


def _die_with_parent() -> None:
    """Child setup: a session of its own (so we can kill its whole group), SIGTERM if we die, and the time-limit
    warning ignored unless the program handles it (see the module docstring)."""
    os.setsid()
    signal.signal(TIME_LIMIT_WARNING, signal.SIG_IGN)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def kill_group(proc: "subprocess.Popen | StepWatch", grace_s: float = 5.0) -> None:
    """SIGTERM to the group, SIGKILL after `grace_s`; services and cleanups use the short default. A service in its
    own Slurm step (StepWatch) is not this process's to stop: it ends with the job's allocation."""
    if not isinstance(proc, subprocess.Popen) or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _stop(process: "subprocess.Popen | StepWatch") -> None:
    kill_group(process)


def _job_placement() -> tuple[str, int]:
    """(job id, node rank): the job's tasks run one per node, rank 0 is the head."""
    try:
        import submitit

        env = submitit.JobEnvironment()
        return str(env.job_id), int(env.global_rank)
    except Exception:  # noqa: BLE001 - run outside submitit (direct calls): a single node
        return str(os.getpid()), 0


def _start_services(spec: JobSpec, stdout_path: Optional[Path], job_id: str, rank: int) -> list[RunningService]:
    log_dir = Path(spec.log_dir) if spec.log_dir else (stdout_path.parent if stdout_path else Path.cwd())
    suffix = f"_node{rank}" if rank else ""
    running: list[RunningService] = []
    try:
        for service_spec in spec.services:
            if service_spec.own_step:  # started by the batch script on every node it needs: wait for it (head)
                if rank == 0:
                    running.append(watch_step(service_spec, log_dir, job_id))
            elif rank == 0 or service_spec.all_nodes:
                log = log_dir / f"{job_id}_{service_spec.name}{suffix}.log"
                running.append(start_service(service_spec, log, _die_with_parent))
        for started in running:
            if rank == 0:  # worker nodes serve no HTTP: only the head is health-checked
                wait_healthy(started, log_tail)
    except BaseException:
        for started in running:
            _stop(started.process)
        raise
    return running


def _with_ports(text: str, running: list[RunningService]) -> str:
    for service in running:
        text = text.replace("{" + service.spec.name + "_port}", str(service.port))
    return text


def wait_for_head(head_result: Path, running: list[RunningService], poll_s: float = 2.0) -> dict:
    """A worker node's part: keep its services up until the head node's task has written its result."""
    while not head_result.exists():
        for service in running:
            code = service.process.poll()
            if code is not None:
                raise CommandFailedError(
                    f"{service.spec.name} on a worker node exited with status {code}; log {service.log_path}:\n"
                    f"{log_tail(service.log_path)}"
                )
        time.sleep(poll_s)
    return {"returncode": 0, "duration_s": 0.0, "worker": True}


def run_job(spec: JobSpec) -> dict:
    """Start the job's services, run its command to completion, stop the services; raise with log tails on failure.

    On a multi-node job every node runs this: the head (rank 0) starts all services and runs the
    commands; the other nodes start only the services meant for every node (a multi-node model
    server's workers) and keep them up until the head is done.
    """
    _wait_for_upstream(spec)
    with hold_slot(spec.slots, spec.name, spec.poll_interval_s):
        return _run_job_body(spec)


def _run_job_body(spec: JobSpec) -> dict:
    stdout_path, stderr_path = _log_paths()
    job_id, rank = _job_placement()
    running = _start_services(spec, stdout_path, job_id, rank)
    if rank > 0:
        log_dir = Path(spec.log_dir) if spec.log_dir else (stdout_path.parent if stdout_path else Path.cwd())
        try:
            return wait_for_head(log_dir / f"{job_id}_0_result.pkl", running)
        finally:
            for service in running:
                _stop(service.process)
    try:
        env = dict(os.environ)
        env.update({k: _with_ports(v, running) for k, v in spec.env.items()})
        folder = spec.log_dir or (str(stdout_path.parent) if stdout_path else None)
        if folder:
            env[TIME_LIMIT_FILE_ENV] = str(Path(folder) / f"{job_id}_time_limit")
        for service in running:
            env.update(service.secrets)
        results = []
        for argv in [spec.command, *spec.next_commands]:
            command = [_with_ports(part, running) for part in argv]
            results.append(_run_command(spec.name, command, env, spec.workdir, stdout_path, stderr_path))
        return {"returncode": 0, "duration_s": sum(r["duration_s"] for r in results)}
    finally:
        for service in running:
            _stop(service.process)


def _run_command(name, command, env, workdir, stdout_path, stderr_path) -> dict:
    command_line = shlex.join(command)
    print(f"[assay] {name}: running {command_line}", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    proc = subprocess.Popen(command, env=env, cwd=workdir, preexec_fn=_die_with_parent)
    stopped_by: list[int] = []

    def _forward(signum, _frame):
        # Only signal here: this handler interrupts proc.wait(), and waiting again inside it would deadlock
        # on the lock that wait holds. The interrupted wait returns once the group is gone.
        stopped_by.append(signum)
        _signal_group(proc, signal.SIGTERM)
        escalate = threading.Timer(STOP_GRACE_S, _signal_group, args=(proc, signal.SIGKILL))
        escalate.daemon = True
        escalate.start()

    def _warn(signum, _frame):
        print(f"[assay] {name}: the time limit is near (signal {signum}); telling the command to save and stop")
        if env and env.get(TIME_LIMIT_FILE_ENV):
            try:
                Path(env[TIME_LIMIT_FILE_ENV]).touch()
            except OSError:
                pass  # the signal below still reaches a command that handles it
        _signal_group(proc, TIME_LIMIT_WARNING)

    previous = {s: signal.signal(s, _forward) for s in (signal.SIGTERM, signal.SIGINT)}
    previous[TIME_LIMIT_WARNING] = signal.signal(TIME_LIMIT_WARNING, _warn)
    try:
        returncode = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        kill_group(proc)
    if stopped_by:
        print(f"[assay] {name}: stopped by signal {stopped_by[0]}", flush=True)
        raise SystemExit(128 + stopped_by[0])
    duration = time.monotonic() - start
    if returncode != 0:
        sys.stderr.flush()
        tail = log_tail(stderr_path) or log_tail(stdout_path)
        where = f"\nlog: {stdout_path}\nerr: {stderr_path}" if stdout_path else ""
        raise CommandFailedError(
            f"{name}: command exited with status {returncode} after {duration:.1f}s: "
            f"{command_line}{where}\n--- tail of the job's log ---\n{tail}"
        )
    print(f"[assay] {name}: done in {duration:.1f}s", flush=True)
    return {"returncode": returncode, "duration_s": duration}
