"""`python -m assay.sandbox.server`: start the sandbox service.

With `--workers 1` (the default) this process serves HTTP and owns the kernels. With more, it
becomes the router in front of that many worker processes (router.py); each worker is this same
module started with the internal `--unix-socket` option.

Stop it with SIGTERM or Ctrl-C: every kernel, cgroup and temporary folder is removed. If it is
killed outright, its kernels die with it (they hold PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from aiohttp import web

from .config import SandboxConfig, add_arguments, from_namespace


def _die_with_parent(parent_pid: int) -> None:
    """A worker stops (gracefully, SIGTERM) when its router dies, whatever killed the router."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        sys.exit(0)


def parse_args(argv: list[str] | None = None) -> tuple[SandboxConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m assay.sandbox.server", description=__doc__.split("\n")[0])
    add_arguments(parser)
    parser.add_argument("--log-level", default="INFO", help="Python logging level (default: %(default)s)")
    internal = parser.add_argument_group("internal (set by the router for its workers)")
    internal.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    internal.add_argument("--unix-socket", default=None, help=argparse.SUPPRESS)
    internal.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    try:
        return from_namespace(ns), ns
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> None:
    cfg, ns = parse_args(argv)
    logging.basicConfig(level=ns.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run: dict[str, Any] = dict(access_log=None, shutdown_timeout=5.0, handle_signals=True)
    if ns.unix_socket:  # a worker behind the router
        if ns.parent_pid:
            _die_with_parent(ns.parent_pid)
        from .app import make_app

        web.run_app(make_app(cfg, worker=ns.worker_index), path=ns.unix_socket, print=None, **run)
        return
    banner = (
        f"assay sandbox serving on http://{cfg.host}:{cfg.port} "
        f"({cfg.workers} worker{'s' if cfg.workers > 1 else ''}, "
        f"{'token required' if cfg.token else 'no token'})"
    )
    if cfg.workers == 1:
        from .app import make_app

        app = make_app(cfg, worker=0, token=cfg.token)
    else:
        from .router import make_router_app

        app = make_router_app(cfg)
    web.run_app(app, host=cfg.host, port=cfg.port, print=lambda _: print(banner, flush=True), **run)


if __name__ == "__main__":
    main()
