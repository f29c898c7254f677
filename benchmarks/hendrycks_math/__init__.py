"""hendrycks_math: the 5,000 problems of the MATH test set (Hendrycks et al.).

Two upstream formats are read: the original one, `{"problem", "level", "type", "solution"}`, whose expected
answer is the last `\\boxed{}` of the solution, and the one with the answer already split out (`"answer"`,
as in the Qwen2.5-Math evaluation data that the download uses). Fields: id, problem, expected_answer.
"""

from __future__ import annotations

from functools import partial

from ...evaluation.extract_math import last_boxed
from ..registry import BENCHMARKS, Benchmark, fetch_jsonl

SOURCE_URL = "https://raw.githubusercontent.com/QwenLM/Qwen2.5-Math/main/evaluation/data/math/test.jsonl"


def from_upstream(row: dict, index: int) -> dict:
    solution = row.get("solution", "")
    answer = row.get("answer")
    if answer is None:
        answer = last_boxed(solution)
    if answer is None:
        raise ValueError("neither an 'answer' nor a \\boxed{} answer in the solution")
    return {
        "id": str(row.get("unique_id") or f"hendrycks_math-{index}"),
        "problem": row["problem"],
        "expected_answer": str(answer),
        "reference_solution": solution,
        "subject": row.get("subject") or row.get("type"),
        "level": row.get("level"),
    }


BENCHMARKS.add(
    "hendrycks_math",
    Benchmark(
        name="hendrycks_math",
        grader="math",
        prompt_config="generic/math",
        tokens_to_generate=4096,
        required_fields=("problem", "expected_answer"),
        description="MATH test set, 5,000 competition problems (downloaded, or --data_file)",
        download=partial(fetch_jsonl, SOURCE_URL),
        from_upstream=from_upstream,
    ),
)
