"""One writer per output file: an exclusive lock that names its holder.

Two processes appending to the same `<output>.partial` would interleave and duplicate lines. The
second one fails at once, naming the first (host, pid, Slurm job id, start time), so the user can
tell a live run from a stale one. The lock is `fcntl.flock` on `<output>.lock`: the kernel drops it
when the holder dies, so a crash never leaves a stale lock behind (the file itself may stay, and the
next writer takes it over). A clean release removes the file; a writer that locked a file removed
under it (between its open and its flock) sees that and locks the new one instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Optional


class OutputLockedError(RuntimeError):
    """Another live process is writing this output."""


class OutputLock:
    """`with OutputLock(output_file): ...` holds the lock for the block."""

    def __init__(self, output_file: str | os.PathLike):
        self.path = Path(str(output_file) + ".lock")
        self._file: Optional[IO[str]] = None

    def __enter__(self) -> "OutputLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            f = open(self.path, "a+", encoding="utf-8")
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = _describe(f.read())
                f.close()
                raise OutputLockedError(
                    f"{self.path.with_suffix('')} is being written by another process ({holder}); "
                    "wait for it, or stop it before running this again"
                ) from None
            if _same_file(f, self.path):
                break
            f.close()  # the holder released and removed it between our open and our flock: lock the new one
        f.seek(0)
        f.truncate()
        f.write(json.dumps(_holder()))
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self.path.unlink(missing_ok=True)  # while still locked: a newcomer then opens a new file
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _same_file(f: IO[str], path: Path) -> bool:
    try:
        return os.fstat(f.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _holder() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _describe(text: str) -> str:
    try:
        info = json.loads(text)
    except ValueError:
        return "holder unknown"
    parts = [f"host {info.get('host')}", f"pid {info.get('pid')}"]
    if info.get("slurm_job_id"):
        parts.append(f"Slurm job {info['slurm_job_id']}")
    parts.append(f"since {info.get('since')}")
    return ", ".join(parts)
