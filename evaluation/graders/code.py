"""`code`: the extracted code run against the task's hidden tests in a fresh sandbox process (grade_code.py).
Sets `passed`, `failure_category`, `extracted_code`, `tests_passed`, `tests_total`, `stderr_tail`."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any, Iterator, Optional, Sequence

from ..code_taxonomy import FAILURE_CATEGORIES
from ..grade_code import grade_code_lines
from . import GRADERS, GradeLines, Grader


@GRADERS.register("code")
class CodeGrader(Grader):
    name = "code"
    correct_key = "passed"
    required_fields = ("tests",)
    needs_sandbox = True

    @contextlib.contextmanager
    def session(self, cfg) -> Iterator[GradeLines]:
        def grade(lines: list[dict]) -> list[dict]:
            return asyncio.run(
                grade_code_lines(
                    lines,
                    sandbox_url=cfg.sandbox_url,
                    time_limit=cfg.code.time_limit,
                    max_concurrent=cfg.code.max_concurrent,
                    generation_key=cfg.generation_key,
                    inject_imports=cfg.diagnostics.inject_imports,
                    tail_chars=cfg.code.stderr_tail_chars,
                    wait_for_sandbox=cfg.code.sandbox_wait,
                )
            )

        yield grade

    def answer(self, line: dict) -> Optional[str]:
        return None if line.get("failure_category") == "no_code" else line.get("extracted_code")

    def report(self, graded: Sequence[dict]) -> str:
        text = super().report(graded)
        failures = Counter(line["failure_category"] for line in graded if line.get("failure_category"))
        if failures:
            text += "; failures: " + ", ".join(f"{n} {c}" for c, n in failures.most_common())
        diagnosed = [line["diagnostics"]["inject_imports"] for line in graded if "diagnostics" in line]
        if diagnosed:
            rescued = sum(bool(d["passed"]) for d in diagnosed)
            text += f"; diagnostic: {rescued} of {len(diagnosed)} failed would pass with common imports"
        return text

    def extra_metrics(self, seeds: Sequence[Sequence[dict]]) -> dict[str, Any]:
        extra: dict[str, Any] = {"failure_categories": failure_counts(seeds)}
        diagnostics = import_diagnostics(seeds)
        if diagnostics:
            extra["diagnostics"] = diagnostics
        return extra


def failure_counts(seeds: Sequence[Sequence[dict]]) -> dict:
    """How many samples (all seeds) failed in each category, and how many passed."""
    counts = Counter(line.get("failure_category") for lines in seeds for line in lines if not line.get("passed"))
    out = {category: counts.get(category, 0) for category in FAILURE_CATEGORIES}
    out["passed"] = sum(bool(line.get("passed")) for lines in seeds for line in lines)
    out["total"] = sum(len(lines) for lines in seeds)
    return out


def import_diagnostics(seeds: Sequence[Sequence[dict]]) -> Optional[dict]:
    """What the opt-in import injection found, or None when it did not run."""
    regraded = [
        line["diagnostics"]["inject_imports"]
        for lines in seeds
        for line in lines
        if isinstance(line.get("diagnostics"), dict) and "inject_imports" in line["diagnostics"]
    ]
    if not regraded:
        return None
    total = sum(len(lines) for lines in seeds)
    passed = sum(bool(line.get("passed")) for lines in seeds for line in lines)
    would_pass = sum(bool(d.get("passed")) for d in regraded)
    return {
        "inject_imports": {
            "regraded": len(regraded),
            "would_pass": would_pass,
            "passed_official": 100.0 * passed / total if total else 0.0,
            "passed_with_imports": 100.0 * (passed + would_pass) / total if total else 0.0,
        }
    }
