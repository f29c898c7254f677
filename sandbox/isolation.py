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
import shutil
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


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def init_argv() -> list[str]:
    """PID 1 of a session's namespace: a program that reads its stdin until end of file, then exits."""
    cat = shutil.which("cat") or ("/bin/cat" if os.access("/bin/cat", os.X_OK) else None)
    if cat:
        return [cat]
    return [sys.executable, "-S", "-I", "-c", "import sys; sys.stdin.buffer.read()"]


class PidNamespaces:
    """A fresh PID namespace, with a minimal init, for each fork of this (single-threaded) process.

    Why the init is not a fork: forking a warm interpreter (IPython, numpy) costs several
    milliseconds of kernel time here, and a session used to take three such forks (a relay outside
    the namespace, an init inside, the session). Now the init is `cat`, started with posix_spawn
    (no copy of this process), reading a pipe that only this process writes; the session is the
    namespace's PID 2 and a direct child of this process, so its exit status arrives unchanged.
    When the session is reaped, `close_init` closes the pipe: the init reads end of file and exits,
    and the kernel kills whatever the session left in its namespace. If this process dies, the
    pipe closes the same way. The init keeps every privilege of this process, but the session,
    which drops all of them, can neither signal its namespace's init (the kernel protects PID 1)
    nor trace it or read its files (its capabilities are not a subset of the session's).

    With real root, this process unshares a PID namespace for each spawn and steps back into its
    own after the fork. In a user namespace it may not step back (its own PID namespace belongs to
    the host's user namespace), so a small helper forked now, before the warm imports, makes each
    namespace from a fork of its own (cheap: the helper is small), and this process joins it
    (`setns` into a child namespace is allowed). Create this object while the process is still
    small, and before it has other children.
    """

    def __init__(self, close_in_helper: tuple[int, ...] = ()) -> None:
        self.argv = init_argv()
        self.own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(self.own, CLONE_NEWPID)
            self.in_place = True
        except IsolationError:
            self.in_place = False
        self.pipes: dict[int, int] = {}  # init pid -> the write end that keeps it alive
        self._helper: socket.socket | None = None
        if not self.in_place:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            if os.fork() == 0:
                ours.close()
                for fd in close_in_helper:
                    os.close(fd)
                self._serve_helper(theirs)
            theirs.close()
            self._helper = ours

    def _serve_helper(self, sock: socket.socket) -> None:
        """The helper's loop: for each request, a fork that unshares a PID namespace and starts its init."""
        try:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            while True:
                message, fds, _flags, _addr = socket.recv_fds(sock, 16, 1)
                if not message or not fds:
                    break
                maker = os.fork()
                if maker == 0:
                    try:
                        unshare(CLONE_NEWPID)
                        sock.send(str(self._spawn_init(fds[0])).encode())
                    except BaseException as exc:  # noqa: BLE001 - told to the asking process
                        sock.send(f"{type(exc).__name__}: {exc}".encode()[:500])
                    os._exit(0)
                os.close(fds[0])
                os.waitpid(maker, 0)
        finally:
            os._exit(0)

    def _spawn_init(self, read: int) -> int:
        return os.posix_spawn(
            self.argv[0],
            self.argv,
            {},
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
            setsid=True,
        )

    def _init_from_helper(self, read: int) -> int:
        assert self._helper is not None  # made in __init__ whenever in_place is False
        socket.send_fds(self._helper, [b"new"], [read])
        text = self._helper.recv(512)
        if not text.isdigit():
            raise IsolationError(errno.EPERM, f"could not make a PID namespace: {text.decode(errors='replace')}")
        init = int(text)
        fd = os.open(f"/proc/{init}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(fd, CLONE_NEWPID)
        finally:
            os.close(fd)
        return init

    def enter_new(self) -> int:
        """Make a PID namespace with its init running; this process's next fork becomes its PID 2."""
        read, write = os.pipe()
        try:
            if self.in_place:
                unshare(CLONE_NEWPID)
                try:
                    init = self._spawn_init(read)
                except BaseException:
                    self.leave()
                    raise
            else:
                init = self._init_from_helper(read)
        except BaseException:
            os.close(write)
            raise
        finally:
            os.close(read)
        self.pipes[init] = write
        return init

    def fork(self) -> tuple[int, int]:
        """os.fork() into a fresh PID namespace: (pid, the namespace's init) in the parent, (0, init) in the child.

        The child should call close_in_child() first thing."""
        init = self.enter_new()
        try:
            pid = os.fork()
        except OSError:
            self.leave()
            self.close_init(init)
            raise
        if pid:
            self.leave()  # never in the child: it cannot (and must not) leave its namespace
        return pid, init

    def leave(self) -> None:
        """Fork into this process's own PID namespace again (where allowed; see the class docstring)."""
        if self.in_place:
            setns(self.own, CLONE_NEWPID)

    def close_init(self, init: int) -> None:
        """Let an init exit, and with it everything left in its namespace."""
        write = self.pipes.pop(init, None)
        if write is not None:
            os.close(write)

    def close_in_child(self) -> None:
        """In a fresh fork: drop the pipes of every init, so only this process keeps them alive."""
        for write in self.pipes.values():
            os.close(write)
        self.pipes.clear()
        os.close(self.own)
        if self._helper is not None:
            self._helper.close()


def new_namespaces_flags(allow_network: bool) -> int:
    """The namespaces a session unshares itself; its PID namespace comes with its fork (PidNamespaces)."""
    return CLONE_NEWNS | CLONE_NEWIPC | (0 if allow_network else CLONE_NEWNET)


def enter_session_namespaces(allow_network: bool) -> None:
    unshare(new_namespaces_flags(allow_network))


def inside_new_namespaces(allow_network: bool, tmp_size: str, hidden_home: str | None) -> None:
    """In the session, after enter_session_namespaces: file system, loopback, then no privileges."""
    setup_filesystem(tmp_size, hidden_home)
    if not allow_network:
        _loopback_up()
    drop_privileges()


def probe(allow_network: bool, tmp_size: str = "64m", namespaces: PidNamespaces | None = None) -> tuple[bool, str]:
    """Whether this process can isolate sessions with namespaces; (ok, why not) from a throw-away session.

    It goes through the same steps as a session (PidNamespaces, then the session's own namespaces
    and file system) and checks that the root file system came out read-only.
    """
    read, write = os.pipe()
    try:
        namespaces = namespaces or PidNamespaces()
        pid, init = namespaces.fork()
    except (OSError, ValueError) as exc:
        os.close(read)
        os.close(write)
        return False, f"{type(exc).__name__}: {exc}"
    if pid == 0:
        os.close(read)
        try:
            namespaces.close_in_child()
            enter_session_namespaces(allow_network)
            inside_new_namespaces(allow_network, tmp_size, None)
            probe_file = "/usr/.assay-probe"
            try:
                open(probe_file, "w").close()
                os.unlink(probe_file)
                raise IsolationError(0, "the root file system stayed writable")
            except OSError as exc:
                if isinstance(exc, IsolationError):
                    raise
            os.write(write, b"ok")
        except BaseException as exc:  # noqa: BLE001 - reported through the pipe
            os.write(write, f"{type(exc).__name__}: {exc}".encode()[:500])
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 4096):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    namespaces.close_init(init)
    try:
        os.waitpid(init, 0)
    except ChildProcessError:  # adopted by another reaper (no subreaper here): it exits all the same
        pass
    text = b"".join(chunks).decode(errors="replace")
    return (text == "ok", "" if text == "ok" else text or "unknown failure")


def can_enter_user_namespace() -> bool:
    return os.geteuid() != 0 and os.path.exists("/proc/self/uid_map")


if __name__ == "__main__":  # python sandbox/isolation.py: what this machine allows
    ok, why = probe(allow_network=False)
    print("namespaces:", "yes" if ok else f"no ({why})", file=sys.stderr)
