"""The fork server: one warm interpreter per worker that forks every session and every grading run.

    python zygote.py '<json settings>'      (started by the worker, kernel.py; never by hand)

Starting a Python interpreter and importing IPython (or torch) costs far more than running a small
cell. This process does it once: it imports IPython, the grading harness and the modules named in
`preload` (torch and numpy by default, when installed), then waits on its control socket. For each
`spawn` request, which carries a fresh socket for the new process, it forks:

- with namespaces (isolation.py): the fork joins its cgroups, unshares its mount, PID, IPC and
  network namespaces and forks once more. That second process is PID 1 of the new PID namespace:
  it sets up its file system, drops every privilege and runs the session or the grading run. The
  first one stays as its parent, relays its exit status (it exits the same way), and dies if the
  zygote dies; the session dies with it (PR_SET_PDEATHSIG), and the whole namespace with the session.
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

    # -- the child side ------------------------------------------------------------------------

    def _child(self, request: dict, sock: socket.socket, wake_fds: tuple[int, int]) -> None:
        """Runs in the fork; never returns."""
        fd = sock.detach()
        try:
            for fd_ in wake_fds:
                os.close(fd_)
            self.control.close()
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
        """Three processes: the relay (outside the new PID namespace), its init, and the session.

        The session is not PID 1: an init ignores every signal it has no handler for, even the
        kernel's SIGXCPU, so the CPU limit and a user's `os.kill(os.getpid(), SIGTERM)` would do
        nothing. PID 1 is a small init that reaps orphans, passes SIGINT (the timeout) on to the
        session's process group, and tells the relay how the session ended; the relay then ends the
        same way, so the fork server reports the session's own exit status.
        """
        s = self.settings
        isolation.die_with_parent(os.getppid())
        isolation.enter_session_namespaces(s["allow_network"])
        alive_r, alive_w = os.pipe()  # open while the relay lives: the init sees EOF when it is gone
        status_r, status_w = os.pipe()  # the init writes the session's wait status here
        init = os.fork()
        if init:
            os.close(alive_r)
            os.close(status_w)
            wire.send(fd, {"pid": init})
            os.close(fd)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            os.waitpid(init, 0)
            data = os.read(status_r, 16)
            status = int(data) if data.strip().isdigit() else 70 << 8
            if os.WIFSIGNALED(status):
                signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
                os.kill(os.getpid(), os.WTERMSIG(status))
            os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70)
        os.close(alive_w)
        os.close(status_r)
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        if select.select([alive_r], [], [], 0)[0]:  # the relay died before the prctl took effect
            os._exit(1)
        os.close(alive_r)
        isolation.inside_new_namespaces(s["allow_network"], s["tmp_size"], s.get("hidden_home"))
        session = os.fork()
        if session:
            os.close(fd)
            self._init(session, status_w)
        os.close(status_w)
        os.setsid()
        self._run(request, fd, "/tmp/home", "/tmp", "/tmp/work")

    @staticmethod
    def _init(session: int, status_w: int) -> None:
        """PID 1 of a session's namespace: reap, relay SIGINT, report the session's end, exit."""

        def interrupt(signum, frame):
            try:
                os.killpg(session, signal.SIGINT)
            except OSError:
                pass

        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                os._exit(0)
            except InterruptedError:
                continue
            if pid == session:
                os.write(status_w, str(status).encode())
                os._exit(0)

    def _plain_child(self, request: dict, fd: int) -> None:
        isolation.die_with_parent(os.getppid())
        os.setsid()
        work = request["work_dir"]
        wire.send(fd, {"pid": os.getpid()})
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
            self._report({"exited": pid, "status": status})

    def serve(self) -> None:
        self.shell = _make_shell()
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
                pid = os.fork()
                if pid == 0:
                    self._child(request, sock, (wake_r, wake_w))
                sock.close()
                self._report({"id": request["id"], "pid": pid})
                self._reap()


def main() -> None:
    settings = json.loads(sys.argv[1])
    control = socket.socket(fileno=int(settings["control_fd"]))
    isolation.die_with_parent(int(settings["parent_pid"]), signal.SIGKILL)
    if settings.get("user_namespace"):
        isolation.enter_user_namespace()
    isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
    zygote = Zygote(settings, control)
    zygote.preloaded = _preload(settings.get("preload", []))
    harness.prepare()
    if settings["isolation"] == "auto":
        ok, why = isolation.probe(settings["allow_network"], settings["tmp_size"])
        settings["isolation"] = "namespaces" if ok else "none"
        settings["isolation_note"] = why
        zygote.isolated = ok
    zygote.serve()


if __name__ == "__main__":
    main()
