"""Validate mlcode through the real grader: every task's own reference must behave as the benchmark claims.

    python -m assay.benchmarks.mlcode.validate [--sandbox_url URL] [--tasks id1,id2|category] [--jobs N]

Each task is graded the way eval grades a generation line (`grade_code.grade_code_line` on a line with
`generation`, `entry_point` and `tests`, each in a fresh sandbox session, under the task's time limit),
with four answers:

- `fenced`: the reference as a model would answer, prose before and after a ```python block. It
  must pass every test, and the extracted code must be the reference itself (extraction works).
- `direct`: the bare reference, no prose, no fence. It must pass every test too.
- `null`: the reference's imports and the entry point with the same signature (the class with the
  same bases and methods), every body `raise NotImplementedError`. It must fail, with no test
  passing, and fail in the tests (not while loading: that would be a broken null answer, not a
  test that catches it).
- `no_import`: the reference with its top-level import statements removed. It must fail as
  `missing_import`: the failure taxonomy names the cause.

Two more checks use the two reference gradings, which run the same extracted code (checked) in two
fresh sessions, so no third run is needed:

- `determ`: both gave the same passed, failure_category, tests_passed and tests_total.
- `time`: neither ran into the time limit; `ref s` is the longer one's execution time as the sandbox
  counts it (the grader's budget), not including the wait for a free kernel.

Without `--sandbox_url` a sandbox server is started on a free port on 127.0.0.1 and always
stopped. The report prints a table (one row per task), a summary per category, and every
violation; the exit status is 1 when there is any.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import copy
import difflib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Optional, Sequence, TextIO, Union, cast

from . import build

VARIANTS = ("fenced", "direct", "null", "no_import")
CHECKS = ("fenced", "direct", "null", "no_import", "determ", "time")
REFERENCE_VARIANTS = ("fenced", "direct")
# A null answer must fail inside the tests; these categories mean it never got there.
NOT_A_TEST_FAILURE = ("no_code", "syntax_error", "missing_import", "missing_symbol")
DEFAULT_JOBS = 4
SANDBOX_START_TIMEOUT_S = 180.0


# ----------------------------------------------------------------------------- the answers


def _with_newline(code: str) -> str:
    return code if code.endswith("\n") else code + "\n"


def fenced_answer(code: str, entry_point: str) -> str:
    """`code` as a chat model answers: a sentence, the ```python block, a closing remark."""
    return (
        f"Here is a complete, self-contained implementation of `{entry_point}`.\n\n"
        f"```python\n{_with_newline(code)}```\n\n"
        f"It defines `{entry_point}` with every import it needs, so the hidden tests can call it directly.\n"
    )


def _null_function(node: Union[ast.FunctionDef, ast.AsyncFunctionDef]):
    """The same function, signature and decorators kept, that only raises NotImplementedError.

    Annotations go: they may name module-level helpers of the reference that the null answer lacks,
    and they change nothing at call time."""
    emptied = copy.deepcopy(node)
    arguments = emptied.args
    for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]:
        if arg is not None:
            arg.annotation = None
    emptied.returns = None
    emptied.body = [ast.Raise(exc=ast.Name(id="NotImplementedError", ctx=ast.Load()), cause=None)]
    return emptied


def null_answer(reference: str, entry_point: str) -> str:
    """The reference's imports and its entry point emptied: a function with the same signature, or a
    class with the same bases and methods, whose every body is `raise NotImplementedError`."""
    tree = ast.parse(reference)
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    targets = [
        node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == entry_point
    ]
    if not targets:
        raise ValueError(f"the reference does not define '{entry_point}' with def or class at top level")
    node = targets[-1]
    if isinstance(node, ast.ClassDef):
        methods = [_null_function(m) for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if not methods:
            init = ast.parse("def __init__(self, *args, **kwargs): pass").body[0]
            methods = [_null_function(cast(ast.FunctionDef, init))]
        emptied = copy.deepcopy(node)
        emptied.body = methods
    else:
        emptied = _null_function(node)
    module = ast.fix_missing_locations(ast.Module(body=[*imports, emptied], type_ignores=[]))
    return ast.unparse(module) + "\n"


def without_imports(reference: str) -> str:
    """The reference with every top-level `import` / `from ... import` statement removed, line for line."""
    drop: set[int] = set()
    for node in ast.parse(reference).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            assert node.end_lineno is not None  # ast.parse sets every statement's end position
            drop.update(range(node.lineno, node.end_lineno + 1))
    return "".join(line for number, line in enumerate(reference.splitlines(True), 1) if number not in drop)


def answers(task: dict) -> dict[str, tuple[str, str]]:
    """Per variant: (the generation to grade, the code extraction must find in it)."""
    reference, entry_point = _with_newline(task["reference_solution"]), task["entry_point"]
    null = null_answer(reference, entry_point)
    stripped = without_imports(reference)
    return {
        "fenced": (fenced_answer(reference, entry_point), reference),
        "direct": (reference, reference),
        "null": (fenced_answer(null, entry_point), null),
        "no_import": (fenced_answer(stripped, entry_point), stripped),
    }


# ----------------------------------------------------------------------------- the report


@dataclass
class Grading:
    """One graded answer: the grader's fields, how long it ran, and what went wrong around it."""

    passed: bool = False
    failure_category: Optional[str] = None
    tests_passed: int = 0
    tests_total: int = 0
    seconds: float = 0.0
    """Execution time the sandbox reported for the sample's cells (what the time limit counts)."""
    wall_seconds: float = 0.0
    extracted_as_given: bool = False
    stderr_tail: str = ""
    error: Optional[str] = None
    """Set when the grading itself failed (the sandbox refused or died); the checks then fail."""

    def outcome(self) -> tuple:
        return (self.passed, self.failure_category, self.tests_passed, self.tests_total)

    def describe(self) -> str:
        if self.error:
            return f"grading failed: {self.error}"
        state = "passed" if self.passed else f"failed ({self.failure_category})"
        return f"{state}, {self.tests_passed}/{self.tests_total} tests, {self.seconds:.1f} s"


@dataclass
class TaskResult:
    task_id: str
    category: str
    gradings: dict[str, Grading] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(self.checks.get(name, False) for name in CHECKS) and not self.problems

    @property
    def reference_seconds(self) -> float:
        return max((self.gradings[v].seconds for v in REFERENCE_VARIANTS if v in self.gradings), default=0.0)


@dataclass
class ValidationReport:
    tasks: list[TaskResult]
    time_limit: float
    jobs: int
    wall_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    """Violations that belong to no single task (e.g. mlcode.jsonl out of date)."""

    @property
    def violations(self) -> list[str]:
        out = list(self.problems)
        for task in self.tasks:
            out += [f"{task.task_id}: {problem}" for problem in task.problems]
        return out

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def judge(task: dict, gradings: dict[str, Grading], time_limit: float) -> TaskResult:
    """The checks of one task from its four gradings; every failed check adds a problem that says why."""
    result = TaskResult(task["id"], task["category"], gradings)
    checks, problems = result.checks, result.problems

    def complain(check: str, message: str) -> None:
        checks[check] = False
        problems.append(f"{check}: {message}")

    for variant in VARIANTS:
        checks[variant] = True
        grading = gradings[variant]
        if grading.error:
            complain(variant, grading.describe())
        elif not grading.extracted_as_given:
            complain(variant, "the extracted code is not the code given (extraction changed it)")

    for variant in REFERENCE_VARIANTS:
        grading = gradings[variant]
        if checks[variant] and not (grading.passed and grading.tests_passed == grading.tests_total > 0):
            tail = grading.stderr_tail.strip()[-1500:]
            complain(variant, f"the reference {grading.describe()}" + (f"\n{tail}" if tail else ""))

    null = gradings["null"]
    if checks["null"]:
        if null.passed or null.tests_passed:
            complain("null", f"a null answer {null.describe()}: tests that pass without an implementation")
        elif null.failure_category in NOT_A_TEST_FAILURE:
            complain("null", f"the null answer never reached the tests: {null.describe()}\n{null.stderr_tail[-800:]}")

    stripped = gradings["no_import"]
    if checks["no_import"] and stripped.failure_category != "missing_import":
        complain("no_import", f"the reference without its imports {stripped.describe()}, expected missing_import")

    first, second = (gradings[v] for v in REFERENCE_VARIANTS)
    checks["determ"] = True
    if first.error or second.error:
        complain("determ", "a reference grading failed")
    elif first.outcome() != second.outcome():
        complain("determ", f"the same reference graded twice: {first.describe()} vs {second.describe()}")

    checks["time"] = True
    for variant in REFERENCE_VARIANTS:
        grading = gradings[variant]
        if grading.error:
            complain("time", "a reference grading failed")
            break
        if grading.failure_category == "timeout" or grading.seconds > time_limit:
            complain("time", f"the reference ({variant}) ran {grading.seconds:.1f} s, the limit is {time_limit:g} s")
            break
    return result


# ----------------------------------------------------------------------------- grading


class _TimedClient:
    """The sandbox client as the grader uses it, adding up the execution time the sandbox reports."""

    def __init__(self, client):
        self._client = client
        self.seconds = 0.0

    async def grade(self, *args, **kwargs):
        verdict = await self._client.grade(*args, **kwargs)
        self.seconds += float(verdict.get("duration") or 0.0)
        return verdict


async def grade_answer(client, task: dict, generation: str, expected_code: str, time_limit: float) -> Grading:
    """Grade one generation for `task` exactly as eval grades a generation line."""
    from ...evaluation.grade_code import grade_code_line

    line = {"id": task["id"], "generation": generation, "entry_point": task["entry_point"], "tests": task["tests"]}
    timed = _TimedClient(client)
    start = time.monotonic()
    try:
        graded = await grade_code_line(timed, line, time_limit)
    except Exception as exc:  # noqa: BLE001 - a refused or lost sandbox call is a failed check, not a crash
        return Grading(
            error=f"{type(exc).__name__}: {exc}", seconds=timed.seconds, wall_seconds=time.monotonic() - start
        )
    return Grading(
        passed=bool(graded["passed"]),
        failure_category=graded["failure_category"],
        tests_passed=graded["tests_passed"],
        tests_total=graded["tests_total"],
        seconds=timed.seconds,
        wall_seconds=time.monotonic() - start,
        extracted_as_given=(graded["extracted_code"] or "").strip("\n") == expected_code.strip("\n"),
        stderr_tail=graded["stderr_tail"],
    )


async def _validate_tasks(
    url: str, token: Optional[str], tasks: list[dict], time_limit: float, jobs: int, progress: Optional[TextIO]
) -> list[TaskResult]:
    from ...sandbox.client import AsyncSandboxClient

    semaphore = asyncio.Semaphore(jobs)
    done = 0

    async with AsyncSandboxClient(url, token=token) as client:
        await client.wait_until_healthy(60)

        async def one(task: dict, variant: str, generation: str, expected: str) -> Grading:
            async with semaphore:
                return await grade_answer(client, task, generation, expected, time_limit)

        async def task_result(task: dict) -> TaskResult:
            nonlocal done
            try:
                variants = answers(task)
            except (SyntaxError, ValueError) as exc:
                result = TaskResult(task["id"], task["category"], checks={name: False for name in CHECKS})
                result.problems.append(f"cannot build the answers from the reference: {exc}")
            else:
                graded = await asyncio.gather(*(one(task, v, *variants[v]) for v in VARIANTS))
                result = judge(task, dict(zip(VARIANTS, graded)), time_limit)
            done += 1
            if progress is not None:
                state = "ok" if result.ok else "VIOLATION"
                print(
                    f"[{done}/{len(tasks)}] {task['id']}: {state} ({result.reference_seconds:.1f} s)",
                    file=progress,
                    flush=True,
                )
            return result

        return list(await asyncio.gather(*(task_result(task) for task in tasks)))


# ----------------------------------------------------------------------------- the sandbox


def _log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_bytes()[-chars:].decode(errors="replace")
    except OSError:
        return ""


@contextmanager
def local_sandbox(pool_size: int = DEFAULT_JOBS, startup_timeout: float = SANDBOX_START_TIMEOUT_S) -> Iterator[str]:
    """A sandbox server of our own on a free port of 127.0.0.1, stopped (its process group killed) on exit.

    It runs without a token and without the caller's ASSAY_SANDBOX_* and PYTEST_* variables: a
    token meant for another server must not lock this one, and ipykernel stops capturing the
    output of a kernel's child processes when it sees PYTEST_CURRENT_TEST."""
    from ...pipeline.server_options import sandbox_service
    from ...pipeline.services import RunningService, free_port, wait_healthy

    spec = sandbox_service(sys.executable)
    spec = replace(
        spec,
        command=[*spec.command, f"--pool-size={pool_size}"],
        startup_timeout_s=startup_timeout,
        poll_interval_s=0.25,
    )
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="mlcode-validate-"))
    log_path = log_dir / "sandbox.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_SANDBOX_", "PYTEST_"))}
    command = [part.replace("{port}", str(port)) for part in spec.command]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_healthy(RunningService(spec, port, process, log_path), _log_tail)
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the server removes its kernels and their folders
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
        shutil.rmtree(log_dir, ignore_errors=True)


# ----------------------------------------------------------------------------- selection


def load_tasks() -> list[dict]:
    """The shipped tasks, as eval reads them (mlcode.jsonl)."""
    with build.JSONL_PATH.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def select_tasks(all_tasks: list[dict], wanted: Optional[Sequence[Union[str, dict]]]) -> list[dict]:
    """Task ids and category names pick shipped tasks (in the given order, no repeats); a dict is a task
    of its own (it needs the fields of an mlcode line). None means every shipped task."""
    if wanted is None:
        return list(all_tasks)
    by_id = {task["id"]: task for task in all_tasks}
    chosen: dict[str, dict] = {}
    for item in wanted:
        if isinstance(item, dict):
            missing = [f for f in ("id", "category", "entry_point", "tests", "reference_solution") if f not in item]
            if missing:
                raise ValueError(f"task {item.get('id', '?')!r} lacks field(s) {', '.join(missing)}")
            chosen[item["id"]] = item
        elif item in by_id:
            chosen[item] = by_id[item]
        elif item in build.CATEGORIES:
            chosen.update((task["id"], task) for task in all_tasks if task["category"] == item)
        else:
            close = difflib.get_close_matches(item, [*by_id, *build.CATEGORIES], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"no mlcode task or category '{item}'{hint}")
    if not chosen:
        raise ValueError("no tasks selected")
    return list(chosen.values())


def _stale_jsonl_problem() -> Optional[str]:
    expected = build.render_jsonl(build.build_records())
    if build.JSONL_PATH.read_text() != expected:
        return (
            f"{build.JSONL_PATH.name} is out of date with the task folders: run python -m assay.benchmarks.mlcode.build"
        )
    return None


def validate_mlcode(
    sandbox_url: Optional[str] = None,
    tasks: Optional[Sequence[Union[str, dict]]] = None,
    time_limit: float = 20.0,
    jobs: int = DEFAULT_JOBS,
    token: Optional[str] = None,
    progress: Optional[TextIO] = None,
) -> ValidationReport:
    """Grade every selected task's four answers through the real grader and judge the checks.

    Without `sandbox_url` a local sandbox server is started for the run (and always stopped);
    `token` is for a given server (default ASSAY_SANDBOX_TOKEN). `progress`, when given, gets one
    line per finished task."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    selected = select_tasks(load_tasks(), tasks)
    problems = []
    if tasks is None or not any(isinstance(item, dict) for item in tasks):
        stale = _stale_jsonl_problem()
        if stale:
            problems.append(stale)
    start = time.monotonic()
    if sandbox_url:
        results = asyncio.run(_validate_tasks(sandbox_url, token, selected, time_limit, jobs, progress))
    else:
        with local_sandbox(pool_size=jobs) as url:
            results = asyncio.run(_validate_tasks(url, "", selected, time_limit, jobs, progress))
    return ValidationReport(results, time_limit, jobs, time.monotonic() - start, problems)


# ----------------------------------------------------------------------------- printing


def _marks(stream: Optional[TextIO]) -> tuple[str, str]:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        "✓✗".encode(encoding)
        return "✓", "✗"
    except (UnicodeEncodeError, LookupError):
        return "ok", "X"


def format_report(report: ValidationReport, stream: Optional[TextIO] = None) -> str:
    """The table (one row per task), the summary per category, and the violations."""
    yes, no = _marks(stream)
    id_width = max([len("task"), *(len(t.task_id) for t in report.tasks)])
    cat_width = max([len("category"), *(len(t.category) for t in report.tasks)])
    widths = {name: max(len(name), 3) for name in CHECKS}
    header = (
        f"{'task':<{id_width}}  {'category':<{cat_width}}  "
        + "  ".join(f"{name:^{widths[name]}}" for name in CHECKS)
        + "  ref s"
    )
    lines = [header, "-" * len(header)]
    for task in sorted(report.tasks, key=lambda t: t.task_id):
        marks = "  ".join(f"{(yes if task.checks.get(name) else no):^{widths[name]}}" for name in CHECKS)
        lines.append(
            f"{task.task_id:<{id_width}}  {task.category:<{cat_width}}  {marks}  {task.reference_seconds:5.1f}"
        )

    lines += [
        "",
        f"{'category':<{cat_width}}  tasks  "
        + "  ".join(f"{name:^{widths[name] + 4}}" for name in CHECKS)
        + "  max ref s",
    ]
    by_category: dict[str, list[TaskResult]] = defaultdict(list)
    for task in report.tasks:
        by_category[task.category].append(task)
    order = [c for c in build.CATEGORIES if c in by_category] + sorted(set(by_category) - set(build.CATEGORIES))
    for category in [*order, "all"]:
        group = report.tasks if category == "all" else by_category[category]
        counts = "  ".join(
            f"{f'{sum(t.checks.get(n, False) for t in group)}/{len(group)}':^{widths[n] + 4}}" for n in CHECKS
        )
        slowest = max((t.reference_seconds for t in group), default=0.0)
        lines.append(f"{category:<{cat_width}}  {len(group):>5}  {counts}  {slowest:9.1f}")

    gradings = sum(len(t.gradings) for t in report.tasks)
    lines += [
        "",
        f"{len(report.tasks)} tasks, {gradings} gradings, {report.jobs} at a time, time limit "
        f"{report.time_limit:g} s, {report.wall_seconds:.0f} s in all",
    ]
    violations = report.violations
    if violations:
        lines += ["", f"{len(violations)} violation(s):"] + [f"- {v}" for v in violations]
    else:
        lines.append(f"no violations: every check holds for every task {yes}")
    return "\n".join(lines)


def run(
    sandbox_url: Optional[str] = None, tasks: Optional[str] = None, jobs: int = DEFAULT_JOBS, time_limit: float = 20.0
) -> int:
    """Validate, print the report, and return the exit status (0: no violation, 1: violations,
    2: the request itself is wrong, e.g. an unknown task id)."""
    try:
        wanted = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
        report = validate_mlcode(
            sandbox_url=sandbox_url, tasks=wanted, time_limit=time_limit, jobs=jobs, progress=sys.stderr
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report, sys.stdout), flush=True)
    return report.exit_code


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m assay.benchmarks.mlcode.validate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--sandbox_url",
        default=None,
        help="a running sandbox service (token from ASSAY_SANDBOX_TOKEN); default: start one",
    )
    parser.add_argument("--tasks", default=None, help="comma-separated task ids or categories (default: all)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="gradings at once (default: %(default)s)")
    parser.add_argument(
        "--time_limit",
        type=float,
        default=20.0,
        help="seconds per graded sample, as eval grades (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    return run(args.sandbox_url, args.tasks, args.jobs, args.time_limit)


if __name__ == "__main__":
    sys.exit(main())
