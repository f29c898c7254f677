"""smallmath: 24 short arithmetic and word problems with integer answers, written for assay.

Small enough for the embedded 135M model on a CPU to be evaluated in minutes, and easy enough that
its score is above zero, so the whole evaluation path (generation, extraction, grading, metrics) is
exercised with real, varying outcomes. Fields: id, problem, expected_answer.
"""

from __future__ import annotations

from ..registry import BENCHMARKS, Benchmark

BENCHMARKS.add(
    "smallmath",
    Benchmark(
        name="smallmath",
        grader="math",
        prompt_config="generic/math",
        tokens_to_generate=512,
        required_fields=("problem", "expected_answer"),
        description="24 arithmetic and word problems with integer answers (shipped; for CPU runs and tests)",
        shipped_file="smallmath/smallmath.jsonl",
    ),
)
