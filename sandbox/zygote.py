"""A fork server: a warm interpreter that forks sessions or grading runs (a worker has three, sessions.py).

    python zygote.py '<json settings>'      (started by the worker, kernel.py; never by hand)

Starting a Python interpreter and importing IPython (or torch) costs far more than running a small
cell. This process does it once: it imports the grading harness, the modules named in `preload`
(numpy, or torch for the heavy grading server) and, for a server of sessions (`shell`), IPython,
then waits on its control socket. For each
`spawn` request, which carries a fresh socket for the new process, it forks:

- with namespaces (isolation.py): the fork is PID 2 of a fresh PID namespace whose PID 1 is a
  minimal init (`isolation.PidNamespaces`: `cat` on a pipe only the zygote writes, started without
  copying this process). The session unshares its mount, IPC and network namespaces, sets up its
  file system and drops every privilege. When the zygote reaps it, it closes the init's pipe: the
  init exits, and the kernel kills whatever the session left in its namespace.
- without: the fork runs the session itself, in its own process session and folder.

The zygote reports each spawn (`{"id", "pid"}`) and each exit of its children
(`{"exited": pid, "status": waitstatus}`) on the control socket. It is a child subreaper, so a
process that loses its parent is reaped here, not by init. It dies with its worker.

Standalone: it imports nothing from assay, so `--python` may name any interpreter with IPython.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import select
import signal
import socket
import sys
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name: str, private_builtins: bool = False):
    """A sibling module under a private name, so user code cannot import it by a short name.

    With `private_builtins`, its functions look builtins up in a copy made now, so an answer that
    replaces `builtins.len` does not change what the grading code calls.
    """
    spec = importlib.util.spec_from_file_location(f"_assay_sandbox_{name}", os.path.join(_HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]  # a .py path always has a spec
    if private_builtins:
        module.__dict__["__builtins__"] = dict(
            __builtins__.__dict__ if hasattr(__builtins__, "__dict__") else __builtins__  # type: ignore[arg-type]  # a module in __main__, else a dict: mypy cannot narrow by hasattr
        )
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # a .py path always has a spec
    spec.loader.exec_module(module)  # type: ignore[union-attr]  # and a source loader
    return module


# The script's folder is first on sys.path; user code must not import our modules from it.
if sys.path and os.path.abspath(sys.path[0]) == _HERE:
    del sys.path[0]

isolation = _load("isolation")
wire = _load("wire")
output = _load("output")
repl_module = _load("repl")
strict = _load("strict", private_builtins=True)
rewrite = _load("rewrite", private_builtins=True)
harness = _load("harness", private_builtins=True)


def _preload(names: list[str]) -> list[str]:
    loaded = []
    for name in names:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception:  # noqa: BLE001 - a missing optional module is not an error
            pass
    return loaded


def _make_shell():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.lib.pretty import pretty
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False  # no shared history database: sessions are independent
    shell = InteractiveShell.instance(config=config, colors="NoColor")
    shell.showtraceback = lambda *args, **kwargs: None  # errors are reported in the answer, once
    shell.showsyntaxerror = lambda *args, **kwargs: None
    # The value of a final expression is the answer's `result`; IPython must not also print `Out[n]:`.
    shell.displayhook.write_output_prompt = lambda: None
    shell.displayhook.write_format_data = lambda *args, **kwargs: None
    return shell, pretty


class Zygote:
    preloaded: list[str]  # set by main() before serve(): the modules _preload imported

    def __init__(self, settings: dict, control: socket.socket):
        self.settings = settings
        self.control = control
        self.isolated = settings["isolation"] == "namespaces"
        self.namespaces: Any = None  # an isolation.PidNamespaces, set by main() where isolation may be used
        self.inits: dict[int, int] = {}  # session pid -> the init of its PID namespace
        self.init_pids: set[int] = set()

    # -- the child side ------------------------------------------------------------------------

    def _child(self, request: dict, sock: socket.socket, wake_fds: tuple[int, int]) -> None:
        """Runs in the fork; never returns."""
        fd = sock.detach()
        try:
            for fd_ in wake_fds:
                os.close(fd_)
            self.control.close()
            if self.namespaces is not None:
                self.namespaces.close_in_child()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for path in request.get("cgroups", []):
                with open(os.path.join(path, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            try:
                with open("/proc/self/oom_score_adj", "w") as f:
                    f.write(str(self.settings.get("oom_score_adj", 1000)))
            except OSError:
                pass
            if self.isolated:
                self._isolated_child(request, fd)
            else:
                self._plain_child(request, fd)
        except BaseException as exc:  # noqa: BLE001 - the worker hears why, then the process ends
            try:
                wire.send(fd, {"fatal": f"{type(exc).__name__}: {exc}"})
            except Exception:  # noqa: BLE001
                pass
        os._exit(70)

    def _isolated_child(self, request: dict, fd: int) -> None:
        """PID 2 of a fresh PID namespace (its PID 1 is a minimal init, isolation.PidNamespaces).

        The session unshares its mount, IPC and network namespaces, builds its file system and
        drops every privilege before any user code runs.
        """
        s = self.settings
        isolation.die_with_parent(0)  # the parent is outside this PID namespace, where getppid() reads 0
        isolation.enter_session_namespaces(s["allow_network"])
        isolation.inside_new_namespaces(s["allow_network"], s["tmp_size"], s.get("hidden_home"))
        os.setsid()
        self._run(request, fd, "/tmp/home", "/tmp", "/tmp/work")

    def _plain_child(self, request: dict, fd: int) -> None:
        isolation.die_with_parent(os.getppid())
        os.setsid()
        work = request["work_dir"]
        self._run(request, fd, work, work, work)

    def _run(self, request: dict, fd: int, home: str, tmp: str, work: str) -> None:
        s = self.settings
        for path in (home, work):
            os.makedirs(path, mode=0o700, exist_ok=True)
        os.chdir(work)
        env = isolation.default_env(home, tmp, s.get("env"))
        os.environ.clear()
        os.environ.update(env)
        isolation.set_rlimits(s["address_space_mb"], s["cpu_seconds"])
        output_file = os.path.join(tmp, ".assay-output")
        wire.send(fd, {"ready": True})
        try:
            first = wire.recv(fd)  # what this process becomes: a stateful session or one grading run
        except (EOFError, OSError):
            os._exit(0)
        if first.get("op") == "grade":
            harness.serve(fd, first, wire, output.CappedText, output_file, repl_module, strict, rewrite)
        elif self.shell is None:
            wire.send(fd, {"fatal": "this fork server only runs grading runs"})
        else:
            shell, pretty = self.shell
            repl = repl_module.Repl(shell, pretty, output.CappedText, output_file)
            repl_module.serve(fd, repl, wire, first)
        os._exit(0)

    # -- the server side -----------------------------------------------------------------------

    def _report(self, message: dict) -> None:
        try:
            self.control.sendall(wire.encode(message))
        except OSError:
            os._exit(0)  # the worker is gone

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.init_pids:  # an init ends after its session: nothing to tell
                self.init_pids.discard(pid)
                continue
            init = self.inits.pop(pid, None)
            if init is not None and self.namespaces is not None:
                self.namespaces.close_init(init)  # the init exits; the kernel ends what the session left
            self._report({"exited": pid, "status": status})

    def serve(self) -> None:
        # Only a fork server for sessions holds IPython: a grading run never uses it, and a smaller
        # process forks, copies on write and exits faster.
        self.shell = _make_shell() if self.settings.get("shell", True) else None
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self._report(
            {
                "ready": True,
                "preloaded": self.preloaded,
                "isolation": self.settings["isolation"],
                "isolation_note": self.settings.get("isolation_note", ""),
                "pid": os.getpid(),
            }
        )
        control_fd = self.control.fileno()
        while True:
            ready, _, _ = select.select([control_fd, wake_r], [], [])
            if wake_r in ready:
                os.read(wake_r, 4096)
                self._reap()
            if control_fd in ready:
                try:
                    data, fds, _flags, _addr = socket.recv_fds(self.control, 1 << 16, 4)
                except OSError:
                    os._exit(0)
                if not data:
                    os._exit(0)
                request = json.loads(data)
                if not fds:
                    continue
                sock = socket.socket(fileno=fds[0])
                for extra in fds[1:]:
                    os.close(extra)
                try:
                    pid = self._fork()
                except OSError as exc:
                    sock.close()
                    self._report({"id": request["id"], "error": f"{type(exc).__name__}: {exc}"})
                    continue
                if pid == 0:
                    self._child(request, sock, (wake_r, wake_w))
                sock.close()
                self._report({"id": request["id"], "pid": pid})
                self._reap()

    def _fork(self) -> int:
        """Fork a session: with isolation, as PID 2 of a fresh PID namespace."""
        if not self.isolated or self.namespaces is None:
            return os.fork()
        pid, init = self.namespaces.fork()
        if pid:
            self.init_pids.add(init)
            self.inits[pid] = init
        return pid


def main() -> None:
    settings = json.loads(sys.argv[1])
    control = socket.socket(fileno=int(settings["control_fd"]))
    isolation.die_with_parent(int(settings["parent_pid"]), signal.SIGKILL)
    if settings.get("user_namespace"):
        isolation.enter_user_namespace()
    isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
    os.set_inheritable(control.fileno(), False)  # no program the zygote starts (an init) may hold it
    zygote = Zygote(settings, control)
    if settings["isolation"] in ("auto", "namespaces"):
        try:  # now, while this process is small: it may fork a helper (isolation.PidNamespaces)
            zygote.namespaces = isolation.PidNamespaces(close_in_helper=(control.fileno(),))
        except OSError as exc:
            if settings["isolation"] == "namespaces":
                raise SystemExit(f"--isolation namespaces: no PID namespace can be made here ({exc})") from None
            settings["isolation_note"] = f"{type(exc).__name__}: {exc}"
    zygote.preloaded = _preload(settings.get("preload", []))
    harness.prepare()
    if settings["isolation"] == "auto":
        ok, why = (False, settings.get("isolation_note", ""))
        if zygote.namespaces is not None:
            ok, why = isolation.probe(settings["allow_network"], settings["tmp_size"], zygote.namespaces)
        settings["isolation"] = "namespaces" if ok else "none"
        settings["isolation_note"] = why
        zygote.isolated = ok
    zygote.serve()


if __name__ == "__main__":
    main()
