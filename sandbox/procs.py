"""Find and kill every process of a session without cgroups, by reading /proc.

A session's processes are the kernel's process group plus every descendant of the kernel (a child
that moved to its own group is still found through its parent). One scan of /proc serves all
sessions; it costs about 20 microseconds per process on the machine.

What this cannot see: a process that both left the process group and lost its parent (a daemon
that double-forks and calls setsid). Per-session cgroups, used when available, have no such gap.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    rss_bytes: int


def scan() -> dict[int, Proc]:
    """Every process on the machine, read from /proc/<pid>/stat."""
    table: dict[int, Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:  # exited between listdir and open
            continue
        # The command name is in parentheses and may itself hold spaces or parentheses.
        fields = data[data.rindex(b")") + 2 :].split()
        pid = int(name)
        table[pid] = Proc(pid, int(fields[1]), int(fields[2]), int(fields[21]) * _PAGE)
    return table


def pss_bytes(pid: int) -> int | None:
    """Proportional set size: resident memory with pages shared by N processes counted 1/N each.

    Summing RSS over a process and its forks counts their shared pages many times over; PSS does
    not. It costs a walk of the page tables, so callers use it only to confirm a high RSS sum.
    """
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def members(root_pid: int, table: dict[int, Proc]) -> list[Proc]:
    """The processes of the session whose kernel is `root_pid` (itself the group leader)."""
    children: dict[int, list[int]] = {}
    for p in table.values():
        children.setdefault(p.ppid, []).append(p.pid)
    found = {p.pid for p in table.values() if p.pgid == root_pid}
    stack = [root_pid] if root_pid in table else []
    while stack:
        pid = stack.pop()
        found.add(pid)
        stack.extend(c for c in children.get(pid, ()) if c not in found)
    return [table[pid] for pid in found if pid in table]


def kill(pids, sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
