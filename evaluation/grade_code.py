"""Code grading: the sandbox runs the extracted answer against the line's hidden tests, and decides.

One sample, one `POST /grade` to the sandbox: a fresh, isolated process loads the tests, then the
answer as its own module `solution`, then runs each top-level `def test_*` of the tests in source
order, with assertions that an answer's objects cannot satisfy by claiming equality. The verdict
is decided by the sandbox outside that process, from results only its sentry can sign. What an
answer can and cannot do is written in evaluation/README.md ("What an answer can do").

- Nothing is prepended to the answer, so a forgotten import fails the way it would for a user, and
  the tests' own imports never satisfy the answer's names.
- The answer must define the entry point (its first dotted part), or the sample is `missing_symbol`.
- The task's time limit (`time_limit`, default 20 s) covers the answer and all its tests; waiting
  for a free sandbox process is not charged to it. A timeout keeps the tests that passed before it.
- A task with no test functions, or tests that do not load, is `data_error`: never a pass.
- A sandbox that cannot be reached (after retries with backoff) makes that line `sandbox_error`,
  with the reason in `stderr_tail`; the other lines are graded.

A line with `cases` (a list of {input, output}) instead of `tests` is a program (competitive-programming
problems: LiveCodeBench's stdin tasks): the sandbox runs it once per case, in a fresh process each, with
the case's input on stdin, and compares its output with the case's output outside that process
(sandbox/program_output.py: line by line, numbers by value). `time_limit` is then per case; the cases run
in order and stop at the first failure, so `tests_passed` counts the cases passed before it, and a wrong
output is `wrong_answer`.

The category rules are in code_taxonomy.py. Fields added to each line: `passed` (every test passed
and nothing failed before), `failure_category` (null when passed), `extracted_code`,
`tests_passed`, `tests_total`, `stderr_tail`.

The opt-in diagnostic (`inject_imports=True`) grades each failed sample again with DIAGNOSTIC_IMPORTS
put before its code, and stores what happened under `diagnostics.inject_imports`. It never changes
the official fields: it answers "how many failures are only a missing import?".
"""

from __future__ import annotations

import ast
import asyncio
from dataclasses import dataclass
from typing import Callable, Optional

from .code_taxonomy import classify_error, error_text, worst_category
from .extract_code import extract_code

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

MAX_OUTPUT_CHARS = 60000


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
        return {
            "passed": self.passed,
            "failure_category": self.failure_category,
            "tests_passed": self.tests_passed,
            "tests_total": self.tests_total,
            "stderr_tail": self.stderr_tail,
        }


def _tail(parts: list[str], chars: int) -> str:
    text = "\n".join(p.strip("\n") for p in parts if p and p.strip())
    return text[-chars:] if chars > 0 else ""


def _answer_failure(
    verdict: dict, fail: Callable[..., CodeGrade], total: int, output: list[str], tail_chars: int, where: str = ""
) -> Optional[CodeGrade]:
    """The categories the answer earns before any test or case counts: a syntax error, tampering (which scores
    0 tests passed), or an error raised by the answer itself; None when there is none of them."""
    if verdict.get("answer_syntax_error"):
        return fail("syntax_error", verdict["answer_syntax_error"])
    if verdict.get("tampering"):
        return CodeGrade(
            False, "tampering", 0, total, _tail(output + [f"tampering: {verdict['tampering']}"], tail_chars)
        )
    if verdict.get("answer_error"):
        error = verdict["answer_error"]
        return fail(classify_error(error, in_answer=True), where + error_text(error))
    return None


def grade_from_verdict(
    verdict: dict, total: int, tail_chars: int = 2000, entry_point: Optional[str] = None
) -> CodeGrade:
    """The category of one sandbox verdict (POST /grade), by the rules of code_taxonomy.py."""
    output = [verdict.get("stderr") or ""]
    passed = int(verdict.get("tests_passed") or 0)

    def fail(category: str, *parts: str) -> CodeGrade:
        return CodeGrade(False, category, passed, total, _tail(output + list(parts), tail_chars))

    if verdict.get("tests_error"):
        return fail("data_error", verdict["tests_error"])
    early = _answer_failure(verdict, fail, total, output, tail_chars)
    if early is not None:
        return early
    status = verdict.get("status")
    if status == "killed" and verdict.get("defines_entry_point") is None:
        return fail("runtime_error", verdict.get("reason") or "the answer's process was killed")
    if verdict.get("defines_entry_point") is False:
        return fail("missing_symbol", f"the answer does not define '{entry_point}'")
    if status == "timeout":
        return fail("timeout", verdict.get("reason") or "the task ran past its time limit")
    failures = [t for t in verdict.get("tests", []) if not t.get("ok")]
    if status == "killed":
        return fail("runtime_error", verdict.get("reason") or "the answer's process was killed")
    if verdict.get("passed") and not failures and passed == total and total > 0:
        return CodeGrade(True, None, passed, total, _tail(output, tail_chars))
    reported = [t for t in failures if t.get("error")]
    if not reported:
        return fail("runtime_error", f"only {passed} of {total} tests reported a pass")
    categories = [classify_error(t["error"], in_answer=False) for t in reported]
    category = worst_category(categories)
    assert category is not None  # `reported` is not empty, so neither is `categories`
    shown = reported[categories.index(category)]  # the failure that decided the category
    return fail(category, f"{shown['name']} failed:\n{error_text(shown['error'])}")


async def run_code_sample(
    client, code: str, tests: str, entry_point: Optional[str], time_limit: float, tail_chars: int = 2000
) -> CodeGrade:
    """Grade one extracted answer in a fresh sandbox process; a sandbox failure is `sandbox_error`."""
    from ..sandbox.client import SandboxHTTPError

    try:
        total = len(collect_test_names(tests))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return CodeGrade(False, "data_error", 0, 0, f"the tests do not parse: {type(exc).__name__}: {exc}")
    try:
        verdict = await client.grade(code, tests, entry_point, timeout=time_limit, max_output_chars=MAX_OUTPUT_CHARS)
    except (SandboxHTTPError, OSError, RuntimeError, ValueError) as exc:
        return CodeGrade(False, "sandbox_error", 0, total, f"the sandbox could not grade this sample: {exc}")
    except Exception as exc:  # noqa: BLE001 - httpx transport errors and the like: this line only
        return CodeGrade(
            False, "sandbox_error", 0, total, f"the sandbox could not grade this sample: {type(exc).__name__}: {exc}"
        )
    return grade_from_verdict(verdict, total, tail_chars, entry_point)


def grade_from_program_verdict(verdict: dict, tail_chars: int = 2000) -> CodeGrade:
    """The category of one program verdict (POST /grade_program), by the rules of code_taxonomy.py."""
    passed, total = int(verdict.get("cases_passed") or 0), int(verdict.get("cases_total") or 0)
    output = [verdict.get("stderr") or ""]

    def fail(category: str, *parts: str) -> CodeGrade:
        return CodeGrade(False, category, passed, total, _tail(output + list(parts), tail_chars))

    case = f"case {verdict.get('failed_case')}"
    early = _answer_failure(verdict, fail, total, output, tail_chars, where=f"{case}:\n")
    if early is not None:
        return early
    if verdict.get("status") == "timeout":
        return fail("timeout", f"{case}: {verdict.get('reason') or 'the program ran past its time limit'}")
    if verdict.get("status") == "killed":
        return fail("runtime_error", f"{case}: {verdict.get('reason') or 'the program was killed'}")
    if verdict.get("wrong_output"):
        return fail("wrong_answer", f"{case}: {verdict['wrong_output']}")
    if verdict.get("passed") and passed == total and total > 0:
        return CodeGrade(True, None, passed, total, _tail(output, tail_chars))
    return fail("runtime_error", f"only {passed} of {total} cases reported a pass")


def program_cases(line: dict) -> list[tuple[str, str]]:
    """A program line's (input, expected output) pairs; ValueError names what is wrong with them."""
    cases = line.get("cases")
    if not isinstance(cases, list) or not cases:
        raise ValueError("'cases' must be a non-empty list of {input, output}")
    pairs = []
    for number, case in enumerate(cases):
        if not (isinstance(case, dict) and isinstance(case.get("input"), str) and isinstance(case.get("output"), str)):
            raise ValueError(f"cases[{number}] must be {{input: str, output: str}}")
        pairs.append((case["input"], case["output"]))
    return pairs


async def run_program_sample(client, code: str, line: dict, time_limit: float, tail_chars: int = 2000) -> CodeGrade:
    """Grade one extracted program on the line's cases; a sandbox failure is `sandbox_error`."""
    from ..sandbox.client import SandboxHTTPError

    try:
        cases = program_cases(line)
    except ValueError as exc:
        return CodeGrade(False, "data_error", 0, 0, f"the task's cases cannot be run: {exc}")
    try:
        verdict = await client.grade_program(code, cases, timeout=time_limit)
    except Exception as exc:  # noqa: BLE001 - httpx transport errors and the like: this line only
        reason = str(exc) if isinstance(exc, (SandboxHTTPError, OSError)) else f"{type(exc).__name__}: {exc}"
        return CodeGrade(False, "sandbox_error", 0, len(cases), f"the sandbox could not grade this sample: {reason}")
    return grade_from_program_verdict(verdict, tail_chars)


def code_answer(line: dict, generation_key: str = "generation") -> Optional[str]:
    """The program graded for a line: its `code_prefix` (benchmark data, e.g. HumanEval's prompt, which its
    protocol runs before the completion), then the extracted code; None when the model gave no code."""
    code = extract_code(line.get(generation_key), line.get("entry_point"))
    prefix = line.get("code_prefix")
    if code is None or not isinstance(prefix, str) or not prefix:
        return code
    return prefix.rstrip("\n") + "\n\n\n" + code


async def grade_code_line(
    client,
    line: dict,
    time_limit: float,
    generation_key: str = "generation",
    inject_imports: bool = False,
    tail_chars: int = 2000,
) -> dict:
    """The line with the official grading fields, and `diagnostics` when asked for and it failed."""
    if "tests" not in line and "cases" not in line:
        raise ValueError(
            "a code line needs 'tests' (Python source with top-level test_* functions) or 'cases' (a program's "
            "inputs and expected outputs)"
        )
    code = code_answer(line, generation_key)
    program = "tests" not in line
    if code is None:
        try:
            total = len(line["cases"]) if program else len(collect_test_names(line["tests"]))
        except (SyntaxError, ValueError, RecursionError, MemoryError, TypeError):
            total = 0
        grade = CodeGrade(False, "no_code", 0, total, "")
    elif program:
        grade = await run_program_sample(client, code, line, time_limit, tail_chars)
    else:
        grade = await run_code_sample(
            client, code, line["tests"], line.get("entry_point"), time_limit, tail_chars=tail_chars
        )
    out = {k: v for k, v in line.items() if k != "diagnostics"}
    out.update(grade.fields())
    out["extracted_code"] = code
    if (
        inject_imports
        and not program
        and not grade.passed
        and grade.failure_category not in ("no_code", "syntax_error")
    ):
        assert code is not None  # a line without code was graded no_code
        again = await run_code_sample(
            client, DIAGNOSTIC_IMPORTS + code, line["tests"], line.get("entry_point"), time_limit, tail_chars=tail_chars
        )
        out["diagnostics"] = {
            "inject_imports": {
                "passed": again.passed,
                "failure_category": again.failure_category,
                "tests_passed": again.tests_passed,
                "tests_total": again.tests_total,
            }
        }
    return out


async def grade_code_lines(
    lines: list[dict],
    sandbox_url: Optional[str] = None,
    time_limit: float = 20.0,
    max_concurrent: int = 4,
    generation_key: str = "generation",
    inject_imports: bool = False,
    tail_chars: int = 2000,
    wait_for_sandbox: float = 60.0,
) -> list[dict]:
    """Grade many lines, `max_concurrent` sessions at a time, in input order."""
    from ..sandbox.client import AsyncSandboxClient

    semaphore = asyncio.Semaphore(max_concurrent)
    async with AsyncSandboxClient(sandbox_url) as client:
        await client.wait_until_healthy(wait_for_sandbox)

        async def one(line: dict) -> dict:
            async with semaphore:
                try:
                    return await grade_code_line(client, line, time_limit, generation_key, inject_imports, tail_chars)
                except ValueError:
                    raise  # a line without tests: the file is not a code benchmark's
                except Exception as exc:  # noqa: BLE001 - one line that cannot be graded never stops the others
                    out = dict(line)
                    out.update(
                        CodeGrade(
                            False, "sandbox_error", 0, 0, f"grading failed: {type(exc).__name__}: {exc}"[-tail_chars:]
                        ).fields()
                    )
                    out["extracted_code"] = None
                    return out

        return list(await asyncio.gather(*(one(line) for line in lines)))
