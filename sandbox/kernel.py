"""One session process and the running of one cell (or one grading run) in it.

A kernel is a process forked by the worker's fork server (zygote.py), already isolated
(isolation.py), reached over a private socket pair with length-prefixed JSON frames (wire.py). Its
handle is the session process the fork server reports (its direct child, also with namespaces);
its process group gets the timeout's SIGINT. `run()` turns one `exec` exchange into a `CellOutcome`:

- ok / error: the session answered in time.
- timeout: the deadline passed. The session's process group gets SIGINT; if the cell stops within
  the grace period the session (and its state) is kept, otherwise it is killed and the outcome says
  `kernel_lost`.
- killed: the session died during the cell (crash, os._exit, OOM, CPU limit, or a limit that the
  session monitor enforced by killing it); `reason` says which.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import signal
import socket
import uuid
from dataclasses import dataclass

from . import procs, wire
from .cgroups import CgroupRoot, KernelCgroup
from .config import SandboxConfig
from .forkserver import ForkServer, ForkServerError
from .output import cap

log = logging.getLogger(__name__)

_names = itertools.count()


class KernelStartError(RuntimeError):
    pass


@dataclass
class CellOutcome:
    status: str  # ok | error | timeout | killed
    stdout: str
    stderr: str
    result: str | None
    error: dict | None
    kernel_lost: bool = False  # the kernel is dead: its state is gone
    reason: str | None = None
    duration: float = 0.0  # seconds the cell ran (set by the session manager)


def describe_exit(status: int | None, cfg: SandboxConfig, oom_killed: bool) -> str:
    if oom_killed:
        return f"out of memory: the session went over its {cfg.memory_mb} MB memory limit"
    if status is None:
        return "the kernel process is gone (its fork server stopped)"
    if os.WIFEXITED(status):
        return f"the kernel process exited with status {os.WEXITSTATUS(status)}"
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    if sig == signal.SIGXCPU:
        return f"CPU time limit of {cfg.cpu_seconds} s exceeded"
    if sig == signal.SIGKILL:
        return "the kernel was killed by SIGKILL (the machine may be out of memory)"
    if sig == signal.SIGSEGV:
        return "the kernel crashed with SIGSEGV (segmentation fault)"
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    return f"the kernel was killed by {name}"


class Kernel:
    """A started session process with its limits, socket, working folder and cgroup."""

    def __init__(self, cfg: SandboxConfig, forkserver: ForkServer, work_root: str, cgroup_root: CgroupRoot):
        self.cfg = cfg
        self.name = f"k{next(_names)}-{uuid.uuid4().hex[:8]}"
        self.cwd = os.path.join(work_root, self.name)
        self._forkserver = forkserver
        self._cgroup_root = cgroup_root
        self.cgroup: KernelCgroup | None = None
        self.handle: int | None = None  # the session process, the fork server's child: its exit ends the session
        self.exited: asyncio.Future | None = None  # resolves to the reason the kernel is gone
        self.kill_reason: str | None = None  # set when we kill it on purpose
        self._killed = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._status: asyncio.Future | None = None

    @property
    def pid(self) -> int | None:
        """The session's process (as this process sees it); None before start."""
        return self.handle

    @property
    def alive(self) -> bool:
        return self.exited is not None and not self.exited.done()

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self._start(), self.cfg.kernel_start_timeout)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ForkServerError, KernelStartError) as exc:
            await self.close("start failed")
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else "timed out"
            raise KernelStartError(f"kernel did not start ({detail})") from None

    async def _start(self) -> None:
        cfg = self.cfg
        await self._forkserver.ensure(cfg.kernel_start_timeout)
        if self._cgroup_root.base:
            self.cgroup = self._cgroup_root.make(self.name, cfg.memory_mb * 2**20, cfg.max_processes)
        work_dir = None
        if not self._forkserver.isolated:
            os.makedirs(self.cwd, mode=0o700)
            work_dir = self.cwd
        sock, self.handle, self._status = await self._forkserver.spawn(
            self.cgroup.dirs if self.cgroup else [], work_dir
        )
        loop = asyncio.get_running_loop()
        self.exited = loop.create_future()
        self._status.add_done_callback(self._on_status)
        self._reader, self._writer = await asyncio.open_unix_connection(sock=sock, limit=wire.MAX_FRAME)
        ready = await self._frame()
        if "fatal" in ready:
            raise KernelStartError(ready["fatal"])

    def _on_status(self, fut: asyncio.Future) -> None:
        if self.exited is None or self.exited.done():
            return
        if self.kill_reason:  # killed on purpose: the reason is known, no need to ask the cgroup
            self.exited.set_result(self.kill_reason)
            return
        status = None if fut.cancelled() else fut.result()
        oom = bool(self.cgroup and self.cgroup.oom_kills())
        self.exited.set_result(describe_exit(status, self.cfg, oom))

    async def _frame(self) -> dict:
        import json

        assert self._reader is not None  # set by _start, never cleared: frames come from a started kernel
        header = await self._reader.readexactly(wire.HEADER.size)
        (size,) = wire.HEADER.unpack(header)
        if size > wire.MAX_FRAME:
            raise wire.WireError(f"frame of {size} bytes")
        return json.loads(await self._reader.readexactly(size))

    async def raw_frame(self) -> bytes:
        """One frame's body, unparsed (grading frames are signed bytes, not JSON)."""
        assert self._reader is not None  # set by _start, never cleared: frames come from a started kernel
        header = await self._reader.readexactly(wire.HEADER.size)
        (size,) = wire.HEADER.unpack(header)
        if size > wire.MAX_FRAME:
            raise wire.WireError(f"frame of {size} bytes")
        return await self._reader.readexactly(size)

    def send(self, message: dict) -> None:
        if self._writer is None:  # not started, or closed
            raise ConnectionError(f"kernel {self.name} has no connection")
        self._writer.write(wire.encode(message))

    async def _until(self, awaitable, deadline: float):
        """The awaitable's result, or raise TimeoutError at `deadline`, or _Died if the kernel exits first."""
        assert self.exited is not None  # set by _start: only a started kernel is waited on
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(awaitable)
        try:
            await asyncio.wait(
                (task, self.exited), timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            task.cancel()
            raise
        if task.done():
            try:
                return task.result()
            except (asyncio.IncompleteReadError, ConnectionError, wire.WireError, ValueError):
                await self._wait_exit(1.0)
                raise _Died(self._gone_reason()) from None
        if self.exited.done():
            task.cancel()
            raise _Died(self.exited.result())
        task.cancel()
        raise asyncio.TimeoutError

    async def _wait_exit(self, seconds: float) -> None:
        if self.exited is not None and not self.exited.done():
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), seconds)
            except asyncio.TimeoutError:
                pass

    def _gone_reason(self) -> str:
        if self.exited is not None and self.exited.done():
            return self.exited.result()
        return self.kill_reason or "the kernel closed its connection"

    async def run(self, code: str, timeout: float, max_output_chars: int) -> CellOutcome:
        loop = asyncio.get_running_loop()
        try:
            self.send({"op": "exec", "code": code, "max_output_chars": max_output_chars})
            pending = asyncio.ensure_future(self._frame())
            try:
                answer = await self._until(asyncio.shield(pending), loop.time() + timeout)
                return self._outcome(answer, max_output_chars)
            except asyncio.TimeoutError:
                pass
            self.interrupt()
            try:
                answer = await self._until(asyncio.shield(pending), loop.time() + self.cfg.interrupt_grace)
            except asyncio.TimeoutError:
                pending.cancel()
                reason = (
                    f"the call exceeded its {timeout:g} s timeout and ignored SIGINT for "
                    f"{self.cfg.interrupt_grace:g} s; kernel killed, session state lost"
                )
                self.kill(reason)
                return _failed("timeout", reason, "SandboxTimeout", kernel_lost=True)
        except _Died as died:
            return _failed("killed", died.reason, "SandboxKilled", kernel_lost=True)
        except (ConnectionError, RuntimeError) as exc:  # the socket broke under us
            self.kill(f"connection lost: {exc}")
            return _failed("killed", f"connection lost: {exc}", "SandboxKilled", kernel_lost=True)
        outcome = self._outcome(answer, max_output_chars)
        note = f"the call exceeded its {timeout:g} s timeout; interrupted, session state kept"
        return CellOutcome(
            "timeout",
            outcome.stdout,
            outcome.stderr,
            outcome.result,
            {"ename": "SandboxTimeout", "evalue": note, "traceback": []},
            kernel_lost=False,
            reason=note,
        )

    @staticmethod
    def _outcome(answer: dict, limit: int) -> CellOutcome:
        result = answer.get("result")
        return CellOutcome(
            answer.get("status", "error"),
            cap(answer.get("stdout") or "", limit),
            cap(answer.get("stderr") or "", limit),
            cap(result, limit) if result is not None else None,
            answer.get("error"),
        )

    # -- life and death ----------------------------------------------------------------------

    def interrupt(self) -> None:
        """SIGINT to the session's process group."""
        if self.handle:
            procs.kill_group(self.handle, signal.SIGINT)

    def kill(self, reason: str) -> None:
        """SIGKILL every process of the kernel now; `reason` becomes what the caller is told.

        Once is enough: SIGKILL is final for the session, and close() kills what is left in its
        cgroup until it is empty (with namespaces, the kernel ends the rest with the namespace).
        """
        if self._killed or self.handle is None:
            return
        self._killed = True
        if self.kill_reason is None and self.alive:
            self.kill_reason = reason
        if self.cgroup:
            self.cgroup.kill_once()  # close() kills again until the cgroup is empty; this never blocks
        procs.kill_group(self.handle)
        procs.kill([self.handle])
        if not self.cgroup and not self._forkserver.isolated:
            procs.kill(p.pid for p in procs.members(self.handle, procs.scan()))

    async def close(self, reason: str = "session closed") -> None:
        """Kill the kernel and remove everything it left: socket, folder, cgroup."""
        if self.handle is not None:
            self.kill(reason)
            if self.exited is not None and not self.exited.done():
                try:
                    await asyncio.wait_for(asyncio.shield(self.exited), 10.0)
                except asyncio.TimeoutError:
                    log.warning("kernel %s (pid %s) did not exit after SIGKILL", self.name, self.pid)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.cgroup:
            for _ in range(400):  # about 2 s: processes forked while we killed, zombies not yet reaped
                if self.cgroup.remove():
                    break
                self.cgroup.kill_once()
                await asyncio.sleep(0.005)
            else:
                log.warning("cgroup of kernel %s still busy; left for shutdown", self.name)
        if not self._forkserver.isolated:
            await asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, self.cwd, True)


def _failed(status: str, reason: str, ename: str, kernel_lost: bool) -> CellOutcome:
    return CellOutcome(
        status,
        "",
        "",
        None,
        {"ename": ename, "evalue": reason, "traceback": []},
        kernel_lost=kernel_lost,
        reason=reason,
    )


class _Died(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


__all__ = ["CellOutcome", "Kernel", "KernelStartError", "describe_exit", "socket"]
