"""The grading run inside a sandbox process: tests first, the answer as its own module, then each test.

Forked from the fork server for one graded sample (one `grade` frame) and thrown away after it.
The order matters:

1. The tests load first, rewritten by rewrite.py so every assertion and call goes through the strict
   Checker (strict.py), into a namespace of their own with a private copy of the builtins. Modules
   they imported are replaced by frozen copies of their attributes, so an answer that patches
   `torch.allclose` in the real module changes nothing the tests call.
2. The sentry is installed: an audit hook (`sys.addaudithook`, which Python offers no way to remove)
   whose state lives only in its closure: the signing key, the test functions it expects, and the
   snapshots of the interpreter state the harness relies on. Only the sentry can sign a result, and
   it signs only events that come from the runner's own frame (`_grade`), in order.
3. The answer runs as module `solution` (its own namespace, real builtins). Its names are then added
   to the tests' namespace, where the tests' own names win, so a test's `import torch` never
   satisfies an answer that forgot it.
4. Each test runs; the sentry checks, before it signs a pass, that no thread or process of the
   answer is left, that builtins, sys hooks, signal handlers, timers, the tests' namespace and the
   relevant modules are as they were, and that the answer did nothing it refuses.

While the answer or the tests run, the sentry refuses, and records as tampering: call-stack and
object-graph introspection that could reach the harness (`sys._getframe`, frames of tracebacks,
generators and coroutines, `sys._current_frames`, `gc.get_objects`/`get_referrers`/`get_referents`),
trace and profile hooks, new audit hooks, raw memory through ctypes or /proc/*/mem, attribute
assignment on types or on functions that existed before the answer, and signals to the grading
process itself. A refused frame lookup raises ValueError or AttributeError, which the standard
library's callers (logging, typing, namedtuple) already handle.

Results leave as frames signed with HMAC-SHA256 under a key that came with the request: the worker
(outside this process) verifies every frame, their order and the process's exit, and decides.
Everything here that the sentry uses is bound in its closure before the answer loads, and only C
functions are called on the signing path, so patching a module changes neither what is signed nor
how.

Standalone (no assay imports): loaded by zygote.py with private builtins.
"""

from __future__ import annotations

import _hashlib
import builtins
import gc
import linecache
import marshal
import os
import signal
import sys
import types

FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"})
REFUSED_EVENTS = frozenset(
    {
        "sys._current_frames",
        "sys._current_exceptions",
        "sys.settrace",
        "sys.setprofile",
        "sys.addaudithook",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.dlsym/handle",
        "ctypes.call_function",
        "ctypes.cdata",
        "ctypes.cdata/buffer",
        "ctypes.string_at",
        "ctypes.wstring_at",
        "ctypes.addressof",
        "sys.monitoring.register_callback",
        "sys.monitoring.set_events",
        "sys.monitoring.set_local_events",
        "cpython.PyInterpreterState_Clear",
    }
)
SIGNAL_EVENTS = frozenset({"os.kill", "os.killpg", "signal.pthread_kill"})
ANSWER_FILE = "solution.py"
TESTS_FILE = "tests.py"
SEALED = b"S"

_HERE = os.path.dirname(os.path.abspath(__file__))
_PRIVATE_BUILTINS = dict(builtins.__dict__)
"""The builtins as they were when the fork server started: the tests' namespace gets a copy."""


def _type_name(kind) -> str:
    try:
        name = type.__dict__["__qualname__"].__get__(kind)
    except (KeyError, TypeError, AttributeError):
        return "?"
    return name if type(name) is str else "?"


# -- what the fork server prepares once -------------------------------------------------------


def trusted_types() -> set[int]:
    """Ids of every type that exists now: builtins and every loaded module's classes."""
    found: set[int] = set()
    for value in list(vars(builtins).values()) + list(vars(types).values()):
        if isinstance(value, type):
            found.add(id(value))
    for module in list(sys.modules.values()):
        found |= module_types(module)
    return found


def module_types(module) -> set[int]:
    found = set()
    namespace = getattr(module, "__dict__", None)
    if isinstance(namespace, dict):
        for value in list(namespace.values()):
            if isinstance(value, type):
                found.add(id(value))
    return found


_BASE_TYPES: set[int] = set()
_BASE_MODULES: frozenset = frozenset()


_CONCRETE = (
    type({}.keys()),
    type({}.values()),
    type({}.items()),
    type(iter([])),
    type(iter(())),
    type(iter("")),
    type(iter(range(0))),
    type(reversed([])),
    type(zip()),
    type(map(int, ())),
    type(filter(None, ())),
    type(enumerate(())),
    type(iter(set())),
    type(iter({})),
    type(memoryview(b"")),
    type(...),
    type(NotImplemented),
    type(i for i in ()),  # type: ignore[var-annotated]  # an empty generator: only its type is wanted
)


def prepare() -> None:
    """Called by the fork server after its imports: every later fork inherits the result."""
    global _BASE_TYPES, _BASE_MODULES
    import warnings

    with warnings.catch_warnings():  # reading every module's attributes trips deprecation notices
        warnings.simplefilter("ignore")
        found = trusted_types()
    _BASE_TYPES = found | {id(FrozenModule)} | {id(t) for t in _CONCRETE}
    _BASE_MODULES = frozenset(sys.modules)


# -- frozen modules ------------------------------------------------------------------------


class FrozenModule(types.ModuleType):
    """A module's attributes as they were when the tests loaded; submodules are frozen on first use.

    What the tests assign to it (a test that wraps `dist.all_reduce` to count calls) goes to the real
    module too, so the answer sees the tests' patch; what the answer assigns to the real module
    never reaches the tests.
    """

    def __setattr__(self, name, value):
        setattr(types.ModuleType.__getattribute__(self, "__assay_real__"), name, value)
        types.ModuleType.__setattr__(self, name, value)

    def __delattr__(self, name):
        delattr(types.ModuleType.__getattribute__(self, "__assay_real__"), name)
        types.ModuleType.__delattr__(self, name)

    def __getattr__(self, name):
        real = types.ModuleType.__getattribute__(self, "__assay_real__")
        value = getattr(real, name)
        if isinstance(value, types.ModuleType):
            value = freeze(value)
        types.ModuleType.__setattr__(self, name, value)
        return value


def freeze(module: types.ModuleType) -> FrozenModule:
    frozen = FrozenModule(module.__name__)
    namespace = frozen.__dict__
    for key, value in list(module.__dict__.items()):
        if not isinstance(value, types.ModuleType):
            namespace[key] = value
    namespace["__assay_real__"] = module
    return frozen


# -- snapshots of what the harness relies on ----------------------------------------------------


def _watched(value) -> bool:
    return callable(value) or isinstance(value, types.ModuleType)


def module_snapshot(names) -> tuple:
    import warnings

    with warnings.catch_warnings():  # some modules warn when their deprecated attributes are read
        warnings.simplefilter("ignore")
        return _module_snapshot(names)


def _module_snapshot(names) -> tuple:
    out = []
    for name in sorted(names):
        module = sys.modules.get(name)
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        out.append(
            (name, id(module), tuple((k, id(v)) for k, v in list(namespace.items()) if type(k) is str and _watched(v)))
        )
    return tuple(out)


def relevant_modules(namespace: dict) -> set[str]:
    """builtins, sys and every module (with its submodules) that the tests' namespace refers to."""
    roots = {"builtins", "sys", "os", "json", "math", "types", "functools", "operator"}
    for value in namespace.values():
        real = value.__dict__.get("__assay_real__", value) if isinstance(value, types.ModuleType) else None
        if real is not None:
            roots.add(real.__name__.split(".")[0])
        elif callable(value) and type(getattr(value, "__module__", None)) is str:
            roots.add(value.__module__.split(".")[0])
    return {name for name in sys.modules if name.split(".")[0] in roots}


def _frame_walkers() -> list:
    """Code of library functions that hand their callers' frames out: refused while graded code runs."""
    import inspect
    import traceback

    found = [traceback.walk_stack.__code__]
    for name in ("stack", "getouterframes", "currentframe", "trace", "getinnerframes"):
        fn = getattr(inspect, name, None)
        if fn is not None and hasattr(fn, "__code__"):
            found.append(fn.__code__)
    return found


# -- the sentry ------------------------------------------------------------------------------


def watched_classes(namespace: dict) -> list:
    """Classes whose attributes the tests' outcome depends on: torch's tensor and module, and the tests' own.

    Assigning a class attribute is not an audit event, so these are compared, not refused.
    """
    found = []
    torch = sys.modules.get("torch")
    if torch is not None:
        found += [torch.Tensor, torch.nn.Module, torch.nn.Parameter]
    for value in namespace.values():
        if isinstance(value, type) and value not in found:
            found += [c for c in value.__mro__ if c is not object and c not in found]
    return [c for c in found if isinstance(vars(c), types.MappingProxyType)]


def make_sentry(
    key: bytes,
    fd: int,
    expected: tuple,
    trusted_codes: frozenset,
    tests_namespace: dict,
    watched_modules: set,
    streams: tuple,
    torch_stacks,
    watched_classes: list,
    watch_stdout: bool = True,
):
    """Build (not install) the audit hook. Every name it uses is bound here, before the answer loads.

    A program run (`watch_stdout=False`) may replace sys.stdout, as fast-I/O templates do: its output is
    read from descriptor 1's file, never through sys.stdout."""
    # builtins and C functions, bound as closure variables so no global or builtins lookup happens later
    b = _PRIVATE_BUILTINS
    len_, id_, tuple_, isinstance_, type_, str_, frozenset_ = (
        b["len"],
        b["id"],
        b["tuple"],
        b["isinstance"],
        b["type"],
        b["str"],
        b["frozenset"],
    )
    bytes_, open_, dict_ = b["bytes"], b["open"], b["dict"]
    ValueError_, AttributeError_, RuntimeError_, PermissionError_, OSError_ = (
        b["ValueError"],
        b["AttributeError"],
        b["RuntimeError"],
        b["PermissionError"],
        b["OSError"],
    )
    getframe, current_frames = sys._getframe, sys._current_frames
    gettrace, getprofile = sys.gettrace, sys.getprofile
    sys_modules, sys_dict, builtins_dict = sys.modules, sys.__dict__, builtins.__dict__
    getpid, write, listdir = os.getpid, os.write, os.listdir
    digest, dumps = _hashlib.hmac_digest, marshal.dumps
    getsignal, sigmask, getitimer = signal.getsignal, signal.pthread_sigmask, signal.getitimer
    itimers = (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)
    signals = tuple_(s for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP))
    gc_callbacks = gc.callbacks
    module_type = types.ModuleType
    getattr_ = b["getattr"]
    vars = b["vars"]  # noqa: A001 - bound here like every name the sentry uses
    base_types = _BASE_TYPES
    base_modules = frozenset_(sys.modules)
    graded_files = (ANSWER_FILE, TESTS_FILE)
    here, here_len = _HERE, len(_HERE)
    walkers = frozenset(_frame_walkers())
    pid = getpid()
    pgid = os.getpgid(0)
    own_targets = (0, -1, pid, -pid, pgid, -pgid, os.getppid())

    def snapshot_sys():
        return (
            gettrace(),
            getprofile(),
            sys_dict.get("excepthook"),
            sys_dict.get("displayhook"),
            sys_dict.get("unraisablehook"),
            sys_dict.get("breakpointhook"),
            sys_dict.get("stdout") if watch_stdout else None,
            sys_dict.get("stderr"),
            sys_dict.get("modules"),
            tuple_(sys_dict.get("meta_path") or ()),
            tuple_(sys_dict.get("path_hooks") or ()),
            tuple_(gc_callbacks),
        )

    def snapshot_signals():
        return (
            tuple_(getsignal(s) for s in signals),
            frozenset_(sigmask(signal.SIG_BLOCK, ())),
            tuple_(getitimer(t) for t in itimers),
        )

    def snapshot_namespace():
        return tuple_((k, id_(v)) for k, v in tests_namespace.items() if type_(k) is str_ and callable(v))

    def snapshot_classes():
        return tuple_((c, dict_((k, id_(v)) for k, v in vars(c).items())) for c in watched_classes)

    def classes_changed():
        """A class attribute the answer put in place or removed (libraries add attributes lazily)."""
        for cls, base in classes_base:
            current = vars(cls)
            for k, v in list(current.items()):
                if base.get(k) != id_(v) and made_by_answer(v):
                    return f"{_type_name(cls)}.{k}"
            for k in base:
                if k not in current:
                    return f"{_type_name(cls)}.{k}"
        return None

    builtins_base = tuple_((k, id_(v)) for k, v in builtins_dict.items())
    classes_base = snapshot_classes()
    sys_base, signals_base = snapshot_sys(), snapshot_signals()
    modules_base = module_snapshot(watched_modules)
    callable = b["callable"]  # noqa: A001 - bound for snapshot_namespace
    namespace_base = [None]

    state = {"runner": None, "armed": False, "next": 0, "current": None, "seq": 0, "tampering": None, "done": False}
    busy = [False]
    looking = [False]

    def note(reason):
        if state["tampering"] is None:
            state["tampering"] = reason

    def frame_code_file(frame):
        looking[0] = True
        try:
            return frame.f_code.co_filename
        except AttributeError_:
            return ""
        finally:
            looking[0] = False

    def guarded_frame(event, args):
        """Whether to refuse a frame: one of the answer's, the tests' or the harness's, or a frame walker.

        Libraries look at their own callers' frames (torch.library, logging, typing): those frames
        are library code and are given. A frame of graded code leads (through f_back and
        f_globals) to the tests' namespace, so it is refused to everyone but the harness.
        """
        code = caller_code()
        if code in trusted:
            return False
        if code in walkers:
            return True
        if event == "sys._getframe":
            frame = args[0]
        else:
            looking[0] = True
            try:
                frame = getattr_(args[0], args[1], None)
            finally:
                looking[0] = False
        if frame is None:
            return False
        name = frame_code_file(frame)
        return name in graded_files or name[:here_len] == here

    def own_package(target):
        """Whether the code assigning to `target` belongs to the package that defined it (torch on torch's types)."""
        module = getattr_(target, "__module__", None)
        code = caller_code(3)
        if type_(module) is not str_ or code is None:
            return False
        filename = code.co_filename
        if filename in graded_files or filename[:1] == "<" or filename[:here_len] == here:
            return False
        return ("/" + module.split(".")[0] + "/") in filename

    def caller_code(depth=2):
        looking[0] = True
        try:
            return getframe(depth).f_code
        except ValueError_:
            return None
        finally:
            looking[0] = False

    def seal(message):
        message["seq"] = state["seq"]
        message["pid"] = pid
        state["seq"] += 1
        payload = dumps(message, 4)
        body = SEALED + digest(key, payload, "sha256") + payload
        frame = len_(body).to_bytes(4, "big") + body
        while frame:
            frame = frame[write(fd, frame) :]

    in_pid_namespace = os.getppid() == 0  # the parent (the fork server) is outside the namespace (zygote.py)

    def live(pid_text):
        try:
            with open_("/proc/" + pid_text + "/stat") as f:
                stat = f.read()
        except OSError_:
            return False
        return stat[stat.rindex(")") + 2 :][:1] != "Z"

    def live_children():
        """Processes left besides this one: in a PID namespace, every other process but its init."""
        own = str_(pid)
        if in_pid_namespace:
            try:
                names = listdir("/proc")
            except OSError_:
                names = []
            found = [n for n in names if n.isdigit() and n not in ("1", own) and live(n)]
            if names and "1" in names:
                return found
        found = []
        try:
            tasks = listdir("/proc/self/task")
        except OSError_:
            return found
        for task in tasks:
            try:
                with open_("/proc/self/task/" + task + "/children") as f:
                    children = f.read().split()
            except OSError_:
                continue
            found += [child for child in children if live(child)]
        return found

    def check(full):
        if state["tampering"] is not None:
            return state["tampering"]
        if len_(current_frames()) != 1:
            return "a thread the answer started is still running"
        children = live_children()
        if children:
            return f"{len_(children)} process(es) the answer started are still running"
        if snapshot_sys() != sys_base:
            return "the answer changed an interpreter hook (trace, profile, import, excepthook, stdout, gc callbacks)"
        if snapshot_signals() != signals_base:
            return "the answer changed a signal handler, the signal mask or a timer"
        if tuple_((k, id_(v)) for k, v in builtins_dict.items()) != builtins_base:
            return "the answer changed the builtins"
        changed = classes_changed()
        if changed is not None:
            return f"the answer changed {changed}, an attribute of a class the tests rely on"
        if torch_stacks is not None and torch_stacks():
            return "the answer left a torch function or dispatch mode active"
        if namespace_base[0] is not None and snapshot_namespace() != namespace_base[0]:
            return "the tests' namespace changed while the answer ran"
        if full:
            for name, module_id, entries in modules_base:
                module = sys_modules.get(name)
                if id_(module) != module_id:
                    if not isinstance_(module, module_type) or any_made_by_answer(module.__dict__.values()):
                        return f"the answer replaced module {name} in sys.modules"
                    continue
                namespace = module.__dict__
                for k, v in entries:
                    value = namespace.get(k)
                    if id_(value) != v and made_by_answer(value):
                        return f"the answer replaced {name}.{k}"
        return None

    def made_by_answer(value, depth=0):
        """Whether a value that replaced a library attribute is the answer's work (libraries rebind too)."""
        if depth > 4:
            return False
        code = getattr_(value, "__code__", None)
        if code is not None and type_(getattr_(code, "co_filename", None)) is str_:
            filename = code.co_filename
            if filename == ANSWER_FILE:
                return True
            return filename[:1] == "<" and getattr_(value, "__module__", None) not in base_modules
        for inner in ("__func__", "func", "__wrapped__"):
            wrapped = getattr_(value, inner, None)
            if wrapped is not None and wrapped is not value and made_by_answer(wrapped, depth + 1):
                return True
        kind = type_(value)
        if id_(kind) in base_types:
            return False
        for member in kind.__dict__.values():
            member_code = getattr_(member, "__code__", None)
            if member_code is not None and getattr_(member_code, "co_filename", None) == ANSWER_FILE:
                return True
        return False

    def any_made_by_answer(values):
        for value in list(values):
            if callable(value) and made_by_answer(value):
                return True
        return False

    def harness_event(event, args):
        frame = None
        looking[0] = True
        try:
            frame = getframe(2)
        finally:
            looking[0] = False
        if getpid() != pid:
            note("a process the answer forked reported results")
            return
        if event == "assay.begin":
            if state["runner"] is None and frame.f_code in trusted_codes:
                state["runner"] = frame
            return
        if frame is not state["runner"] or state["done"]:
            note(f"{event} from outside the runner")
            return
        if event == "assay.arm":
            state["armed"] = True
        elif event == "assay.loaded":
            error, defines = args
            tampering = check(True)
            namespace_base[0] = None
            seal({"kind": "loaded", "error": error, "defines_entry_point": defines is True, "tampering": tampering})
        elif event == "assay.names_added":
            namespace_base[0] = snapshot_namespace()
        elif event == "assay.start":
            index, fn = args
            if index != state["next"] or index >= len_(expected) or fn is not expected[index]:
                note("the test sequence was altered")
            state["current"] = index
        elif event == "assay.end":
            index, ok = args
            if index != state["current"] or index != state["next"]:
                note("the test sequence was altered")
                ok = False
            state["next"] = index + 1
            state["current"] = None
            tampering = check(False) if ok is True else None
            seal({"kind": "test", "index": index, "ok": ok is True and tampering is None, "tampering": tampering})
        elif event == "assay.info":
            index, error = args
            seal({"kind": "info", "index": index, "error": error})
        elif event == "assay.done":
            tampering = check(True)
            out, err = streams
            state["done"] = True
            seal({"kind": "done", "tests_run": state["next"], "tampering": tampering, "stdout": out(), "stderr": err()})

    def hook(event, args):
        if looking[0]:
            return
        if event == "sys._getframe" or (event == "object.__getattr__" and args[1] in FRAME_ATTRIBUTES):
            if state["armed"] and guarded_frame(event, args):
                if event == "sys._getframe":
                    raise ValueError_("call stack introspection is not available to graded code")
                raise AttributeError_("frames of graded code are not available")
            return
        if event[:6] == "assay.":
            if busy[0]:
                return
            busy[0] = True
            try:
                harness_event(event, args)
            finally:
                busy[0] = False
            return
        if not state["armed"]:
            return
        if event in REFUSED_EVENTS:
            if caller_code() in trusted:
                return
            note(f"the answer called {event}")
            raise RuntimeError_(f"{event} is not available to graded code")
        if event == "object.__setattr__":
            target, name = args[0], args[1]
            if isinstance_(target, type_):
                if id_(target) in base_types and not own_package(target):
                    note(f"the answer assigned {_type_name(target)}.{name}")
                    raise AttributeError_(f"cannot set attributes of {_type_name(target)} in graded code")
            elif name in ("__code__", "__defaults__", "__kwdefaults__"):
                code = getattr_(target, "__code__", None)
                module = getattr_(target, "__module__", None)
                existed = type_(module) is str_ and (module in base_modules or module == "tests")
                if code is not None and code.co_filename != ANSWER_FILE and existed and not own_package(target):
                    note(f"the answer replaced {name} of a function it did not define")
                    raise AttributeError_(f"cannot replace {name} of this function in graded code")
        elif event == "code.__new__":
            code = caller_code()
            if code is not None and (code.co_filename == ANSWER_FILE or code.co_filename[:1] == "<"):
                note("the answer built a code object")
                raise RuntimeError_("graded code may not build code objects")
        elif event == "open":
            path = args[0]
            if isinstance_(path, bytes_):
                path = path.decode("utf-8", "replace")
            if isinstance_(path, str_) and path[:6] == "/proc/" and path.rsplit("/", 1)[-1] in ("mem", "pagemap"):
                note("the answer opened process memory")
                raise PermissionError_(f"{path} is not available to graded code")
        elif event in SIGNAL_EVENTS:
            target = args[0]
            if event == "signal.pthread_kill" or target in own_targets or (event == "os.killpg" and target == pgid):
                note("the answer signalled the grading process")
                raise PermissionError_("graded code may not signal the grading process")

    trusted = frozenset_(
        trusted_codes
        | {
            f.__code__
            for f in (
                check,
                harness_event,
                hook,
                live_children,
                live,
                snapshot_classes,
                classes_changed,
                snapshot_sys,
                snapshot_signals,
                snapshot_namespace,
                seal,
            )
        }
    )
    return hook


# -- the run --------------------------------------------------------------------------------


def describe(exc: BaseException) -> dict:
    """An exception as plain strings, without running any method the answer may have defined."""
    kind = type(exc)
    ename = _type_name(kind)
    args = exc.args if isinstance(exc.args, tuple) else ()
    if all(type(a) is str for a in args):
        evalue = args[0] if len(args) == 1 else (", ".join(args) if args else "")
    else:
        evalue = "; ".join(
            a
            if type(a) is str
            else repr(a)
            if type(a) in (int, float, bool, type(None))
            else f"<{_type_name(type(a))}>"
            for a in args
        )
    lines = ["Traceback (most recent call last):"]
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.startswith(_HERE):
            lines.append(f'  File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}')
            source = linecache.getline(code.co_filename, tb.tb_lineno).strip()
            if source:
                lines.append(f"    {source}")
        tb = tb.tb_next
    lines.append(f"{ename}: {evalue}" if evalue else ename)
    return {"ename": ename, "evalue": evalue[-4000:], "traceback": lines[-60:]}


def _grade(
    audit, answer_code, module, tests_namespace, tests, entry_name, sys_modules, describe_error, exec_, program=None
):
    """The runner. Its frame is the only one the sentry takes events from: keep everything local.

    `program` (a program run) is (system_exit, live_threads, join, own_flush, run_exit_functions): the run ends
    as a Python program's would, with sys.exit(0) a normal end, its non-daemon threads joined, its atexit
    handlers run and sys.stdout flushed."""
    audit("assay.begin")
    audit("assay.arm")
    error = None
    try:
        sys_modules["solution"] = module
        exec_(answer_code, module.__dict__)
    except BaseException as exc:  # noqa: BLE001 - the answer's failure is its outcome
        error = describe_error(exc)
        if program is not None and type(exc) is program[0] and exc.args in ((), (None,), (0,)):
            error = None  # sys.exit(), sys.exit(0): the program ended normally
    if program is not None:
        _, live_threads, join, own_flush, run_exit_functions = program
        try:
            for thread in live_threads():
                join(thread)
            run_exit_functions()  # atexit handlers (a fast-I/O buffer written at exit), as at interpreter exit
            stream = sys_modules["sys"].stdout
            if stream is not None and not getattr(stream, "closed", False):
                stream.flush()  # a replaced sys.stdout (a fast-I/O wrapper) holds the output's tail
        except BaseException as exc:  # noqa: BLE001 - the answer's failure is its outcome
            error = error or describe_error(exc)
        try:
            own_flush()
        except BaseException:  # noqa: BLE001, S110 - the answer closed sys.stdout: what reached the file counts
            pass
    defines = entry_name is None or entry_name in module.__dict__
    audit("assay.loaded", error, defines)
    if error is not None or not defines:
        audit("assay.done")
        return
    for name, value in list(module.__dict__.items()):
        if type(name) is str and not name.startswith("__") and name not in tests_namespace:
            tests_namespace[name] = value
    audit("assay.names_added")
    for index, fn in enumerate(tests):
        audit("assay.start", index, fn)
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - a failing test is an outcome
            audit("assay.end", index, False)
            audit("assay.info", index, describe_error(exc))
        else:
            audit("assay.end", index, True)
    audit("assay.done")


def serve(fd: int, request: dict, wire, capped_text_type, output_file: str, repl_module, strict, rewrite) -> None:
    """Run the one `grade` request of this process; its results are sealed frames on `fd`."""
    if request.get("mode") == "program":
        serve_program(fd, request, capped_text_type, output_file, repl_module)
        return
    key = bytes.fromhex(request.pop("key"))
    limit = int(request.get("max_output_chars", 10000))
    out = repl_module._CappedStream(capped_text_type, limit, "stdout")
    err = repl_module._CappedStream(capped_text_type, limit, "stderr")
    descriptor = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    sys.stdout, sys.stderr = out, err

    fd_output = _file_reader(output_file, limit)

    def plain_failure(kind: str, message: str) -> None:
        """Before the answer exists nothing can forge a frame; still signed, for one format.

        `key` is a closure cell, emptied by the `del key` below before the answer loads."""
        payload = marshal.dumps({"kind": kind, "message": message, "seq": 0, "pid": os.getpid()}, 4)
        wire_body = SEALED + _hashlib.hmac_digest(key, payload, "sha256") + payload  # noqa: F821 (see above)
        os.write(fd, len(wire_body).to_bytes(4, "big") + wire_body)

    tests_source, answer_source = request["tests"], request["answer"]
    names = request.get("test_names") or []
    if not names:
        plain_failure("tests_error", "the task has no test functions (def test_...)")
        return
    linecache.cache[TESTS_FILE] = (len(tests_source), None, tests_source.splitlines(True), TESTS_FILE)
    try:
        tests_code = rewrite.rewrite_tests(tests_source, TESTS_FILE)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        plain_failure("tests_error", f"the tests do not compile: {type(exc).__name__}: {exc}")
        return
    torch = sys.modules.get("torch")
    torch_stacks = None
    if torch is not None:
        function_stack = torch._C._len_torch_function_stack
        dispatch_stack = getattr(torch._C, "_len_torch_dispatch_stack", lambda: 0)
        torch_stacks = lambda: function_stack() + dispatch_stack()  # noqa: E731
    numpy = sys.modules.get("numpy")
    bool_types = (numpy.bool_,) if numpy is not None else ()
    array_types = (numpy.ndarray,) if numpy is not None else ()
    trusted = set(_BASE_TYPES)
    checker = strict.Checker(
        trusted, AssertionError, torch_stacks, bool_types, torch.Tensor if torch is not None else None, array_types
    )
    trusted.add(id(strict.Checker))
    namespace = {
        "__name__": "tests",
        "__file__": TESTS_FILE,
        "__builtins__": dict(_PRIVATE_BUILTINS),
        "__assay_check__": checker,
    }
    try:
        exec(tests_code, namespace)
    except BaseException as exc:  # noqa: BLE001 - a broken task is a data error, never the answer's
        plain_failure("tests_error", "the tests raised while loading: " + describe(exc)["evalue"])
        return
    missing = [n for n in names if not callable(namespace.get(n))]
    if missing:
        plain_failure("tests_error", f"the tests do not define {', '.join(missing)}")
        return
    tests = tuple(namespace[n] for n in names)
    for new_module in set(sys.modules) - _BASE_MODULES:  # what the tests imported is trusted too
        trusted |= module_types(sys.modules[new_module])
    for key_name, value in list(namespace.items()):
        if isinstance(value, types.ModuleType):
            namespace[key_name] = freeze(value)
        elif isinstance(value, type):
            trusted.add(id(value))
    try:
        answer_code = compile(answer_source, ANSWER_FILE, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        plain_failure("answer_syntax_error", f"{type(exc).__name__}: {exc}")
        return
    linecache.cache[ANSWER_FILE] = (len(answer_source), None, answer_source.splitlines(True), ANSWER_FILE)
    module = types.ModuleType("solution")
    module.__file__ = ANSWER_FILE
    entry_point = request.get("entry_point")
    entry_name = entry_point.split(".")[0] if entry_point else None
    trusted_codes = frozenset({_grade.__code__, describe.__code__})
    hook = make_sentry(
        key,
        fd,
        tests,
        trusted_codes,
        namespace,
        relevant_modules(namespace),
        (lambda: out.getvalue(), lambda: err.getvalue() + fd_output()),
        torch_stacks,
        watched_classes(namespace),
    )
    del key, request
    sys.addaudithook(hook)
    del hook
    _grade(sys.audit, answer_code, module, namespace, tests, entry_name, sys.modules, describe, exec)


def _file_reader(path: str, limit: int):
    """A reader of the first `limit` + 1 characters of `path` (one more than the cap shows that it was passed)."""
    open_ = open

    def read() -> str:
        try:
            with open_(path, "rb") as f:
                data = f.read(limit * 4 + 4)
        except OSError:
            return ""
        return data.decode("utf-8", "replace")[: limit + 1]

    return read


def _descriptor_reader(fd: int, limit: int):
    """A reader of the first `limit` + 1 characters of the open file `fd` (the program's output, which has no
    name left in the file system)."""
    pread = os.pread

    def read() -> str:
        try:
            data = pread(fd, limit * 4 + 4, 0)
        except OSError:
            return ""
        return data.decode("utf-8", "replace")[: limit + 1]

    return read


def serve_program(fd: int, request: dict, capped_text_type, output_file: str, repl_module) -> None:
    """A program run: the answer is the program, run once as `__main__` with `stdin` on descriptor 0.

    What it writes to descriptor 1 (print, sys.stdout.write, sys.stdout.buffer, os.write(1, ...)) goes to
    a file of its own, which the sentry reads when the run is done and sends signed, so the worker can
    compare it with the expected output. The expected output never enters this process. The same
    sentry watches the run as in a test run, except that sys.stdout may be replaced."""
    import atexit
    import io
    import threading

    key = bytes.fromhex(request.pop("key"))
    limit = int(request.get("max_output_chars", 10000))
    stdin_text = request.get("stdin")
    stdin_file, stdout_file = output_file + "-stdin", output_file + "-stdout"
    with open(stdin_file, "wb") as f:
        f.write(stdin_text.encode("utf-8", "replace") if type(stdin_text) is str else b"")
    descriptor = os.open(stdin_file, os.O_RDONLY)
    os.dup2(descriptor, 0)
    os.close(descriptor)
    descriptor = os.open(stdout_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(descriptor, 1)
    os.close(descriptor)
    stdout_reader = os.open(stdout_file, os.O_RDONLY)
    # nameless from now on: another process of the same user (without namespaces) cannot open either file
    os.unlink(stdin_file)
    os.unlink(stdout_file)
    descriptor = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
    stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
    err = repl_module._CappedStream(capped_text_type, limit, "stderr")
    sys.stdout, sys.stderr = stdout, err
    sys.__stdin__, sys.__stdout__ = sys.stdin, stdout  # type: ignore[misc]  # what sys.__stdout__ at exit reaches
    read_stdout, read_stderr = _descriptor_reader(stdout_reader, limit), _file_reader(output_file, limit)
    own_flush = stdout.flush
    atexit._clear()  # the fork server's own handlers are not the program's
    run_exit_functions = atexit._run_exitfuncs

    def program_output() -> str:
        try:
            own_flush()
        except (ValueError, OSError):  # closed by the answer: what reached the file counts
            pass
        return read_stdout()

    try:
        answer_code = compile(request["answer"], ANSWER_FILE, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        payload = marshal.dumps(
            {"kind": "answer_syntax_error", "message": f"{type(exc).__name__}: {exc}", "seq": 0, "pid": os.getpid()}, 4
        )
        body = SEALED + _hashlib.hmac_digest(key, payload, "sha256") + payload
        os.write(fd, len(body).to_bytes(4, "big") + body)
        return
    source = request["answer"]
    linecache.cache[ANSWER_FILE] = (len(source), None, source.splitlines(True), ANSWER_FILE)
    module = types.ModuleType("__main__")
    module.__file__ = ANSWER_FILE
    namespace: dict = {"__name__": "tests"}
    main_thread = threading.main_thread()
    enumerate_threads, is_daemon = threading.enumerate, threading.Thread.daemon.fget  # type: ignore[attr-defined]

    def live_threads() -> list:
        return [t for t in enumerate_threads() if t is not main_thread and not is_daemon(t)]

    program = (SystemExit, live_threads, threading.Thread.join, own_flush, run_exit_functions)
    hook = make_sentry(
        key,
        fd,
        (),
        frozenset({_grade.__code__, describe.__code__, live_threads.__code__}),
        namespace,
        relevant_modules(namespace),
        (program_output, lambda: err.getvalue() + read_stderr()),
        None,
        [],
        watch_stdout=False,
    )
    del key, request, source
    sys.addaudithook(hook)
    del hook
    _grade(sys.audit, answer_code, module, namespace, (), None, sys.modules, describe, exec, program)
