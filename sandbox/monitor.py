"""Enforce a session's process and memory limits where the kernel does not do it for us.

With a pids cgroup the kernel already refuses the fork past `max_processes`; the session is then
killed (a half-failed fork bomb keeps spinning otherwise), so reaching the limit always ends the
session, with or without cgroups. Without cgroups this watcher counts the session's processes and
sums their resident memory every `monitor_interval` seconds and kills the session when either is
over its limit. Memory is the sum of RSS, confirmed with PSS (which counts a page shared by N
forks as 1/N in each) before a kill, so forked workers are not charged N times for shared pages.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Iterable

from . import procs
from .cgroups import CgroupRoot
from .config import SandboxConfig
from .kernel import Kernel

log = logging.getLogger(__name__)


class LimitMonitor:
    def __init__(self, cfg: SandboxConfig, cgroups: CgroupRoot):
        self.cfg = cfg
        self.watch_processes = not cgroups.enforces_processes
        self.watch_memory = not cgroups.enforces_memory

    def breach(self, kernel: Kernel, table: dict[int, procs.Proc] | None = None) -> str | None:
        """Why `kernel` must be killed now, or None. `table` is a /proc scan (fallback mode)."""
        cfg = self.cfg
        if kernel.cgroup and kernel.cgroup.pids_limit_hits() > 0:
            return f"process limit: the session tried to run more than {cfg.max_processes} processes"
        if table is None or kernel.pid is None:  # no scan, or no process yet
            return None
        members = procs.members(kernel.pid, table)
        if self.watch_processes and len(members) > cfg.max_processes:
            return f"process limit: the session ran {len(members)} processes, over its limit of {cfg.max_processes}"
        if self.watch_memory and sum(p.rss_bytes for p in members) > cfg.memory_mb * 2**20:
            # RSS over-counts pages shared between forks; confirm with PSS before killing.
            used = sum(procs.pss_bytes(p.pid) or p.rss_bytes for p in members) // 2**20
            if used > cfg.memory_mb:
                return f"out of memory: the session's processes used {used} MB, over its {cfg.memory_mb} MB limit"
        return None

    def check(self, kernels: Iterable[Kernel]) -> None:
        kernels = [k for k in kernels if k.alive]
        if not kernels:
            return
        table = procs.scan() if (self.watch_processes or self.watch_memory) else None
        for kernel in kernels:
            reason = self.breach(kernel, table)
            if reason:
                log.info("killing kernel %s: %s", kernel.name, reason)
                kernel.kill(reason)

    async def run(self, active: Callable[[], Iterable[Kernel]]) -> None:
        while True:
            await asyncio.sleep(self.cfg.monitor_interval)
            try:
                self.check(active())
            except Exception:  # the watcher must outlive any surprise in /proc or cgroupfs
                log.exception("limit monitor check failed")
