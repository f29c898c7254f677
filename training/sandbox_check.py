"""The optional execution check of SFT code targets: run each one in the sandbox, as the grader would.

The static checks (code_checks.py) catch code that does not parse or forgets an import; running the
code catches the rest (an import of a module that does not exist, an error at definition time, the
line's own `tests` failing when it has some). Each example runs in a fresh sandbox session through
the code grader's `run_code_sample`, so "passes here" means what "passes" means at evaluation.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .prepare_data import Candidate, PrepareDataConfig


async def _run_all(candidates: list["Candidate"], cfg: "PrepareDataConfig") -> dict[int, dict]:
    from ..evaluation.grade_code import run_code_sample
    from ..sandbox.client import AsyncSandboxClient

    semaphore = asyncio.Semaphore(cfg.sandbox_concurrency)
    failures: dict[int, dict] = {}
    async with AsyncSandboxClient(cfg.sandbox_url) as client:
        await client.wait_until_healthy(60)

        async def one(candidate: "Candidate") -> None:
            assert candidate.code is not None  # sandbox checks run on code targets, whose code check_code set
            tests = candidate.line.get("tests") or ""
            async with semaphore:
                grade = await run_code_sample(
                    client,
                    candidate.code,
                    tests,
                    candidate.line.get(cfg.entry_point_key),
                    cfg.sandbox_time_limit,
                    tail_chars=500,
                )
            if not grade.passed:
                failures[candidate.index] = {
                    "failure_category": grade.failure_category,
                    "tests_passed": grade.tests_passed,
                    "tests_total": grade.tests_total,
                    "stderr_tail": grade.stderr_tail,
                }

        await asyncio.gather(*(one(c) for c in candidates))
    return failures


def sandbox_failures(candidates: list["Candidate"], cfg: "PrepareDataConfig") -> dict[int, dict]:
    """{input index: why} for every candidate whose code (or tests) failed in the sandbox."""
    return asyncio.run(_run_all(candidates, cfg))
