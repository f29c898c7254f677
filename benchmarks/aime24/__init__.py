"""aime24: the 30 problems of AIME 2024, downloaded from the Hub's `HuggingFaceH4/aime_2024` by `assay prepare_data
aime24` (offline: `--data_file=` a local copy, in assay's fields or the upstream `problem`/`answer` rows).
Fields: id, problem, expected_answer."""

from __future__ import annotations

from functools import partial

from ..hub import hub_rows
from ..registry import BENCHMARKS, Benchmark


def from_upstream(row: dict, index: int) -> dict:
    return {"id": f"aime24-{index}", "problem": row["problem"], "expected_answer": str(row["answer"])}


BENCHMARKS.add(
    "aime24",
    Benchmark(
        name="aime24",
        grader="math",
        prompt_config="generic/math",
        tokens_to_generate=16384,
        required_fields=("problem", "expected_answer"),
        description="AIME 2024, 30 problems (downloaded from its public source, or --data_file)",
        download=partial(hub_rows, "HuggingFaceH4/aime_2024", "train"),
        from_upstream=from_upstream,
    ),
)
