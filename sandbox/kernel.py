"""One IPython kernel process and the running of one cell in it.

A kernel is started by kernel_launcher.py as a fresh interpreter in its own process session (so
its process group id is its pid), reached over ZeroMQ IPC sockets in a private folder through
jupyter_client, and watched through a pidfd so that a crash is noticed at once rather than at the
next poll. `run()` turns the Jupyter message exchange of one cell into a `CellOutcome`:

- ok / error: the kernel answered in time.
- timeout: the deadline passed. The kernel's process group gets SIGINT; if the cell stops within
  the grace period the kernel (and its state) is kept, otherwise the kernel is killed and the
  outcome says `kernel_lost`.
- killed: the kernel died during the cell (crash, os._exit, OOM, CPU limit, or a limit that the
  session monitor enforced by killing it); `reason` says which.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass

import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import write_connection_file

from . import procs
from .cgroups import CgroupRoot, KernelCgroup
from .config import SandboxConfig
from .output import CappedText, cap, strip_ansi

log = logging.getLogger(__name__)

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_launcher.py")
KERNEL_ARGS = ["--HistoryManager.enabled=False", "--InteractiveShell.colors=NoColor"]
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


def _describe_exit(rc: int, cfg: SandboxConfig, oom_killed: bool) -> str:
    if oom_killed:
        return f"out of memory: the session went over its {cfg.memory_mb} MB memory limit"
    if rc >= 0:
        return f"the kernel process exited with status {rc}"
    sig = -rc
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
    """A started IPython kernel with its limits, sockets, working folder and cgroup."""

    def __init__(self, cfg: SandboxConfig, runtime_dir: str, work_root: str,
                 cgroup_root: CgroupRoot, context: zmq.asyncio.Context):
        self.cfg = cfg
        self.name = f"k{next(_names)}-{uuid.uuid4().hex[:8]}"
        self.dir = os.path.join(runtime_dir, self.name)
        self.cwd = os.path.join(work_root, self.name)
        self._cgroup_root = cgroup_root
        self._context = context
        self.cgroup: KernelCgroup | None = None
        self.proc: subprocess.Popen | None = None
        self.client: AsyncKernelClient | None = None
        self.exited: asyncio.Future | None = None
        self.kill_reason: str | None = None  # set when we kill it on purpose
        self._pidfd: int | None = None
        self._pending: dict[str, asyncio.Future] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.exited is not None and not self.exited.done()

    async def start(self) -> None:
        try:
            self._launch()
            await asyncio.wait_for(self._wait_ready(), self.cfg.kernel_start_timeout)
        except (OSError, asyncio.TimeoutError, KernelStartError) as exc:
            tail = self._log_tail()
            await self.close("start failed")
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else "timed out"
            raise KernelStartError(f"kernel did not start ({detail}) {tail}".strip()) from None

    def _launch(self) -> None:
        os.makedirs(self.dir, mode=0o700)
        os.makedirs(self.cwd, mode=0o700)
        conn_file, _ = write_connection_file(
            os.path.join(self.dir, "conn.json"), ip=os.path.join(self.dir, "ipc"), transport="ipc",
            key=uuid.uuid4().hex.encode(),
        )
        cfg = self.cfg
        if self._cgroup_root.base:
            self.cgroup = self._cgroup_root.make(self.name, cfg.memory_mb * 2**20, cfg.max_processes)
        cmd = [cfg.python, LAUNCHER, "--parent-pid", str(os.getpid()),
               "--address-space-mb", str(cfg.address_space_mb), "--cpu-seconds", str(cfg.cpu_seconds)]
        for d in self.cgroup.dirs if self.cgroup else []:
            cmd += ["--cgroup", d]
        cmd += ["--log", os.path.join(self.dir, "kernel.log"), "--", "-f", conn_file, *KERNEL_ARGS]
        env = {k: v for k, v in os.environ.items() if k != "ASSAY_SANDBOX_TOKEN"}
        self.proc = subprocess.Popen(
            cmd, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
        )
        loop = asyncio.get_running_loop()
        self.exited = loop.create_future()
        try:
            self._pidfd = os.pidfd_open(self.proc.pid)
            loop.add_reader(self._pidfd, self._on_exit)
        except (AttributeError, OSError):  # no pidfd (old kernel): poll instead
            self._pidfd = None
            loop.create_task(self._poll_exit())
        self.client = AsyncKernelClient(context=self._context)
        self.client.load_connection_file(conn_file)
        self.client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)

    def _log_tail(self, n: int = 2000) -> str:
        try:
            with open(os.path.join(self.dir, "kernel.log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _on_exit(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        self._set_exited(self.proc.wait())

    async def _poll_exit(self) -> None:
        while self.proc.poll() is None:
            await asyncio.sleep(0.05)
        self._set_exited(self.proc.returncode)

    def _set_exited(self, rc: int) -> None:
        if self.exited.done():
            return
        oom = bool(self.cgroup and self.cgroup.oom_kills())
        self.exited.set_result(self.kill_reason or _describe_exit(rc, self.cfg, oom))
        for fut in self._pending.values():
            fut.cancel()
        self._pending.clear()

    # -- messaging -------------------------------------------------------------------------

    async def _recv(self, channel: str, timeout: float) -> dict | None:
        """The next message on `channel`, None after `timeout`; raises _Died if the kernel exits."""
        fut = self._pending.pop(channel, None)
        if fut is None:
            sock = (self.client.iopub_channel if channel == "iopub" else self.client.shell_channel).socket
            fut = asyncio.ensure_future(sock.recv_multipart())
        if not fut.done():
            await asyncio.wait((fut, self.exited), timeout=max(0.0, timeout),
                               return_when=asyncio.FIRST_COMPLETED)
        if fut.done() and not fut.cancelled():
            return _parse(fut.result())
        if self.exited.done():
            fut.cancel()
            raise _Died(self.exited.result())
        self._pending[channel] = fut  # keep the receive pending for the next call
        return None

    async def _wait_ready(self) -> None:
        """Ask for kernel_info until the reply comes and IOPub carries the request's status.

        IOPub is a PUB/SUB pair: messages sent before our subscription reached the kernel are
        lost, so seeing the status of one of our requests is what proves it is connected.
        """
        loop = asyncio.get_running_loop()
        sent: set[str] = set()
        try:
            while True:
                sent.add(self.client.kernel_info())
                if await self._recv("shell", 1.0) is None:
                    continue
                end = loop.time() + 0.5
                while (msg := await self._recv("iopub", end - loop.time())) is not None:
                    if msg["msg_type"] == "status" and msg["parent_header"].get("msg_id") in sent:
                        return
        except _Died as died:
            raise KernelStartError(died.reason) from None

    async def run(self, code: str, timeout: float, max_output_chars: int) -> CellOutcome:
        loop = asyncio.get_running_loop()
        out, err = CappedText(max_output_chars), CappedText(max_output_chars)
        cell = _Cell(out, err)
        msg_id = self.client.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        try:
            if await self._collect(msg_id, cell, loop.time() + timeout):
                reply = await self._reply(msg_id, loop.time() + 30.0)
                return cell.outcome(reply, max_output_chars)
            self.interrupt()
            stopped = await self._collect(msg_id, cell, loop.time() + self.cfg.interrupt_grace)
        except _Died as died:
            return cell.outcome(None, max_output_chars, "killed", died.reason)
        note = f"the call exceeded its {timeout:g} s timeout"
        if stopped:
            await self._reply(msg_id, loop.time() + 5.0)  # consume it; state is kept
            return cell.outcome(None, max_output_chars, "timeout", note + "; interrupted, session state kept",
                                kernel_lost=False)
        reason = note + f" and ignored SIGINT for {self.cfg.interrupt_grace:g} s; kernel killed, session state lost"
        self.kill(reason)
        return cell.outcome(None, max_output_chars, "timeout", reason)

    async def _collect(self, msg_id: str, cell: "_Cell", deadline: float) -> bool:
        """Route IOPub output of `msg_id` into `cell` until it goes idle (True) or `deadline` (False)."""
        loop = asyncio.get_running_loop()
        while True:
            msg = await self._recv("iopub", deadline - loop.time())
            if msg is None:
                return False
            if msg["parent_header"].get("msg_id") == msg_id and cell.add(msg):
                return True

    async def _reply(self, msg_id: str, deadline: float) -> dict | None:
        loop = asyncio.get_running_loop()
        while True:
            msg = await self._recv("shell", deadline - loop.time())
            if msg is None or msg["parent_header"].get("msg_id") == msg_id:
                return msg

    # -- life and death ----------------------------------------------------------------------

    def interrupt(self) -> None:
        procs.kill_group(self.pid, signal.SIGINT)

    def kill(self, reason: str) -> None:
        """SIGKILL every process of the kernel now; `reason` becomes what the caller is told."""
        if self.kill_reason is None and self.alive:
            self.kill_reason = reason
        if self.cgroup:
            self.cgroup.kill_all()
        procs.kill_group(self.pid)
        if not self.cgroup:  # children that left the process group are found through their parent
            procs.kill(p.pid for p in procs.members(self.pid, procs.scan()))

    async def close(self, reason: str = "session closed") -> None:
        """Kill the kernel and remove everything it left: sockets, folders, cgroup."""
        if self.proc is not None:
            self.kill(reason)
            if self.exited is not None and not self.exited.done():
                try:
                    await asyncio.wait_for(asyncio.shield(self.exited), 10.0)
                except asyncio.TimeoutError:
                    log.warning("kernel %s (pid %s) did not exit after SIGKILL", self.name, self.pid)
            procs.kill_group(self.pid)  # children that outlived the kernel
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        for fut in self._pending.values():
            fut.cancel()
        self._pending.clear()
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        if self.cgroup and not self.cgroup.remove():
            await asyncio.sleep(0.05)
            self.cgroup.kill_all()
            if not self.cgroup.remove():
                log.warning("cgroup of kernel %s still busy; left for shutdown", self.name)
        await asyncio.get_running_loop().run_in_executor(None, self._remove_folders)

    def _remove_folders(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.cwd, ignore_errors=True)


def _parse(frames: list[bytes]) -> dict:
    """The parts of a Jupyter wire message that this module reads.

    jupyter_client's Session.deserialize also verifies the HMAC and converts every date in the
    headers, about a third of the server's CPU per call. Verification adds nothing here: the
    sockets sit in a folder only this user can open, and whoever can open them can read the key.
    """
    i = frames.index(b"<IDS|MSG>")
    header, parent, _metadata, content = frames[i + 2 : i + 6]
    return {"msg_type": json.loads(header)["msg_type"], "parent_header": json.loads(parent),
            "content": json.loads(content)}


class _Died(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Cell:
    """The output of one execute request as it arrives on IOPub."""

    def __init__(self, out: CappedText, err: CappedText):
        self.out, self.err = out, err
        self.result: str | None = None
        self.error: dict | None = None

    def add(self, msg: dict) -> bool:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            (self.err if content.get("name") == "stderr" else self.out).write(content.get("text", ""))
        elif kind == "execute_result":
            self.result = content.get("data", {}).get("text/plain")
        elif kind == "display_data":
            text = content.get("data", {}).get("text/plain")
            if text is not None:
                self.out.write(text + "\n")
        elif kind == "error":
            self.error = _error(content)
        elif kind == "status":
            return content.get("execution_state") == "idle"
        return False

    def outcome(self, reply: dict | None, limit: int, status: str | None = None, reason: str | None = None,
                kernel_lost: bool = True) -> CellOutcome:
        result = cap(self.result, limit) if self.result is not None else None
        error = self.error
        if status is None:  # the kernel answered
            content = reply["content"] if reply else {}
            status = "ok" if content.get("status") == "ok" else "error"
            if status == "error":
                error = _error(content) if "ename" in content else (error or _sandbox_error(
                    "SandboxError", "the kernel sent no reply for this cell"))
            kernel_lost = False
        else:
            ename = "SandboxTimeout" if status == "timeout" else "SandboxKilled"
            error = _sandbox_error(ename, reason)
        return CellOutcome(status, self.out.getvalue(), self.err.getvalue(), result, error,
                           kernel_lost=kernel_lost, reason=reason)


def _error(content: dict) -> dict:
    return {
        "ename": content.get("ename", ""),
        "evalue": strip_ansi(content.get("evalue", "")),
        "traceback": [strip_ansi(line) for line in content.get("traceback", [])],
    }


def _sandbox_error(ename: str, evalue: str) -> dict:
    return {"ename": ename, "evalue": evalue, "traceback": []}
