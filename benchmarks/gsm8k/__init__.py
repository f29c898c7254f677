"""gsm8k: the 1,319 grade-school word problems of GSM8K's test split, from OpenAI's grade-school-math repository.

Upstream lines are `{"question", "answer"}`, where the answer is a worked solution ending in `#### <number>`.
The number after `####` (thousands commas removed) is the expected answer; the worked solution, without its
`<<48/2=24>>` calculator annotations, is kept as `reference_solution`. Fields: id, problem, expected_answer.
"""

from __future__ import annotations

import re
from functools import partial

from ..registry import BENCHMARKS, Benchmark, fetch_jsonl

SOURCE_URL = "https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/test.jsonl"
_CALCULATOR = re.compile(r"<<[^>]*>>")


def from_upstream(row: dict, index: int) -> dict:
    solution, separator, answer = row["answer"].rpartition("####")
    if not separator:
        raise ValueError("the answer has no '#### <number>' line")
    return {
        "id": f"gsm8k-{index}",
        "problem": row["question"],
        "expected_answer": answer.strip().replace(",", ""),
        "reference_solution": _CALCULATOR.sub("", solution).strip(),
    }


BENCHMARKS.add(
    "gsm8k",
    Benchmark(
        name="gsm8k",
        grader="math",
        prompt_config="generic/math",
        tokens_to_generate=2048,
        required_fields=("problem", "expected_answer"),
        description="GSM8K test split, 1,319 grade-school word problems (downloaded, or --data_file)",
        download=partial(fetch_jsonl, SOURCE_URL),
        from_upstream=from_upstream,
    ),
)
