"""The stateful side of a session: one process that keeps a namespace and runs cells in it.

Forked from the fork server (zygote.py), with IPython already imported, so a session is ready in
a few milliseconds instead of the second an IPython kernel takes to boot. It reads `exec` frames
from its socket and answers each with the outcome of the cell, in the shape of the /execute API.

How a cell runs:
- Plain Python (it parses with `ast`) runs directly in the namespace: every statement but a final
  expression is executed, the final expression is evaluated and, when it is not None, becomes
  `result` as IPython shows it (`IPython.lib.pretty`, `_` is set). This is most cells, and it
  costs tens of microseconds instead of IPython's quarter of a millisecond.
- Anything else (magics, `!shell` lines, other IPython syntax, and real syntax errors) goes
  through IPython's own `run_cell` on the same namespace, so IPython behaves as users know it.
- `print` and `display` output is capped inside this process (head and tail kept), so a cell that
  prints a gigabyte never sends more than the cap. Output that child processes write to the
  inherited file descriptors 1 and 2 goes to a file in the session's own writable space, read and
  capped after the cell.
- SIGINT (the worker's timeout) raises KeyboardInterrupt in the cell, and only there: one that
  arrives while the answer is being sent is dropped.

Standalone: imports nothing from assay (see zygote.py).
"""

from __future__ import annotations

import ast
import builtins
import linecache
import os
import signal
import sys
import traceback

CELL_PREFIX = "<cell-"


class _CappedStream:
    """A text stream for sys.stdout/sys.stderr that keeps the head and tail of what is written."""

    def __init__(self, capped_text_type, limit: int, name: str):
        self._type = capped_text_type
        self.name = name
        self.reset(limit)

    def reset(self, limit: int) -> None:
        self.buffer_text = self._type(limit)

    def write(self, text) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.buffer_text.write(text)
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def fileno(self) -> int:  # libraries that write to the descriptor reach the captured file
        return 1 if self.name == "stdout" else 2

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return "replace"

    @property
    def closed(self) -> bool:
        return False

    def getvalue(self) -> str:
        return self.buffer_text.getvalue()


def _own_frame(filename: str) -> bool:
    return filename == __file__ or filename.startswith(_IPYTHON_DIR)


_IPYTHON_DIR = ""


def _format_error(exc: BaseException) -> dict:
    """The error as IPython's plain traceback shows it: header, one entry per frame, then `ename: evalue`."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and _own_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next  # the service's frames above the cell
    try:
        evalue = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails
        evalue = f"<unprintable {type(exc).__name__}>"
    ename = type(exc).__name__
    lines = [f"{ename:<42}Traceback (most recent call last)"]
    for frame, lineno in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        if _own_frame(filename):
            continue
        if filename.startswith(CELL_PREFIX):
            lines.append(f"Cell In[{filename[len(CELL_PREFIX) : -1]}], line {lineno}")
        else:
            lines.append(f"File {filename}:{lineno}, in {frame.f_code.co_name}")
        source = linecache.getline(filename, lineno).rstrip()
        if source:
            lines.append(f"----> {lineno} {source.strip()}")
    if isinstance(exc, SyntaxError) and exc.text:
        lines.append(f"    {exc.text.rstrip()}")
    lines.append(f"{ename}: {evalue}" if evalue else ename)
    return {"ename": ename, "evalue": evalue, "traceback": lines}


class Repl:
    def __init__(self, shell, pretty, capped_text_type, output_file: str):
        global _IPYTHON_DIR
        _IPYTHON_DIR = os.path.dirname(type(shell).__module__ and sys.modules["IPython"].__file__)  # type: ignore[type-var, assignment]  # IPython is a package: its __file__ is set
        self.shell = shell
        self.pretty = pretty
        self.ns = shell.user_ns
        self.out = _CappedStream(capped_text_type, 10000, "stdout")
        self.err = _CappedStream(capped_text_type, 10000, "stderr")
        self.capped_text_type = capped_text_type
        self.output_file = output_file
        self.running = False
        self.count = 0

    # -- set-up in the session process ---------------------------------------------------------

    def install(self) -> None:
        fd = os.open(self.output_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stdout, sys.stderr = self.out, self.err
        sys.__stdout__, sys.__stderr__ = self.out, self.err  # type: ignore[misc, assignment]  # on purpose: what is written there is captured too
        signal.signal(signal.SIGINT, self._on_sigint)
        builtins.display = _display_function()  # type: ignore[attr-defined]  # added on purpose, as IPython does
        builtins.get_ipython = lambda: self.shell  # type: ignore[attr-defined]  # added on purpose, as IPython does

    def _on_sigint(self, signum, frame):
        if self.running:
            raise KeyboardInterrupt

    # -- cells ---------------------------------------------------------------------------------

    def _run_python(self, tree: ast.Module, name: str):
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)  # type: ignore[attr-defined]  # the ast.Expr checked above
        if tree.body:
            exec(compile(tree, name, "exec"), self.ns)
        if last is not None:
            value = eval(compile(last, name, "eval"), self.ns)
            if value is not None:
                self.ns["_"] = value
                return self.pretty(value, max_seq_length=1000)
        return None

    def _run_ipython(self, code: str):
        outcome = self.shell.run_cell(code, store_history=False, silent=False)
        error = outcome.error_before_exec or outcome.error_in_exec
        if error is not None:
            raise error
        if outcome.result is not None:
            return self.pretty(outcome.result, max_seq_length=1000)
        return None

    def run(self, code: str, limit: int) -> dict:
        self.out.reset(limit)
        self.err.reset(limit)
        result = error = None
        name = f"{CELL_PREFIX}{self.count + 1}>"
        try:
            tree = ast.parse(code, name)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None
        if tree is not None:  # tracebacks show the cell's lines
            linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        self.running = True
        try:
            result = self._run_python(tree, name) if tree is not None else self._run_ipython(code)
        except BaseException as exc:  # noqa: BLE001 - everything the cell raises is its outcome
            self.running = False
            error = _format_error(exc)
        finally:
            self.running = False
        self.count += 1
        return {
            "status": "ok" if error is None else "error",
            "stdout": self.out.getvalue() + self._fd_output(limit),
            "stderr": self.err.getvalue(),
            "result": result,
            "error": error,
        }

    def _fd_output(self, limit: int) -> str:
        """What child processes wrote to descriptors 1 and 2 during the cell, capped; the file is emptied."""
        try:
            size = os.path.getsize(self.output_file)
        except OSError:
            return ""
        if not size:
            return ""
        buf = self.capped_text_type(limit)
        with open(self.output_file, "rb") as f:
            head = f.read(min(size, limit * 4 + 4))
            buf.write(head.decode("utf-8", "replace"))
            if size > len(head):
                f.seek(max(len(head), size - limit * 4))
                skipped = f.tell() - len(head)
                buf.total += skipped
                buf.write(f.read().decode("utf-8", "replace"))
        os.truncate(self.output_file, 0)
        return buf.getvalue()


def _display_function():
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is preloaded by the zygote
        display = print
    return display


def serve(sock_fd: int, repl: Repl, wire, request: dict | None) -> None:
    """Answer `exec` frames, `request` first, until the worker closes the socket."""
    repl.install()
    while True:
        if request is None:
            try:
                request = wire.recv(sock_fd)
            except (EOFError, OSError):
                os._exit(0)
        if request.get("op") != "exec":
            request = None
            continue
        answer = repl.run(request.get("code", ""), int(request.get("max_output_chars", 10000)))
        request = None
        wire.send(sock_fd, answer)
