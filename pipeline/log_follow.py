"""Show a local job's output on the terminal while the launcher waits for it.

Local runs are interactive: the user should see the stage's progress bar and messages live, not only
in the log files. The follower copies what the job appends to its .out and .err files to this
process's stdout and stderr (submitit's own bookkeeping lines left out), one job at a time.
"""

from __future__ import annotations

import sys
from pathlib import Path

SUBMITIT_PREFIX = "submitit "


class LogFollower:
    """Copies new output of one job's log files to the terminal on each `poll()`."""

    def __init__(self, stdout_path: Path, stderr_path: Path):
        self._files = [(stdout_path, sys.stdout), (stderr_path, sys.stderr)]
        self._offsets = {stdout_path: 0, stderr_path: 0}
        self._pending = {stdout_path: "", stderr_path: ""}

    def poll(self) -> None:
        for path, stream in self._files:
            if not path.exists():
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
            complete, self._pending[path] = text[: cut + 1], text[cut + 1:]
            shown = "".join(line for line in complete.splitlines(keepends=True) if not line.startswith(SUBMITIT_PREFIX))
            if shown:
                stream.write(shown)
                stream.flush()
