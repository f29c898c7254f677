"""The front process of a multi-worker sandbox: it owns the port and routes by session id.

Each worker is a separate process (its own event loop and kernels) serving on a Unix socket in a
private folder. A request goes to the worker that owns its session: ids the service made are
`w<k>-...`; any other id maps to a worker by a stable hash, so the same id always lands on the
same worker. Throw-away calls and new sessions go round-robin. Authentication happens here; the
worker sockets are reachable only through the folder (mode 0700).

A worker that exits is started again (its sessions are lost); until it answers, requests routed
to it get HTTP 503.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib

import aiohttp
from aiohttp import web

from .app import MAX_BODY, auth_middleware, error_response
from .config import SandboxConfig

log = logging.getLogger(__name__)
_OWNER = re.compile(r"^w(\d+)-")
ROUTER = web.AppKey["Router"]("router")  # typed by the class defined below


def worker_for(session_id, workers: int) -> int | None:
    """The worker that owns `session_id`; None for a throw-away call (or an unreadable id)."""
    if not isinstance(session_id, str) or not session_id:
        return None
    match = _OWNER.match(session_id)
    if match and int(match.group(1)) < workers:
        return int(match.group(1))
    return zlib.crc32(session_id.encode()) % workers


def worker_command(cfg: SandboxConfig, index: int, socket_path: str) -> list[str]:
    cmd = [sys.executable, "-m", "assay.sandbox.server"]
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name in ("host", "port", "workers", "token") or value is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            cmd.append(flag if value else "--no-" + f.name.replace("_", "-"))
        else:
            cmd += [flag, str(value)]
    return cmd + ["--worker-index", str(index), "--unix-socket", socket_path, "--parent-pid", str(os.getpid())]


class Router:
    def __init__(self, cfg: SandboxConfig):
        self.cfg = cfg
        self.dir = tempfile.mkdtemp(prefix=f"assay-sbx-{os.getpid()}-router-")
        self.sockets = [os.path.join(self.dir, f"w{k}.sock") for k in range(cfg.workers)]
        self.procs: list[subprocess.Popen | None] = [None] * cfg.workers
        self.clients: list[aiohttp.ClientSession] = []
        self._next = itertools.cycle(range(cfg.workers))
        self._supervisor: asyncio.Task | None = None

    def _spawn(self, k: int) -> None:
        env = {key: v for key, v in os.environ.items() if key != "ASSAY_SANDBOX_TOKEN"}
        if os.path.exists(self.sockets[k]):
            os.unlink(self.sockets[k])
        self.procs[k] = subprocess.Popen(
            worker_command(self.cfg, k, self.sockets[k]), env=env, stdin=subprocess.DEVNULL
        )

    async def start(self) -> None:
        for k in range(self.cfg.workers):
            self._spawn(k)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
            self.clients.append(
                aiohttp.ClientSession(connector=aiohttp.UnixConnector(self.sockets[k], limit=0), timeout=timeout)
            )
        await asyncio.gather(*(self._wait_healthy(k) for k in range(self.cfg.workers)))
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _wait_healthy(self, k: int, timeout: float = 120.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            proc = self.procs[k]
            assert proc is not None  # started by _spawn(k) before the wait
            if proc.poll() is not None:
                raise RuntimeError(f"sandbox worker {k} exited with status {proc.returncode}")
            try:
                async with self.clients[k].get("http://worker/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"sandbox worker {k} did not become healthy in {timeout:g} s")

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for k, proc in enumerate(self.procs):
                assert proc is not None  # start() spawned every worker before it started the supervisor
                if proc.poll() is not None:
                    log.error("sandbox worker %d exited with status %s; starting it again", k, proc.returncode)
                    self._spawn(k)

    async def stop(self) -> None:
        if self._supervisor:
            self._supervisor.cancel()
        for proc in self.procs:
            if proc and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            if proc:
                try:
                    await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for client in self.clients:
            await client.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def forward(self, k: int, method: str, path: str, body: bytes | None = None) -> web.Response:
        try:
            async with self.clients[k].request(
                method, "http://worker" + path, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                return web.Response(
                    body=await resp.read(),
                    status=resp.status,
                    content_type="application/json",
                    headers={h: v for h, v in resp.headers.items() if h == "Retry-After"},
                )
        except aiohttp.ClientError as exc:
            return error_response(
                503, f"sandbox worker {k} is unavailable ({exc}); it is being restarted", **{"Retry-After": "1"}
            )

    async def gather(self, path: str) -> list[dict]:
        async def one(k):
            try:
                async with self.clients[k].get("http://worker" + path) as resp:
                    return await resp.json()
            except (aiohttp.ClientError, json.JSONDecodeError) as exc:
                return {"status": "unavailable", "worker": k, "message": str(exc)}

        return await asyncio.gather(*(one(k) for k in range(self.cfg.workers)))


async def execute(request: web.Request) -> web.Response:
    router, body = request.app[ROUTER], await request.read()
    try:
        session_id = json.loads(body).get("session_id")
    except (ValueError, AttributeError):
        session_id = None  # malformed: any worker answers with the right 400
    k = worker_for(session_id, router.cfg.workers)
    return await router.forward(next(router._next) if k is None else k, "POST", "/execute", body)


async def grade(request: web.Request) -> web.Response:
    router = request.app[ROUTER]
    return await router.forward(next(router._next), "POST", "/grade", await request.read())


async def grade_program(request: web.Request) -> web.Response:
    router = request.app[ROUTER]
    return await router.forward(next(router._next), "POST", "/grade_program", await request.read())


async def create_session(request: web.Request) -> web.Response:
    router = request.app[ROUTER]
    return await router.forward(next(router._next), "POST", "/sessions")


async def list_sessions(request: web.Request) -> web.Response:
    sessions = [s for part in await request.app[ROUTER].gather("/sessions") for s in part.get("sessions", [])]
    return web.json_response({"sessions": sessions, "count": len(sessions)})


async def delete_session(request: web.Request) -> web.Response:
    router, session_id = request.app[ROUTER], request.match_info["session_id"]
    k = worker_for(session_id, router.cfg.workers)
    assert k is not None  # a path segment is a non-empty string, which always maps to a worker
    return await router.forward(k, "DELETE", f"/sessions/{session_id}")


async def health(request: web.Request) -> web.Response:
    workers = await request.app[ROUTER].gather("/health")
    ok = all(w.get("status") == "ok" for w in workers)
    return web.json_response({"status": "ok" if ok else "degraded", "workers": workers}, status=200 if ok else 503)


def make_router_app(cfg: SandboxConfig) -> web.Application:
    app = web.Application(middlewares=[auth_middleware(cfg.token)], client_max_size=MAX_BODY)
    router = app[ROUTER] = Router(cfg)

    async def lifecycle(_app):
        await router.start()
        yield
        await router.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/execute", execute)
    app.router.add_post("/grade", grade)
    app.router.add_post("/grade_program", grade_program)
    app.router.add_post("/sessions", create_session)
    app.router.add_get("/sessions", list_sessions)
    app.router.add_delete("/sessions/{session_id}", delete_session)
    app.router.add_get("/health", health)
    return app
