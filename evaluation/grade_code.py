"""Code grading: run the extracted answer and the line's hidden tests in a fresh sandbox session.

One sample, one fresh IPython session (a new session id, deleted afterwards), cells in this order:

1. the extracted answer, exactly as extracted: nothing is prepended, so a forgotten import fails
   the way it would fail for a user;
2. `'<entry point>' in globals()`: the answer must define what the tests call;
3. the line's `tests` source (top-level `test_*` functions and private helpers);
4. a runner that calls each top-level `def test_*` of the tests source, in source order. The names
   come from the tests' AST, not from `globals()`: an answer may define `test_*` functions of its
   own, and those must neither run nor count.

The task's time limit (`time_limit`, default 20 s) is a budget shared by all cells, counted with the
durations the sandbox reports. A failing answer cell ends the sample (its tests cannot mean
anything); a timeout ends it as `timeout`, keeping the tests that passed before it (the runner
prints a marker line after each test). The category rules are in code_taxonomy.py.

Fields added to each line: `passed` (every test passed and nothing failed before), `failure_category`
(null when passed), `extracted_code`, `tests_passed`, `tests_total`, `stderr_tail`.

The opt-in diagnostic (`inject_imports=True`) grades each failed sample again with DIAGNOSTIC_IMPORTS
run first in the same session, and stores what happened under `diagnostics.inject_imports`. It
never changes the official fields: it answers "how many failures are only a missing import?".
"""

from __future__ import annotations

import ast
import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Optional

from assay.evaluation.code_taxonomy import classify_error, error_text, worst_category
from assay.evaluation.extract_code import extract_code

DIAGNOSTIC_IMPORTS = """\
import collections, copy, functools, itertools, json, math, os, random, re, sys, time, typing
from collections import Counter, OrderedDict, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union
try:
    import numpy as np
except ImportError:
    pass
try:
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    pass
"""

_RUNNER = """\
def _assay_run_tests(names, marker):
    import builtins, json, sys, traceback
    namespace = builtins.globals()
    results = []
    for name in names:
        function = namespace.get(name)
        try:
            if function is None:
                raise NameError(f"name '{name}' is not defined")
            function()
            results.append({"name": name, "ok": True})
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            results.append({"name": name, "ok": False, "ename": builtins.type(exc).__name__,
                            "evalue": builtins.str(exc)[-2000:], "traceback": traceback.format_exc()[-2000:]})
        sys.stdout.write(f"\\n{marker} {name} {'ok' if results[-1]['ok'] else 'fail'}\\n")
        sys.stdout.flush()
    return json.dumps(results)
_assay_run_tests(%(names)r, %(marker)r)
"""

MAX_OUTPUT_CHARS = 60000
PRELUDE_TIME_LIMIT = 60.0


def collect_test_names(tests: str) -> list[str]:
    """Top-level `def test_*` functions of a tests source, in definition order."""
    return [
        node.name
        for node in ast.parse(tests).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    ]


@dataclass
class CodeGrade:
    passed: bool
    failure_category: Optional[str]
    tests_passed: int
    tests_total: int
    stderr_tail: str

    def fields(self) -> dict:
        return {"passed": self.passed, "failure_category": self.failure_category,
                "tests_passed": self.tests_passed, "tests_total": self.tests_total,
                "stderr_tail": self.stderr_tail}


class _Budget:
    """The seconds a task has left across its cells."""

    def __init__(self, seconds: float):
        self.left = seconds

    def spend(self, result) -> None:
        self.left -= result.duration


def _tail(parts: list[str], chars: int) -> str:
    text = "\n".join(p.strip("\n") for p in parts if p and p.strip())
    return text[-chars:] if chars > 0 else ""


def _markers(stdout: str, marker: str) -> list[tuple[str, bool]]:
    out = []
    for line in stdout.splitlines():
        if line.startswith(marker + " "):
            _, name, verdict = line.split(" ", 2)
            out.append((name, verdict == "ok"))
    return out


def _runner_results(result) -> Optional[list[dict]]:
    if result.status != "ok" or result.result is None:
        return None
    try:
        return json.loads(ast.literal_eval(result.result))
    except (ValueError, SyntaxError, TypeError):
        return None  # the report was cut by the output cap; the markers still count


async def _execute(client, code: str, session_id: str, budget: _Budget, retries: int = 5):
    """One cell within the task's budget; a full sandbox (HTTP 503) is waited out, briefly."""
    from assay.sandbox.client import SandboxHTTPError

    for attempt in range(retries + 1):
        try:
            result = await client.execute(code, session_id=session_id, timeout=max(budget.left, 0.1),
                                          max_output_chars=MAX_OUTPUT_CHARS)
            budget.spend(result)
            return result
        except SandboxHTTPError as exc:
            if exc.status_code != 503 or attempt == retries:
                raise
            await asyncio.sleep(0.5 * 2**attempt)


async def run_code_sample(client, code: str, tests: str, entry_point: Optional[str], time_limit: float,
                          prelude: Optional[str] = None, tail_chars: int = 2000) -> CodeGrade:
    """Grade one extracted answer in its own fresh sandbox session."""
    names = collect_test_names(tests)
    total = len(names)
    session_id = f"grade-{uuid.uuid4().hex}"
    budget = _Budget(time_limit)

    def fail(category: str, parts: list[str], passed: int = 0) -> CodeGrade:
        return CodeGrade(False, category, passed, total, _tail(parts, tail_chars))

    def timed_out(result, what: str, passed: int = 0) -> CodeGrade:
        note = f"{what} ran past the task's time limit of {time_limit:g} s"
        return fail("timeout", [result.stderr, note], passed)

    try:
        if prelude:  # diagnostic only; its time is not charged to the task
            result = await _execute(client, prelude, session_id, _Budget(PRELUDE_TIME_LIMIT))
            if result.status != "ok":
                return fail("runtime_error", [result.stderr, error_text(result.error)])
        answer = await _execute(client, code, session_id, budget)
        if answer.status == "timeout":
            return timed_out(answer, "the answer")
        if answer.status != "ok":
            return fail(classify_error(answer.error, in_answer=True), [answer.stderr, error_text(answer.error)])
        if entry_point:
            check = await _execute(client, f"{entry_point.split('.')[0]!r} in globals()", session_id, budget)
            if check.status == "timeout":
                return timed_out(check, "the entry point check")
            if check.result != "True":
                return fail("missing_symbol", [answer.stderr, f"the answer does not define '{entry_point}'"])
        loaded = await _execute(client, tests, session_id, budget)
        if loaded.status == "timeout":
            return timed_out(loaded, "loading the tests")
        if loaded.status != "ok":
            return fail(classify_error(loaded.error, in_answer=False), [loaded.stderr, error_text(loaded.error)])
        marker = f"@@assay-test-{uuid.uuid4().hex}"
        run = await _execute(client, _RUNNER % {"names": names, "marker": marker}, session_id, budget)
        if run.status == "timeout":
            passed = sum(ok for _, ok in _markers(run.stdout, marker))
            return timed_out(run, "the tests", passed)
        results = _runner_results(run)
        if results is None:
            if run.status != "ok":
                return fail("runtime_error", [run.stderr, error_text(run.error)])
            results = [{"name": n, "ok": ok, "ename": "", "evalue": "", "traceback": ""}
                       for n, ok in _markers(run.stdout, marker)]
        passed = sum(r["ok"] for r in results)
        failures = [r for r in results if not r["ok"]]
        if not failures and passed == total:
            return CodeGrade(True, None, passed, total, _tail([run.stderr], tail_chars))
        if not failures:  # fewer results than tests: the report was cut short
            return fail("runtime_error", [run.stderr, f"only {len(results)} of {total} tests reported"], passed)
        categories = [classify_error(r, in_answer=False) for r in failures]
        category = worst_category(categories)
        shown = failures[categories.index(category)]  # the failure that decided the category
        detail = f"{shown['name']} failed:\n{shown.get('traceback') or error_text(shown)}"
        return fail(category, [run.stderr, detail], passed)
    finally:
        try:
            await client.delete_session(session_id)
        except Exception:  # noqa: BLE001 - the session expires on its own; grading goes on
            pass


def code_answer(line: dict, generation_key: str = "generation") -> Optional[str]:
    """The extracted code of a line (None when there is none)."""
    return extract_code(line.get(generation_key), line.get("entry_point"))


async def grade_code_line(client, line: dict, time_limit: float, generation_key: str = "generation",
                          inject_imports: bool = False, tail_chars: int = 2000) -> dict:
    """The line with the official grading fields, and `diagnostics` when asked for and it failed."""
    if "tests" not in line:
        raise ValueError("a code line needs 'tests' (Python source with top-level test_* functions)")
    code = code_answer(line, generation_key)
    if code is None:
        grade = CodeGrade(False, "no_code", 0, len(collect_test_names(line["tests"])), "")
    else:
        grade = await run_code_sample(client, code, line["tests"], line.get("entry_point"), time_limit,
                                      tail_chars=tail_chars)
    out = {k: v for k, v in line.items() if k != "diagnostics"}
    out.update(grade.fields())
    out["extracted_code"] = code
    if inject_imports and not grade.passed and grade.failure_category not in ("no_code", "syntax_error"):
        again = await run_code_sample(client, code, line["tests"], line.get("entry_point"), time_limit,
                                      prelude=DIAGNOSTIC_IMPORTS, tail_chars=tail_chars)
        out["diagnostics"] = {"inject_imports": {
            "passed": again.passed, "failure_category": again.failure_category,
            "tests_passed": again.tests_passed, "tests_total": again.tests_total,
        }}
    return out


async def grade_code_lines(lines: list[dict], sandbox_url: Optional[str] = None, time_limit: float = 20.0,
                           max_concurrent: int = 4, generation_key: str = "generation",
                           inject_imports: bool = False, tail_chars: int = 2000,
                           wait_for_sandbox: float = 60.0) -> list[dict]:
    """Grade many lines, `max_concurrent` sessions at a time, in input order."""
    from assay.sandbox.client import AsyncSandboxClient

    semaphore = asyncio.Semaphore(max_concurrent)
    async with AsyncSandboxClient(sandbox_url) as client:
        await client.wait_until_healthy(wait_for_sandbox)

        async def one(line: dict) -> dict:
            async with semaphore:
                return await grade_code_line(client, line, time_limit, generation_key, inject_imports, tail_chars)

        return list(await asyncio.gather(*(one(line) for line in lines)))
