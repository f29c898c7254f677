"""Kernels started ahead of need, handed out first come, first served.

Booting an IPython kernel costs about 0.5-1 s of CPU, far more than running a small cell, so a
few are kept ready: a new session or a throw-away call takes one at once and a replacement starts
in the background. When demand outruns the pool, callers queue in order while at most
`max_starting` kernels boot at a time (starting dozens at once on a few cores makes every one of
them late and spikes memory).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from typing import Callable

from .kernel import Kernel, KernelStartError

log = logging.getLogger(__name__)


class KernelPool:
    def __init__(self, make_kernel: Callable[[], Kernel], size: int, max_starting: int | None = None):
        self._make = make_kernel
        self.size = size
        self.max_starting = max_starting or max(1, min(4, os.cpu_count() or 1))
        self._ready: collections.deque[Kernel] = collections.deque()
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._starting: set[asyncio.Task] = set()
        self._failures = 0
        self._closed = False

    @property
    def ready(self) -> int:
        return len(self._ready)

    def fill(self) -> None:
        """Start kernels until ready + starting covers the pool size plus everyone waiting."""
        want = self.size + len(self._waiters)
        while (
            not self._closed
            and len(self._starting) < self.max_starting
            and len(self._ready) + len(self._starting) < want
        ):
            task = asyncio.get_running_loop().create_task(self._start_one())
            self._starting.add(task)
            task.add_done_callback(self._started)

    def _started(self, task: asyncio.Task) -> None:
        self._starting.discard(task)
        self.fill()

    async def _start_one(self) -> None:
        if self._failures:  # do not spin when kernels cannot start (bad --python, no ipykernel)
            await asyncio.sleep(min(10.0, 0.5 * 2 ** min(self._failures, 5)))
        kernel = self._make()
        try:
            await kernel.start()
        except KernelStartError as exc:
            self._failures += 1
            log.error("%s", exc)
            while self._waiters:  # tell one caller rather than leave everyone waiting
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(exc)
                    break
        except asyncio.CancelledError:
            await kernel.close("pool closed")
            raise
        else:
            self._failures = 0
            self._give(kernel)

    def _give(self, kernel: Kernel) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(kernel)
                return
        if self._closed:
            asyncio.get_running_loop().create_task(kernel.close("pool closed"))
        else:
            self._ready.append(kernel)

    async def take(self) -> Kernel:
        """A started kernel: a ready one at once, else the next one to finish booting."""
        while self._ready:
            kernel = self._ready.popleft()
            if kernel.alive:
                self.fill()
                return kernel
            asyncio.get_running_loop().create_task(kernel.close("died in the pool"))
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.fill()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._give(waiter.result())  # we were cancelled just as a kernel arrived
            raise

    async def close(self) -> None:
        self._closed = True
        for task in list(self._starting):
            task.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        kernels, self._ready = list(self._ready), collections.deque()
        await asyncio.gather(*(k.close("pool closed") for k in kernels), return_exceptions=True)
