"""amc23: the 40 problems of AMC 2023 with integer answers, as the Qwen2.5-Math evaluation data has them.

Upstream lines are `{"id", "question", "answer", "url"}` with a numeric answer (`27.0` becomes `27`).
Fields: id, problem, expected_answer.
"""

from __future__ import annotations

from functools import partial

from ..registry import BENCHMARKS, Benchmark, fetch_jsonl

SOURCE_URL = "https://raw.githubusercontent.com/QwenLM/Qwen2.5-Math/main/evaluation/data/amc23/test.jsonl"


def number_text(value: object) -> str:
    """An answer as text: a float that is a whole number loses its `.0`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def from_upstream(row: dict, index: int) -> dict:
    return {
        "id": f"amc23-{row.get('id', index)}",
        "problem": row["problem"] if "problem" in row else row["question"],
        "expected_answer": number_text(row["answer"]),
        "url": row.get("url"),
    }


BENCHMARKS.add(
    "amc23",
    Benchmark(
        name="amc23",
        grader="math",
        prompt_config="generic/math",
        tokens_to_generate=16384,
        required_fields=("problem", "expected_answer"),
        description="AMC 2023, 40 problems (downloaded, or --data_file)",
        download=partial(fetch_jsonl, SOURCE_URL),
        from_upstream=from_upstream,
    ),
)
