"""At most N local jobs run at once on this machine: a slot is an exclusive lock on one of N files.

Without a limit the local executor starts every independent job at once; on a laptop, three vLLM
servers that start together each take several times longer than one alone, and they compete for
memory. A cluster config's `max_parallel_jobs` makes a job wait for a free slot before it starts its
services and command. The slots live in one folder per cluster config on this machine, so the limit
holds across launchers too. A slot is a `flock`, which the kernel releases when its holder exits,
even by SIGKILL, so a crashed job never keeps a slot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..core.paths import state_dir


def slots_root() -> Path:
    """`<state dir>/local_slots` (core/paths.py)."""
    return state_dir() / "local_slots"


@dataclass
class LocalSlots:
    """N slots shared by every local job of one cluster config on this machine."""

    folder: str
    count: int

    @classmethod
    def for_cluster(cls, cluster_name: str, count: int) -> "LocalSlots":
        return cls(str(slots_root() / (cluster_name or "local")), count)


@contextlib.contextmanager
def hold_slot(slots: Optional[LocalSlots], job_name: str, poll_s: float = 0.5) -> Iterator[Optional[int]]:
    """Wait for a free slot, hold it for the body, free it after; no limit (`slots=None`) waits for nothing."""
    if slots is None:
        yield None
        return
    folder = Path(slots.folder)
    folder.mkdir(parents=True, exist_ok=True)
    announced = False
    while True:
        for index in range(slots.count):
            handle = open(folder / f"slot_{index}.lock", "a+")
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()} {job_name}\n")
                handle.flush()
                if announced:
                    print(f"[assay] {job_name}: got local slot {index}", flush=True)
                yield index
            finally:
                handle.close()  # closing the file releases the lock
            return
        if not announced:
            print(
                f"[assay] {job_name}: waiting for a free local slot (max_parallel_jobs={slots.count}; "
                f"holders in {folder})",
                flush=True,
            )
            announced = True
        time.sleep(poll_s)
