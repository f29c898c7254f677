"""JSONL reading and crash-safe appending: every stage reads and writes one JSON object per line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield each line's object; a line cut short by a crash (the last one) is skipped."""
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not line.endswith("\n"):
                return  # a write interrupted by a crash; the sample will be redone
            raise ValueError(f"{path}:{number}: not a JSON line") from None


def drop_incomplete_last_line(path: str | os.PathLike) -> None:
    """Cut a trailing partial line (a crash mid-write) so appends start on a fresh line."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb+") as f:
        data = f.read()
        if not data or data.endswith(b"\n"):
            return
        f.truncate(data.rfind(b"\n") + 1)


def append_jsonl(f, obj: dict) -> None:
    """Append one line and push it to disk at once, so a crash loses at most the line being written."""
    f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    f.flush()
    os.fsync(f.fileno())


def write_jsonl_atomic(path: str | os.PathLike, objs: Iterable[dict]) -> None:
    """Write a whole file under a temporary name and rename it, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for obj in objs:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
