"""The kernel pool's bookkeeping, with stand-in kernels that start instantly."""

from __future__ import annotations

import asyncio

from assay.sandbox.kernel import KernelStartError
from assay.sandbox.pool import KernelPool


class FakeKernel:
    started = 0

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.alive = False
        self.closed = False

    async def start(self):
        await asyncio.sleep(0.001)
        if self.fail:
            raise KernelStartError("no ipykernel here")
        FakeKernel.started += 1
        self.alive = True

    async def close(self, reason=""):
        self.alive, self.closed = False, True


async def _settle(pool: KernelPool):
    for _ in range(200):
        await asyncio.sleep(0.002)
        if pool.ready >= pool.size and not pool._starting:
            return


def test_pool_refills_to_its_size_after_kernels_are_taken():
    async def main():
        pool = KernelPool(FakeKernel, size=2, max_starting=2)
        pool.fill()
        await _settle(pool)
        taken = await asyncio.gather(*(pool.take() for _ in range(7)))
        await _settle(pool)
        ready = pool.ready
        await pool.close()
        return taken, ready

    taken, ready = asyncio.run(main())
    assert len({id(k) for k in taken}) == 7 and all(k.alive for k in taken)
    assert ready == 2


def test_dead_kernels_in_the_pool_are_skipped():
    async def main():
        pool = KernelPool(FakeKernel, size=2, max_starting=2)
        pool.fill()
        await _settle(pool)
        for k in list(pool._ready):
            k.alive = False
        kernel = await pool.take()
        await pool.close()
        return kernel

    assert asyncio.run(main()).alive


def test_a_kernel_that_cannot_start_fails_the_waiting_caller():
    async def main():
        pool = KernelPool(lambda: FakeKernel(fail=True), size=0, max_starting=1)
        try:
            await asyncio.wait_for(pool.take(), 5)
        except KernelStartError as exc:
            return str(exc)
        finally:
            await pool.close()

    assert asyncio.run(main()) == "no ipykernel here"
