"""Sessions of one worker: which kernel serves which id, the cap, the idle TTL, and replacement.

- A null session id runs in a kernel taken from the pool and killed after the call.
- An unknown id creates a session with that id; a known id reuses its kernel, so its state.
  Calls on one session run one at a time, in arrival order.
- When a session's kernel is lost (killed by a limit, crashed, or a timeout that needed a kill),
  the session keeps its id and gets a fresh kernel at its next call; the response that reports
  the loss, or the next one if it happened between calls, carries `restarted: true`.
- At most `max_sessions` kernels are in use (named sessions + throw-away calls in flight); a
  request beyond that gets SessionLimitError (HTTP 503). Nothing is evicted to make room: a
  caller's state never disappears because someone else created sessions.
- Sessions idle for longer than `session_ttl` are deleted.

Ids made here are `w<worker>-<hex>`, so a router in front of several workers (or, later,
replicas) can send each request to the worker that owns its session.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field

from .cgroups import CgroupRoot
from .config import SandboxConfig
from .forkserver import ForkServer
from .grading import grade_in
from .kernel import CellOutcome, Kernel
from .monitor import LimitMonitor
from .output import cap
from .pool import KernelPool
from .program_output import first_difference

log = logging.getLogger(__name__)


_FOLDER = re.compile(r"^assay-sbx-(\d+)-")


def _remove_stale_folders(parent: str) -> None:
    """Remove the folders of sandbox servers that were killed before they could clean up."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        match = _FOLDER.match(name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


LIGHT_PRELOAD = ["numpy"]
USES_HEAVY_MODULES = re.compile(r"\b(?:torch|transformers|triton)\b")
"""A grading run whose answer or tests name these gets a fork of the heavy fork server."""


class SessionLimitError(RuntimeError):
    pass


@dataclass
class Session:
    id: str
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    executions: int = 0
    kernel: Kernel | None = None
    busy: int = 0  # calls running or queued on this session
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def describe(self) -> dict:
        return {
            "session_id": self.id,
            "created": self.created,
            "last_used": self.last_used,
            "executions": self.executions,
            "busy": self.busy > 0,
            "kernel_alive": bool(self.kernel and self.kernel.alive),
        }


class SessionManager:
    def __init__(self, cfg: SandboxConfig, worker: int = 0):
        self.cfg = cfg
        self.worker = worker
        self.sessions: dict[str, Session] = {}
        self._throwaway: set[Kernel] = set()  # kernels of throw-away calls in flight
        self._reserved = 0  # slots promised to throw-away calls still waiting for a kernel
        self._tasks: list[asyncio.Task] = []
        self._closing: set[asyncio.Task] = set()

    # -- life of the worker ---------------------------------------------------------------------

    async def start(self) -> None:
        prefix = f"assay-sbx-{os.getpid()}-w{self.worker}-"
        for parent in {tempfile.gettempdir(), self.cfg.work_dir or tempfile.gettempdir()}:
            _remove_stale_folders(parent)
        self.work_root = tempfile.mkdtemp(prefix=prefix + "work-", dir=self.cfg.work_dir)
        os.chmod(self.work_root, 0o711)
        self.cgroups = CgroupRoot.create() if self.cfg.cgroups else CgroupRoot({})
        self.monitor = LimitMonitor(self.cfg, self.cgroups)
        # Three fork servers: one for sessions (IPython, numpy); one for grading runs (numpy, no
        # IPython, which grading never uses); and a heavy one (`preload`: torch and the parts it imports
        # lazily) for grading runs whose code or tests use torch. The smaller the process, the less a
        # fork, its copies on write and its exit cost: holding torch costs several times more.
        self.forkserver = ForkServer(self.cfg, LIGHT_PRELOAD)
        self.grading_forkserver = ForkServer(self.cfg, LIGHT_PRELOAD, shell=False)
        self.heavy_forkserver = ForkServer(self.cfg, [m for m in self.cfg.preload.split(",") if m.strip()], shell=False)
        try:  # the grading ones start on the first grading run that needs them (importing torch takes seconds)
            await self.forkserver.ensure(self.cfg.kernel_start_timeout)
        except Exception as exc:  # noqa: BLE001 - the service answers; each request gets a 503 saying why
            log.error("the sandbox's fork server did not start: %s", exc)
        self.pool = KernelPool(
            lambda: Kernel(self.cfg, self.forkserver, self.work_root, self.cgroups), self.cfg.pool_size
        )
        self.grading_pool = KernelPool(
            lambda: Kernel(self.cfg, self.grading_forkserver, self.work_root, self.cgroups), 0
        )
        self.heavy_pool = KernelPool(lambda: Kernel(self.cfg, self.heavy_forkserver, self.work_root, self.cgroups), 0)
        self.pool.fill()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.monitor.run(self._active_kernels)), loop.create_task(self._reap_idle())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        kernels = [s.kernel for s in self.sessions.values() if s.kernel] + list(self._throwaway)
        self.sessions.clear()
        await asyncio.gather(
            self.pool.close(),
            self.grading_pool.close(),
            self.heavy_pool.close(),
            *(k.close("server stopped") for k in kernels),
            *self._closing,
            return_exceptions=True,
        )
        await self.forkserver.stop()
        await self.grading_forkserver.stop()
        await self.heavy_forkserver.stop()
        self.cgroups.remove()
        shutil.rmtree(self.work_root, ignore_errors=True)

    def _active_kernels(self) -> list[Kernel]:
        return [s.kernel for s in self.sessions.values() if s.kernel] + list(self._throwaway)

    def _retire(self, kernel: Kernel, reason: str) -> None:
        """Close a kernel in the background: the caller's response need not wait for cleanup."""
        task = asyncio.get_running_loop().create_task(kernel.close(reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # -- sessions -----------------------------------------------------------------------------

    def new_id(self) -> str:
        return f"w{self.worker}-{uuid.uuid4().hex}"

    @property
    def in_use(self) -> int:
        return len(self.sessions) + len(self._throwaway) + self._reserved

    def _check_room(self) -> None:
        if self.in_use >= self.cfg.max_sessions:
            raise SessionLimitError(
                f"session limit reached: {self.cfg.max_sessions} kernels in use on worker {self.worker}; "
                f"delete sessions you no longer need (DELETE /sessions/<id>) or wait for idle ones to "
                f"expire after {self.cfg.session_ttl:g} s"
            )

    def get_or_create(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            self._check_room()
            session = self.sessions[session_id] = Session(session_id)
        return session

    async def delete(self, session_id: str) -> bool:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        if session.kernel:
            kernel, session.kernel = session.kernel, None
            # A call running on it ends as `killed` with this reason.
            kernel.kill("the session was deleted")
            self._retire(kernel, "the session was deleted")
        return True

    def list(self) -> list[dict]:
        return [s.describe() for s in self.sessions.values()]

    def health(self) -> dict:
        return {
            "worker": self.worker,
            "sessions": len(self.sessions),
            "throwaway_running": len(self._throwaway),
            "pool_ready": self.pool.ready,
            "pool_size": self.cfg.pool_size,
            "grading_pool_ready": self.grading_pool.ready,
            "grading_pool_size": self.grading_pool.size,
            "heavy_pool_ready": self.heavy_pool.ready,
            "heavy_pool_size": self.heavy_pool.size,
            "max_sessions": self.cfg.max_sessions,
            "isolation": self.isolation(),
            "limits": {
                "processes": f"cgroup pids.max={self.cfg.max_processes}"
                if self.cgroups.enforces_processes
                else f"process-group watch, {self.cfg.max_processes} processes",
                "memory": f"cgroup memory limit {self.cfg.memory_mb} MB"
                if self.cgroups.enforces_memory
                else f"RSS watch, {self.cfg.memory_mb} MB",
                "address_space_mb": self.cfg.address_space_mb or None,
                "cpu_seconds": self.cfg.cpu_seconds or None,
            },
        }

    def isolation(self) -> dict:
        """Which isolation layers are active for sessions on this machine (see isolation.py)."""
        info = self.forkserver.info
        namespaces = info.get("isolation") == "namespaces"
        return {
            "namespaces": namespaces,
            "filesystem": "read-only system, private tmpfs (/tmp, /dev/shm, /run, home secrets hidden)"
            if namespaces
            else "the service user's files (each session gets its own folder)",
            "pid_namespace": namespaces,
            "network": "full (--allow-network)"
            if self.cfg.allow_network
            else ("loopback only" if namespaces else "full (no network namespace on this machine)"),
            "privileges": "all capabilities dropped, no_new_privs" if namespaces else "the service user's",
            "environment": "allow-listed (no keys or tokens)",
            "note": info.get("isolation_note") or None,
            "preloaded": info.get("preloaded") or [],
            "preloaded_for_torch_grading": self.heavy_forkserver.info.get("preloaded") or [],
        }

    async def _reap_idle(self) -> None:
        interval = min(10.0, max(0.25, self.cfg.session_ttl / 4))
        while True:
            await asyncio.sleep(interval)
            cutoff = time.time() - self.cfg.session_ttl
            for session in [s for s in self.sessions.values() if not s.busy and s.last_used < cutoff]:
                log.info("session %s idle for over %g s: deleted", session.id, self.cfg.session_ttl)
                await self.delete(session.id)

    # -- execution ----------------------------------------------------------------------------

    async def execute(self, code: str, session_id: str | None, timeout: float, max_output_chars: int) -> dict:
        if session_id is None:
            session_id = self.new_id()
            outcome, restart_reason = await self._run_throwaway(code, timeout, max_output_chars), None
        else:
            outcome, restart_reason = await self._run_in_session(session_id, code, timeout, max_output_chars)
        return {
            "status": outcome.status,
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
            "result": outcome.result,
            "error": outcome.error,
            "session_id": session_id,
            "duration": round(outcome.duration, 6),
            "restarted": restart_reason is not None,
            "restart_reason": restart_reason,
        }

    async def _run_throwaway(self, code: str, timeout: float, max_output_chars: int) -> CellOutcome:
        self._check_room()
        self._reserved += 1
        try:
            kernel = await self.pool.take()
        finally:
            self._reserved -= 1
        self._throwaway.add(kernel)
        try:
            return await self._run(kernel, code, timeout, max_output_chars)
        finally:
            self._throwaway.discard(kernel)
            kernel.kill("throw-away session done")
            self._retire(kernel, "throw-away session done")

    async def _run_in_session(
        self, session_id: str, code: str, timeout: float, max_output_chars: int
    ) -> tuple[CellOutcome, str | None]:
        """Run in the named session; also return why its state was lost, if it was."""
        session = self.get_or_create(session_id)
        session.busy += 1
        try:
            async with session.lock:
                lost_between_calls = None
                if session.kernel is not None and not session.kernel.alive:
                    assert session.kernel.exited is not None  # a session's kernel came started from the pool
                    lost_between_calls = session.kernel.exited.result()
                    self._retire(session.kernel, lost_between_calls)
                    session.kernel = None
                if session.kernel is None:
                    try:
                        session.kernel = await self.pool.take()
                    except Exception:
                        if session.executions == 0 and self.sessions.get(session_id) is session:
                            del self.sessions[session_id]  # a session that never ran holds no slot
                        raise
                if self.sessions.get(session_id) is not session:
                    if session.kernel:
                        self._retire(session.kernel, "the session was deleted")
                    raise SessionGoneError(f"session {session_id} was deleted while this call waited")
                kernel = session.kernel
                outcome = await self._run(kernel, code, timeout, max_output_chars)
                session.executions += 1
                if outcome.kernel_lost:
                    self._retire(kernel, outcome.reason or "kernel lost")
                    if session.kernel is kernel:
                        session.kernel = None
                    return outcome, outcome.reason
                if lost_between_calls:
                    return outcome, "the kernel was lost after the previous call: " + lost_between_calls
                return outcome, None
        finally:
            session.busy -= 1
            session.last_used = time.time()

    async def _run(self, kernel: Kernel, code: str, timeout: float, max_output_chars: int) -> CellOutcome:
        """Run one cell; its duration counts the cell only, never the wait for a free process."""
        start = time.perf_counter()
        outcome = await kernel.run(code, timeout, max_output_chars)
        outcome.duration = time.perf_counter() - start
        if not outcome.kernel_lost:
            # A fork refused by the pids cgroup during the call: end the session now, so the
            # caller hears about it in this response rather than from the next monitor tick.
            reason = self.monitor.breach(kernel)
            if reason:
                kernel.kill(reason)
                outcome = CellOutcome(
                    "killed",
                    outcome.stdout,
                    outcome.stderr,
                    outcome.result,
                    {"ename": "SandboxKilled", "evalue": reason, "traceback": []},
                    kernel_lost=True,
                    reason=reason,
                    duration=outcome.duration,
                )
        return outcome

    # -- grading ------------------------------------------------------------------------------

    async def grade(
        self,
        answer: str,
        tests: str,
        test_names: builtins.list[str],  # `list` in this class is the method list()
        entry_point: str | None,
        timeout: float,
        max_output_chars: int,
    ) -> dict:
        """One graded sample in a fresh process; waiting for a free slot is not charged to `timeout`."""
        heavy = bool(USES_HEAVY_MODULES.search(answer) or USES_HEAVY_MODULES.search(tests))
        return await self._graded_run(heavy, answer, tests, test_names, entry_point, timeout, max_output_chars)

    async def _graded_run(
        self,
        heavy: bool,
        answer: str,
        tests: str,
        test_names: builtins.list[str],
        entry_point: str | None,
        timeout: float,
        max_output_chars: int,
        stdin: str | None = None,
    ) -> dict:
        """One run of `grade_in` in a fresh process of the light or the heavy pool, thrown away after it."""
        self._check_room()
        self._reserved += 1
        pool = self.heavy_pool if heavy else self.grading_pool
        if not pool.size:  # first use: keep some ready from now on (holding torch, fewer)
            pool.size = min(self.cfg.pool_size, 2) if heavy else self.cfg.pool_size
        try:
            kernel = await pool.take()
        finally:
            self._reserved -= 1
        self._throwaway.add(kernel)
        try:
            result = await grade_in(
                kernel, answer, tests, test_names, entry_point, timeout, max_output_chars, stdin=stdin
            )
            reason = self.monitor.breach(kernel)
            if reason and result["status"] == "completed":
                result.update(status="killed", reason=reason, passed=False)
                if "ran" in result:
                    result["ran"] = False
            return result
        finally:
            self._throwaway.discard(kernel)
            kernel.kill("grading run done")
            self._retire(kernel, "grading run done")

    async def grade_program(
        self, answer: str, cases: builtins.list[dict], timeout: float, max_output_chars: int
    ) -> dict:
        """A program graded on input/output cases: one fresh process per case, in order, until one fails.

        Each case's `stdin` is fed to the program and its output compared here (program_output.py) with
        the case's `expected_output`, which never reaches the process that ran the program."""
        heavy = bool(USES_HEAVY_MODULES.search(answer))
        verdict: dict = {
            "status": "completed",
            "passed": False,
            "cases_total": len(cases),
            "cases_passed": 0,
            "failed_case": None,
            "wrong_output": None,
            "answer_syntax_error": None,
            "answer_error": None,
            "tampering": None,
            "reason": None,
            "stdout": "",
            "stderr": "",
            "duration": 0.0,
        }
        for index, case in enumerate(cases):
            run = await self._graded_run(heavy, answer, "", [], None, timeout, max_output_chars, stdin=case["stdin"])
            verdict["duration"] = round(verdict["duration"] + run["duration"], 6)
            difference = None
            if run["ran"]:
                if run["stdout_truncated"]:
                    difference = f"the output is longer than the cap of {max_output_chars} characters"
                else:
                    difference = first_difference(run["stdout"], case["expected_output"])
            if run["ran"] and difference is None:
                verdict["cases_passed"] += 1
                continue
            verdict.update(
                failed_case=index,
                wrong_output=difference,
                status=run["status"],
                answer_syntax_error=run["answer_syntax_error"],
                answer_error=run["answer_error"],
                tampering=run["tampering"],
                reason=run["reason"],
                stdout=cap(run["stdout"], min(max_output_chars, 4000)),
                stderr=run["stderr"],
            )
            return verdict
        verdict["passed"] = len(cases) > 0
        return verdict


class SessionGoneError(RuntimeError):
    pass
