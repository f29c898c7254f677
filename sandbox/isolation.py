"""Isolation of one session process: what it can see, write, reach and signal.

Applied by the fork server (zygote.py) in each forked session, before any user code runs. It
imports nothing from assay, because the zygote may run under another interpreter (`--python`).

Layers, each used where the machine allows it (`probe()` says which; `/health` reports them):

- `namespaces`: the session gets its own mount, PID and (unless `allow_network`) network
  namespace. This needs root, or unprivileged user namespaces (the zygote then enters one of its own
  at start, mapping the service's user to root inside it).
  - mounts: every mount is read-only (`mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)`); fresh
    tmpfs are mounted on /tmp, /var/tmp, /dev/shm and /run, and on the home folder and other secret
    locations (`HIDDEN_PATHS`). So `sitecustomize.py` cannot be written into site-packages nor
    `usercustomize.py` into the user site, sockets under /run and /tmp are out of reach, and
    everything the session writes lives in memory that disappears with its namespace.
  - PID: the session is PID 1 of its own namespace. It cannot name, so cannot signal, the service,
    other sessions or the job's processes; when it exits the kernel kills everything it started.
  - network: a namespace with only a loopback interface (brought up, so code that talks to itself
    over 127.0.0.1, e.g. torch.distributed's gloo, still works).
  - capabilities: after the namespaces are set up, every capability is dropped from the bounding,
    ambient, inheritable, permitted and effective sets, `no_new_privs` is set, and root-ness is
    made powerless (`SECBIT_NOROOT`), so the session cannot remount, unshare back, or regain
    privileges by running a setuid or root binary.
- `environment`: only `ALLOWED_ENV` names reach the session (no API keys or tokens); HOME and the
  temporary folder point into the session's own writable space.
- `rlimits`: address space, CPU seconds, no core files (set by the caller through `set_rlimits`).

Without `namespaces` a session is a plain fork in its own process session and folder: it can then
read and write what the service's user can, reach the network and signal the service's processes.
The README says which guarantees hold where.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import resource
import signal
import socket
import struct
import sys

# Annotations only: nothing is imported for them at run time (this module loads into the fork server
# before harness.prepare records the modules and types the grading process starts with).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 0x4000, 1 << 18
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 28, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_CHILD_SUBREAPER = 36
SECBIT_NOROOT, SECBIT_NOROOT_LOCKED = 1, 2
SECBIT_NO_SETUID_FIXUP, SECBIT_NO_SETUID_FIXUP_LOCKED = 4, 8
SECBIT_KEEP_CAPS_LOCKED = 32
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (generic syscall table)
CAP_LAST_CAP_FALLBACK = 40

WRITABLE_TMPFS = ("/tmp", "/var/tmp", "/dev/shm", "/run")
"""Mount points that get a fresh, private tmpfs in each session."""

HIDDEN_PATHS = (
    ".ssh",
    ".aws",
    ".azure",
    ".netrc",
    ".git-credentials",
    ".docker",
    ".kube",
    ".gnupg",
    ".config/gcloud",
    ".config/gh",
    ".cache/huggingface",
    ".huggingface",
    ".pypirc",
    ".local/share/keyrings",
)
"""Secret-holding locations under the service user's home, covered by an empty folder or /dev/null."""

ALLOWED_ENV = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_NUMERIC",
    "LC_MESSAGES",
    "TZ",
    "TERM",
    "PYTHONHASHSEED",
    "PYTHONPATH",
    "PYTHONIOENCODING",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
    "CUDA_HOME",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "SSL_CERT_FILE",
    "MPLBACKEND",
)
"""Environment variables a session may see. Everything else (keys, tokens, job settings) is dropped."""

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class IsolationError(OSError):
    pass


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise IsolationError(err, f"{what}: {os.strerror(err)}")


def prctl(option: int, arg2: int = 0) -> None:
    _check(
        _libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)),
        f"prctl({option})",
    )


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _make_all_read_only() -> None:
    attr = struct.pack("QQQQ", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0)
    buf = ctypes.create_string_buffer(attr, len(attr))
    rc = _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, buf, len(attr))
    _check(0 if rc == 0 else -1, "mount_setattr / read-only")


def default_env(home: str, tmp: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed environment of a session."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if k in ALLOWED_ENV or k.startswith("LC_")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(HOME=home, TMPDIR=tmp, PYTHONNOUSERSITE="1", MPLBACKEND=env.get("MPLBACKEND", "Agg"))
    return env


def enter_user_namespace() -> None:
    """Enter a user namespace where this (unprivileged) user is root, so it can make the others."""
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def _loopback_up() -> None:
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _cover(path: str, size: str) -> bool:
    """Mount an empty tmpfs on a folder (or /dev/null on a file) that exists; False if it does not."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size}")
        elif os.path.isfile(path):
            mount("/dev/null", path, None, MS_BIND)
        else:
            return False
    except IsolationError:
        return False
    return True


def setup_filesystem(tmp_size: str, hidden_home: str | None) -> None:
    """Inside a fresh mount namespace: everything read-only, private tmpfs where writes go, secrets covered."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    _make_all_read_only()
    for path in WRITABLE_TMPFS:
        _cover(path, tmp_size)
    if hidden_home:
        for rel in HIDDEN_PATHS:
            _cover(os.path.join(hidden_home, rel), "1m")
    try:  # a /proc of our own PID namespace: other processes' details stay out of sight
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except IsolationError:
        pass  # locked /proc (some containers): pids of other namespaces still cannot be signalled


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return CAP_LAST_CAP_FALLBACK


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_privileges() -> None:
    """No capabilities, now or after any exec; no setuid gains."""
    for cap in range(_last_cap() + 1):
        try:
            prctl(PR_CAPBSET_DROP, cap)
        except IsolationError as exc:
            if exc.errno != errno.EINVAL:
                raise
    try:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except IsolationError:
        pass
    prctl(
        PR_SET_SECUREBITS,
        SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_NO_SETUID_FIXUP
        | SECBIT_NO_SETUID_FIXUP_LOCKED
        | SECBIT_KEEP_CAPS_LOCKED,
    )
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_rlimits(address_space_mb: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if address_space_mb > 0:
        limit = address_space_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if cpu_seconds > 0:
        # The soft limit sends SIGXCPU (which ends Python); the hard one, a little later, SIGKILL.
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    prctl(PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)


def new_namespaces_flags(allow_network: bool) -> int:
    return CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | (0 if allow_network else CLONE_NEWNET)


def enter_session_namespaces(allow_network: bool) -> None:
    """Unshare the session's namespaces; the caller's next child is PID 1 of the new PID namespace."""
    unshare(new_namespaces_flags(allow_network))


def inside_new_namespaces(allow_network: bool, tmp_size: str, hidden_home: str | None) -> None:
    """The PID-1 side: file system, loopback, then no privileges."""
    setup_filesystem(tmp_size, hidden_home)
    if not allow_network:
        _loopback_up()
    drop_privileges()


def probe(allow_network: bool, tmp_size: str = "64m") -> tuple[bool, str]:
    """Whether this process can isolate sessions with namespaces; (ok, why not) from a throw-away fork."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        message = b"ok"
        try:
            enter_session_namespaces(allow_network)
            inner = os.fork()
            if inner == 0:
                try:
                    inside_new_namespaces(allow_network, tmp_size, None)
                    probe_file = "/usr/.assay-probe"
                    try:
                        open(probe_file, "w").close()
                        os.unlink(probe_file)
                        raise IsolationError(0, "the root file system stayed writable")
                    except OSError as exc:
                        if isinstance(exc, IsolationError):
                            raise
                    os._exit(0)
                except BaseException as exc:  # noqa: BLE001 - reported through the exit code
                    os.write(write, f"{type(exc).__name__}: {exc}".encode()[:500])
                    os._exit(1)
            _, status = os.waitpid(inner, 0)
            if status != 0:
                message = b""
        except BaseException as exc:  # noqa: BLE001
            message = f"{type(exc).__name__}: {exc}".encode()[:500]
        os.write(write, message)
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 4096):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    text = b"".join(chunks).decode(errors="replace")
    return (text == "ok", "" if text == "ok" else text or "unknown failure")


def can_enter_user_namespace() -> bool:
    return os.geteuid() != 0 and os.path.exists("/proc/self/uid_map")


if __name__ == "__main__":  # python sandbox/isolation.py: what this machine allows
    ok, why = probe(allow_network=False)
    print("namespaces:", "yes" if ok else f"no ({why})", file=sys.stderr)
