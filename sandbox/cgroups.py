"""Per-kernel cgroups: the kernel-enforced process and memory limits, where they can be created.

With a pids cgroup a fork bomb hits a hard `pids.max` and cannot outrun a watcher; with a memory
cgroup the kernel's OOM killer stops a session at its limit without touching other processes.
Both cgroup v1 (one hierarchy per controller) and v2 (one unified hierarchy with delegated
controllers) are handled. Each controller is probed on its own at start-up: when this process may
not create cgroups (no root, no delegation, read-only mount) the server falls back to watching
/proc (see procs.py) and /health says which mechanism enforces each limit.

Layout: `<our own cgroup>/assay-sandbox-<server pid>/<kernel name>`, one folder per kernel.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _counter(path: str, key: str) -> int:
    """A `key N` line of a cgroup stats file (pids.events, memory.events, memory.oom_control)."""
    try:
        for line in _read(path).splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _own_cgroup_dirs() -> dict[str, str]:
    """Map 'pids'/'memory' to the folder of this process's cgroup for that controller."""
    mounts: dict[str, tuple[str, str]] = {}  # controller or "" (v2) -> (mount root, mount point)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) < 3 or len(fields) < 5:
                continue
            if rfields[0] == "cgroup2":
                mounts.setdefault("", (fields[3], fields[4]))
            elif rfields[0] == "cgroup":
                for opt in rfields[2].split(","):
                    if opt in ("pids", "memory"):
                        mounts.setdefault(opt, (fields[3], fields[4]))
    found: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            keys = [""] if controllers == "" else controllers.split(",")
            for key in keys:
                if key in mounts:
                    root, point = mounts[key]
                    rel = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
                    found[key] = os.path.normpath(os.path.join(point, rel))
    dirs: dict[str, str] = {c: found[c] for c in ("pids", "memory") if c in found}
    if "" in found:  # v2: usable for the controllers not already claimed by v1 hierarchies
        try:
            available = _read(os.path.join(found[""], "cgroup.controllers")).split()
        except OSError:
            available = []
        for c in ("pids", "memory"):
            if c not in dirs and c in available:
                dirs[c] = found[""]
    return dirs


def _is_v2(path: str) -> bool:
    return os.path.exists(os.path.join(path, "cgroup.controllers"))


@dataclass
class KernelCgroup:
    """The cgroup folders (one per controller) of one kernel."""

    pids_dir: str | None
    memory_dir: str | None
    v2: bool = False  # one unified hierarchy (cgroup.kill, memory.events); else v1, a folder per controller

    @property
    def dirs(self) -> list[str]:
        return sorted({d for d in (self.pids_dir, self.memory_dir) if d})

    def pids_limit_hits(self) -> int:
        """How many forks the pids limit has refused so far."""
        return _counter(os.path.join(self.pids_dir, "pids.events"), "max") if self.pids_dir else 0

    def oom_kills(self) -> int:
        if not self.memory_dir:
            return 0
        name = "memory.events" if self.v2 else "memory.oom_control"
        return _counter(os.path.join(self.memory_dir, name), "oom_kill")

    def pids(self) -> list[int]:
        """The processes of the kernel (one folder is enough: a kernel joins all of them at once)."""
        for d in self.dirs:
            try:
                return [int(p) for p in _read(os.path.join(d, "cgroup.procs")).split()]
            except OSError:
                continue
        return []

    def kill_once(self) -> bool:
        """SIGKILL every process now in the cgroup; False when it held none. Never waits."""
        if self.v2:
            for d in self.dirs:
                try:
                    _write(os.path.join(d, "cgroup.kill"), "1")  # Linux 5.14+: atomic
                except OSError:
                    pass
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return bool(pids)

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup, including ones forked while we kill (blocks up to 0.1 s)."""
        for _ in range(100):
            if not self.kill_once():
                return
            time.sleep(0.001)

    def remove(self) -> bool:
        """Delete the folders; False while processes (or unreaped zombies) remain in them."""
        ok = True
        for d in self.dirs:
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError:
                ok = False
        return ok


def _remove_stale(parent: str) -> None:
    """Remove the cgroups of sandbox servers that were killed before they could clean up."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        pid = name.removeprefix("assay-sandbox-").removesuffix("-server")
        if name == pid or not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
            continue
        folder = os.path.join(parent, name)
        try:
            for child in os.listdir(folder):
                if os.path.isdir(os.path.join(folder, child)):
                    KernelCgroup(os.path.join(folder, child), None).kill_all()
                    os.rmdir(os.path.join(folder, child))
            os.rmdir(folder)
            log.info("removed stale cgroup %s", folder)
        except OSError as exc:
            log.warning("could not remove stale cgroup %s: %s", folder, exc)


def _enable_v2(parent: str, controller: str) -> None:
    """Enable a controller for the children of our own v2 cgroup.

    cgroup v2 refuses controllers in a cgroup that holds processes ("no internal processes"), which is
    the usual case inside a container or a Slurm step: the service is in the cgroup it wants to
    divide. Then the service first moves itself into a leaf of its own (`assay-sandbox-<pid>-server`)
    and enables the controller on the parent again. If other processes share the cgroup, the move
    cannot help and the caller falls back to watching.
    """
    control = os.path.join(parent, "cgroup.subtree_control")
    try:
        _write(control, f"+{controller}")
        return
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
    leaf = os.path.join(parent, f"assay-sandbox-{os.getpid()}-server")
    os.makedirs(leaf, exist_ok=True)
    _write(os.path.join(leaf, "cgroup.procs"), str(os.getpid()))
    log.info("moved the sandbox server into the leaf cgroup %s to enable %s", leaf, controller)
    _write(control, f"+{controller}")


class CgroupRoot:
    """The folder(s) under which this server creates one cgroup per kernel."""

    def __init__(self, base: dict[str, str]):
        self.base = base  # controller -> folder we created

    @property
    def enforces_processes(self) -> bool:
        return "pids" in self.base

    @property
    def enforces_memory(self) -> bool:
        return "memory" in self.base

    @classmethod
    def create(cls) -> "CgroupRoot":
        """Probe each controller; keep the ones where a kernel cgroup can be made and joined."""
        base: dict[str, str] = {}
        try:
            own = _own_cgroup_dirs()
        except OSError as exc:
            log.info("cgroups unavailable: %s", exc)
            return cls(base)
        for controller, parent in own.items():
            _remove_stale(parent)
            folder = os.path.join(parent, f"assay-sandbox-{os.getpid()}")
            try:
                if _is_v2(parent):
                    _enable_v2(parent, controller)
                os.makedirs(folder, exist_ok=True)
                if _is_v2(folder):
                    _write(os.path.join(folder, "cgroup.subtree_control"), f"+{controller}")
                probe = os.path.join(folder, "probe")
                os.makedirs(probe, exist_ok=True)
                joined = subprocess.run(
                    ["sh", "-c", f'echo $$ > "{probe}/cgroup.procs"'], capture_output=True, timeout=10
                )
                os.rmdir(probe)
                if joined.returncode != 0:
                    raise OSError(joined.stderr.decode(errors="replace").strip())
                base[controller] = folder
            except (OSError, subprocess.SubprocessError) as exc:
                log.info("cgroup controller %s unavailable under %s: %s", controller, parent, exc)
                try:
                    os.rmdir(folder)
                except OSError:
                    pass
        return cls(base)

    def make(self, name: str, memory_bytes: int, max_pids: int) -> KernelCgroup:
        """Create the cgroup of one kernel with its limits written (shared folder on v2)."""
        dirs: dict[str, str] = {}
        v2 = False
        for controller, folder in self.base.items():
            path = os.path.join(folder, name)
            os.makedirs(path, exist_ok=True)
            dirs[controller] = path
            v2 = _is_v2(path)  # the same for every controller: v1 and v2 never share a controller
            if controller == "pids":
                _write(os.path.join(path, "pids.max"), str(max_pids))
            elif v2:
                _write(os.path.join(path, "memory.max"), str(memory_bytes))
                try:
                    _write(os.path.join(path, "memory.swap.max"), "0")
                except OSError:
                    pass
            else:
                _write(os.path.join(path, "memory.limit_in_bytes"), str(memory_bytes))
                try:  # only present with swap accounting; must not be below the RAM limit
                    _write(os.path.join(path, "memory.memsw.limit_in_bytes"), str(memory_bytes))
                except OSError:
                    pass
        return KernelCgroup(dirs.get("pids"), dirs.get("memory"), v2)

    def remove(self) -> None:
        # (on v2 the server's own leaf, assay-sandbox-<pid>-server, holds this process: it is removed
        # as stale by the next server, once this one has exited)
        for folder in self.base.values():
            try:
                for name in os.listdir(folder):
                    path = os.path.join(folder, name)
                    if os.path.isdir(path):
                        KernelCgroup(path, None).kill_all()
                        os.rmdir(path)
                os.rmdir(folder)
            except OSError as exc:
                log.warning("could not remove cgroup %s: %s", folder, exc)
