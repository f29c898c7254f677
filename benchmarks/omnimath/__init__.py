"""omni-math: Omni-MATH's 4,428 olympiad-level problems (Gao et al.), graded by an LLM judge.

Its answers are often expressions, sets or statements that rules compare badly, which is why its authors grade
with a judge model; assay's judge grader does the same (`eval(..., judge_model=...)`, evaluation/graders/judge.py).
Upstream rows (the Hub's `KbsdJames/Omni-MATH`, split `test`) carry `domain`, `difficulty`, `problem`, `solution`,
`answer`, `source`. Fields: id, problem, expected_answer, and the upstream's difficulty, domain and source.
"""

from __future__ import annotations

from functools import partial

from ..hub import hub_rows
from ..registry import BENCHMARKS, Benchmark


def from_upstream(row: dict, index: int) -> dict:
    return {
        "id": f"omni-math-{index}",
        "problem": row["problem"],
        "expected_answer": str(row["answer"]),
        "reference_solution": row.get("solution", ""),
        "difficulty": row.get("difficulty"),
        "domain": row.get("domain"),
        "source": row.get("source"),
    }


BENCHMARKS.add(
    "omni-math",
    Benchmark(
        name="omni-math",
        grader="judge",
        prompt_config="generic/math",
        tokens_to_generate=16384,
        required_fields=("problem", "expected_answer"),
        description="Omni-MATH, 4,428 olympiad problems graded by an LLM judge (Hub, or --data_file; needs judge_model)",
        download=partial(hub_rows, "KbsdJames/Omni-MATH", "test"),
        from_upstream=from_upstream,
    ),
)
