"""Show a local job's output on the terminal while the launcher waits for it.

Local runs are interactive: the user should see the stage's progress bar and messages live, not only
in the log files. The follower copies what the job appends to its .out and .err files to this
process's stdout and stderr (submitit's own bookkeeping lines left out), one job at a time. When the job
fails, submitit reports it with a traceback of its own machinery; that report is left out too, since the
launcher ends with the job's error and its log tail right after.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

TAIL_CHARS = 3000
"""How much of a log an error message quotes."""

SUBMITIT_PREFIX = "submitit "
SUBMITIT_ERROR_PREFIX = "submitit ERROR "
"""Starts submitit's report of a failed job: that line and everything after it in the file."""


class LogFollower:
    """Copies new output of one job's log files to the terminal on each `poll()`."""

    def __init__(self, stdout_path: Path, stderr_path: Path):
        self._files = [(stdout_path, sys.stdout), (stderr_path, sys.stderr)]
        self._offsets = {stdout_path: 0, stderr_path: 0}
        self._pending = {stdout_path: "", stderr_path: ""}
        self._ended: set[Path] = set()
        """Files whose remaining content is submitit's failure report."""

    def poll(self) -> None:
        for path, stream in self._files:
            if path in self._ended or not path.exists():
                continue
            with path.open("rb") as f:
                f.seek(self._offsets[path])
                data = f.read()
            if not data:
                continue
            self._offsets[path] += len(data)
            text = self._pending[path] + data.decode(errors="replace")
            # keep an unfinished line for the next poll, unless it is a progress bar redraw (\r)
            cut = max(text.rfind("\n"), text.rfind("\r"))
            complete, self._pending[path] = text[: cut + 1], text[cut + 1 :]
            shown = []
            for line in complete.splitlines(keepends=True):
                if line.startswith(SUBMITIT_ERROR_PREFIX):
                    self._ended.add(path)
                if path in self._ended:
                    break
                if not line.startswith(SUBMITIT_PREFIX):
                    shown.append(line)
            text = "".join(shown)
            if text:
                stream.write(text)
                stream.flush()


def log_tail(path: Optional[Path], chars: int = TAIL_CHARS) -> str:
    """The last `chars` characters of a log, from a line start (what an error message quotes)."""
    if path is None or not path.exists():
        return ""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - chars))
        text = f.read().decode(errors="replace")
    if size > chars:
        text = "..." + text.split("\n", 1)[-1]
    return text.strip()
