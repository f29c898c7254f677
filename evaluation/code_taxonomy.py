"""Why a code answer failed: one category per sample, from the errors the sandbox reported.

The categories, and the rule that assigns each (applied in grade_code.py in this order):

- `no_code`: nothing was extracted (no final answer, no complete block, truncated output).
- `syntax_error`: running the answer raised SyntaxError, IndentationError or TabError.
- `timeout`: a cell ran past the task's time limit (the sandbox answered `timeout`).
- `missing_import`: a NameError for a name that is normally imported (`torch`, `np`, `nn`, `F`,
  `math`, `dist`, ..., see COMMON_IMPORT_NAMES), or one whose message says "Did you forget to
  import", anywhere in the error: in the answer cell, or in a test, including an AssertionError whose
  text carries it (distributed tests report a rank's NameError inside their assertion message).
- `missing_symbol`: the answer ran, but the entry point is not defined afterwards.
- `runtime_error`: the answer cell raised anything else (or its kernel was killed: memory,
  processes), or a test raised something other than AssertionError, or an AssertionError whose text
  embeds a traceback ending in another exception (a crashed distributed rank).
- `wrong_answer`: every failing test failed with a plain AssertionError.
- `tampering`: the answer changed interpreter state the harness relies on, left threads or processes
  running, used what graded code may not (frame or object-graph introspection, trace hooks, raw
  memory, signals to the grader), or its results did not verify. It scores 0, as a GRPO reward too.
- `sandbox_error`: the sandbox could not grade the line (unreachable after retries, or failed); the
  reason is in `stderr_tail`. Regrading the file grades it again.
- `data_error`: the task itself cannot be graded: no `def test_*` function, or tests that do not
  load. Never a pass.

Among several failing tests the most telling cause wins: missing_import, then runtime_error, then
wrong_answer. These functions are pure; they see only the sandbox's error fields.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

FAILURE_CATEGORIES = (
    "no_code",
    "syntax_error",
    "missing_import",
    "missing_symbol",
    "runtime_error",
    "wrong_answer",
    "timeout",
    "tampering",
    "sandbox_error",
    "data_error",
)

SYNTAX_ERRORS = frozenset({"SyntaxError", "IndentationError", "TabError"})

# Names a model uses without defining because they come from an import it forgot.
COMMON_IMPORT_NAMES = frozenset(
    {
        # torch and friends, by their usual aliases
        "torch",
        "nn",
        "F",
        "dist",
        "optim",
        "Tensor",
        "DataLoader",
        "Dataset",
        "TensorDataset",
        "DDP",
        "DistributedDataParallel",
        "autocast",
        "GradScaler",
        "checkpoint",
        "init",
        "Parameter",
        "mp",
        # numeric and data libraries
        "np",
        "numpy",
        "pd",
        "pandas",
        "plt",
        "scipy",
        "sp",
        "einops",
        "rearrange",
        "einsum",
        "triton",
        "tl",
        # standard library modules
        "math",
        "os",
        "sys",
        "re",
        "json",
        "time",
        "random",
        "itertools",
        "functools",
        "collections",
        "copy",
        "typing",
        "dataclasses",
        "heapq",
        "bisect",
        "string",
        "operator",
        "multiprocessing",
        "threading",
        "datetime",
        "tempfile",
        "pickle",
        "io",
        "contextlib",
        "abc",
        "enum",
        "warnings",
        "logging",
        "inspect",
        "struct",
        "hashlib",
        "statistics",
        "fractions",
        "decimal",
        "pathlib",
        "shutil",
        "glob",
        "socket",
        "subprocess",
        "queue",
        "weakref",
        "types",
        "textwrap",
        "uuid",
        "csv",
        "gc",
        "signal",
        "traceback",
        # names usually imported from them
        "Counter",
        "defaultdict",
        "deque",
        "OrderedDict",
        "namedtuple",
        "partial",
        "reduce",
        "lru_cache",
        "wraps",
        "cache",
        "dataclass",
        "field",
        "Path",
        "Fraction",
        "Decimal",
        "contextmanager",
        "List",
        "Dict",
        "Tuple",
        "Set",
        "Optional",
        "Union",
        "Any",
        "Callable",
        "Iterable",
        "Iterator",
        "Sequence",
        "Mapping",
        "Type",
        "Literal",
        "Generator",
        "NamedTuple",
        "TypeVar",
        "ABC",
        "abstractmethod",
        "Enum",
        "product",
        "permutations",
        "combinations",
        "chain",
        "accumulate",
        "inf",
        "pi",
        "sqrt",
        "log",
        "exp",
        "floor",
        "ceil",
    }
)

_NAME_ERROR = re.compile(
    r"NameError: name '(?P<name>[A-Za-z_][A-Za-z0-9_]*)' is not defined(?P<hint>\. Did you forget to import)?"
)
_TRACEBACK_START = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"^(?P<name>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))(?::|$)")


def error_text(error: Optional[dict]) -> str:
    """One string of an error record {ename, evalue, traceback}: the header line, then the traceback."""
    if not error:
        return ""
    traceback = error.get("traceback") or []
    if isinstance(traceback, list):
        traceback = "\n".join(traceback)
    return f"{error.get('ename', '')}: {error.get('evalue', '')}\n{traceback}"


def missing_import_name(text: str) -> Optional[str]:
    """The forgotten import a NameError in `text` points at, if any."""
    for m in _NAME_ERROR.finditer(text):
        if m.group("name") in COMMON_IMPORT_NAMES or m.group("hint"):
            return m.group("name")
    return None


def embedded_exception(message: str) -> Optional[str]:
    """The exception that ends a traceback quoted inside `message` (e.g. a rank's crash), if any."""
    found = None
    for part in message.split(_TRACEBACK_START)[1:]:
        for line in part.split("\n")[1:]:
            if line and not line[0].isspace():
                m = _EXCEPTION_LINE.match(line)
                if m:
                    found = m.group("name").rsplit(".", 1)[-1]
                break
    return found


def classify_error(error: Optional[dict], *, in_answer: bool) -> str:
    """The category of one exception: raised by the answer cell (`in_answer`) or by a test."""
    error = error or {}
    ename = error.get("ename", "")
    if in_answer and ename in SYNTAX_ERRORS:
        return "syntax_error"
    if missing_import_name(error_text(error)):
        return "missing_import"
    if in_answer:
        return "runtime_error"
    if ename == "AssertionError":
        inner = embedded_exception(error.get("evalue", "") or "")
        return "runtime_error" if inner and inner != "AssertionError" else "wrong_answer"
    return "runtime_error"


_PRIORITY = ("missing_import", "runtime_error", "wrong_answer")


def worst_category(categories: Iterable[str]) -> Optional[str]:
    """The most telling of several test failures' categories (None when there are none)."""
    seen = set(categories)
    for category in _PRIORITY:
        if category in seen:
            return category
    return next(iter(seen), None)
