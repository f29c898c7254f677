"""math-500: the 500 MATH test problems of PRM800K's split, from OpenAI's prm800k repository.

Upstream lines are `{"problem", "solution", "answer", "subject", "level", "unique_id"}`; the answer is the
expected answer, the solution is kept as `reference_solution`, and the subject and level stay for slicing
results. Fields: id, problem, expected_answer.
"""

from __future__ import annotations

from functools import partial

from ..registry import BENCHMARKS, Benchmark, fetch_jsonl

SOURCE_URL = "https://raw.githubusercontent.com/openai/prm800k/main/prm800k/math_splits/test.jsonl"


def from_upstream(row: dict, index: int) -> dict:
    return {
        "id": str(row.get("unique_id") or f"math-500-{index}"),
        "problem": row["problem"],
        "expected_answer": str(row["answer"]),
        "reference_solution": row.get("solution", ""),
        "subject": row.get("subject"),
        "level": row.get("level"),
    }


BENCHMARKS.add(
    "math-500",
    Benchmark(
        name="math-500",
        grader="math",
        prompt_config="generic/math",
        tokens_to_generate=4096,
        required_fields=("problem", "expected_answer"),
        description="MATH-500 (PRM800K's test split of MATH), 500 problems (downloaded, or --data_file)",
        download=partial(fetch_jsonl, SOURCE_URL),
        from_upstream=from_upstream,
    ),
)
