"""The worker's side of the fork server (zygote.py): start it, ask it for processes, hear their exits.

Three fork servers per worker (sessions, grading, grading with torch; see sessions.py). Each is
started with an allow-listed environment (no keys or tokens can reach anything it forks) and told which isolation to use; it answers with what it could do, which
`/health` reports. `spawn()` hands it one end of a fresh socket pair and returns the other end with
the pid of the new process's handle (the process whose exit the worker watches).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import subprocess
import time

from . import isolation
from .config import SandboxConfig
from .wire import HEADER

log = logging.getLogger(__name__)

ZYGOTE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zygote.py")


class ForkServerError(RuntimeError):
    pass


def zygote_settings(cfg: SandboxConfig, control_fd: int, preload: list[str], shell: bool = True) -> dict:
    home = os.path.expanduser("~")
    return {
        "control_fd": control_fd,
        "parent_pid": os.getpid(),
        "isolation": cfg.isolation,
        "user_namespace": cfg.isolation in ("auto", "namespaces") and isolation.can_enter_user_namespace(),
        "allow_network": cfg.allow_network,
        "tmp_size": f"{cfg.tmp_mb}m",
        "hidden_home": home,
        "address_space_mb": cfg.address_space_mb,
        "cpu_seconds": cfg.cpu_seconds,
        "preload": preload,
        "shell": shell,
        "env": isolation.default_env(home, "/tmp"),
    }


class ForkServer:
    def __init__(self, cfg: SandboxConfig, preload: list[str], shell: bool = True):
        """`shell`: whether its forks may become IPython sessions (else they only run grading runs)."""
        self.cfg = cfg
        self.preload = preload
        self.shell = shell
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self._control: socket.socket | None = None
        self._ids = itertools.count()
        self._spawns: dict[int, asyncio.Future] = {}
        self._exits: dict[int, asyncio.Future] = {}
        self._early_exits: dict[int, int] = {}
        self._ready: asyncio.Future | None = None
        self._starting: asyncio.Future | None = None

    async def start(self, timeout: float) -> dict:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        settings = zygote_settings(self.cfg, theirs.fileno(), self.preload, self.shell)
        env = settings["env"]
        self.proc = subprocess.Popen(
            [self.cfg.python, ZYGOTE, json.dumps(settings)],
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
        theirs.close()
        self._control = ours
        ours.setblocking(False)
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_message)
        try:
            self.info = await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except asyncio.TimeoutError:
            raise ForkServerError(f"the fork server did not start within {timeout:g} s") from None
        except ForkServerError as exc:
            status = self.proc.wait(5) if self.proc else None
            raise ForkServerError(f"{exc} (status {status}; interpreter {self.cfg.python})") from None
        log.info(
            "fork server %s ready: isolation %s%s, preloaded %s",
            self.info.get("pid"),
            self.info["isolation"],
            f" ({self.info['isolation_note']})" if self.info.get("isolation_note") else "",
            ",".join(self.info.get("preloaded") or []) or "nothing",
        )
        return self.info

    @property
    def isolated(self) -> bool:
        return self.info.get("isolation") == "namespaces"

    def _on_message(self) -> None:
        assert self._control is not None  # the reader is removed before the socket is dropped (stop)
        try:
            data = self._control.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost("the fork server exited")
            return
        message = json.loads(data[HEADER.size :])
        if "ready" in message:
            if self._ready and not self._ready.done():
                self._ready.set_result(message)
        elif "exited" in message:
            pid, status = message["exited"], message["status"]
            fut = self._exits.pop(pid, None)
            if fut is None:
                self._early_exits[pid] = status
            elif not fut.done():
                fut.set_result(status)
        elif "id" in message:
            fut = self._spawns.pop(message["id"], None)
            if fut and not fut.done():
                if "error" in message:
                    fut.set_exception(ForkServerError(f"the fork server could not fork: {message['error']}"))
                else:
                    fut.set_result(message["pid"])

    def _lost(self, reason: str) -> None:
        if self._control is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._control.fileno())
            except (ValueError, OSError):
                pass
        error = ForkServerError(reason)
        for fut in list(self._spawns.values()) + ([self._ready] if self._ready else []):
            if fut and not fut.done():
                fut.set_exception(error)
        for fut in self._exits.values():
            if not fut.done():
                fut.set_result(None)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def ensure(self, timeout: float) -> None:
        """Start the fork server, or start it again if it died; the failure says why."""
        if self.alive and self.info:
            return
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._restart(timeout))
        await asyncio.shield(self._starting)

    async def _restart(self, timeout: float) -> None:
        if self.proc is not None:
            log.error("the fork server exited (status %s); starting it again", self.proc.poll())
            await self.stop()
            self.info = {}
        try:
            await self.start(timeout)
        except ForkServerError:
            await self.stop()
            raise
        except OSError as exc:
            raise ForkServerError(f"the fork server could not start: {exc}") from None

    async def spawn(self, cgroup_dirs: list[str], work_dir: str | None) -> tuple[socket.socket, int, asyncio.Future]:
        """A new process: our end of its socket, its handle pid, and a future of its wait status."""
        if not self.alive or self._control is None:
            raise ForkServerError("the fork server is not running")
        ours, theirs = socket.socketpair()
        request_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._spawns[request_id] = fut
        request = {"id": request_id, "cgroups": cgroup_dirs, "work_dir": work_dir}
        try:
            socket.send_fds(self._control, [json.dumps(request).encode()], [theirs.fileno()])
        except OSError as exc:
            self._spawns.pop(request_id, None)
            ours.close()
            raise ForkServerError(f"the fork server does not answer: {exc}") from None
        finally:
            theirs.close()
        pid = await fut
        exit_fut = asyncio.get_running_loop().create_future()
        if pid in self._early_exits:
            exit_fut.set_result(self._early_exits.pop(pid))
        else:
            self._exits[pid] = exit_fut
        return ours, pid, exit_fut

    async def stop(self) -> None:
        if self._control is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._control.fileno())
            except (ValueError, OSError):
                pass
            self._control.close()
            self._control = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            end = time.monotonic() + 10
            while self.proc.poll() is None and time.monotonic() < end:
                await asyncio.sleep(0.01)
