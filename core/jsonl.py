"""JSONL reading and crash-safe writing: every stage reads and writes one JSON object per line.

Reading is a stream (one line in memory at a time), so a stage's memory does not grow with its input.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterable, Iterator


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield each line's object; a last line cut short by a crash (no newline, not JSON) is skipped."""
    with open(path, encoding="utf-8") as f:
        number = 0
        for line in f:
            number += 1
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                if not line.endswith("\n") and not f.read(1):
                    return  # a write interrupted by a crash; the sample will be redone
                raise ValueError(f"{path}:{number}: not a JSON line") from None


def count_jsonl(path: str | os.PathLike) -> int:
    """Lines with content, without parsing them."""
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def drop_incomplete_last_line(path: str | os.PathLike) -> None:
    """Cut a trailing partial line (a crash mid-write) so appends start on a fresh line."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        # find the last newline, reading backwards in blocks: the file may be large
        end = size
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            block = f.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                f.truncate(start + cut + 1)
                return
            end = start
        f.truncate(0)


def append_jsonl(f, obj: dict) -> None:
    """Append one line and push it to disk at once, so a crash loses at most the line being written."""
    f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    f.flush()
    os.fsync(f.fileno())


class BatchedAppender:
    """Appends lines with a flush each (a killed process loses nothing) and an fsync at most every `sync_every_s`.

    An fsync per line caps a stage on NFS or Lustre at tens of lines per second; batching loses at most the
    last batch if the machine itself goes down. `close()` syncs whatever is left.
    """

    def __init__(self, path: str | os.PathLike, sync_every_s: float = 1.0):
        self._file: IO[str] = open(path, "a", encoding="utf-8")
        self._every = sync_every_s
        self._last_sync = time.monotonic()
        self._unsynced = False

    def tell(self) -> int:
        return self._file.tell()

    def append(self, obj: dict) -> int:
        """Write one line; return the byte offset where it starts."""
        offset = self._file.tell()
        self._file.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._file.flush()
        self._unsynced = True
        if time.monotonic() - self._last_sync >= self._every:
            self.sync()
        return offset

    def sync(self) -> None:
        if self._unsynced:
            os.fsync(self._file.fileno())
            self._unsynced = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()

    def __enter__(self) -> "BatchedAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def unique_temp_path(path: str | os.PathLike) -> Path:
    """A fresh file beside `path` (same file system, so a rename is atomic), never shared with another writer."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())  # mkstemp makes it private; the renamed file gets the usual mode
    return Path(name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[IO[str]]:
    """A text file that appears at `path` whole or not at all: written under a unique temporary name beside it,
    synced, then renamed over `path`; an error or a kill midway leaves `path` as it was."""
    path = Path(path)
    tmp = unique_temp_path(path)
    try:
        with tmp.open("w", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_jsonl_atomic(path: str | os.PathLike, objs: Iterable[dict]) -> None:
    """Write a whole file under a unique temporary name and rename it, so readers never see half a file.

    `objs` may be a generator: lines are written as they come, nothing is held.
    """
    with atomic_file(path) as f:
        for obj in objs:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
