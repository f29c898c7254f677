"""aime24: the 30 problems of AIME 2024, downloaded from their public source by `assay prepare_data aime24`
(offline: `--data_file=` a local copy). Fields: id, problem, expected_answer."""

from __future__ import annotations

import json

from ..registry import BENCHMARKS, Benchmark, fetch

SOURCE_URL = (
    "https://datasets-server.huggingface.co/rows?dataset=HuggingFaceH4%2Faime_2024"
    "&config=default&split=train&offset=0&length=100"
)


def download() -> list[dict]:
    rows = json.loads(fetch(SOURCE_URL))["rows"]
    return [
        {"id": f"aime24-{i}", "problem": r["row"]["problem"], "expected_answer": str(r["row"]["answer"])}
        for i, r in enumerate(rows)
    ]


BENCHMARKS.add(
    "aime24",
    Benchmark(
        name="aime24",
        grader="math",
        prompt_config="generic/math",
        tokens_to_generate=16384,
        required_fields=("problem", "expected_answer"),
        description="AIME 2024, 30 problems (downloaded from its public source, or --data_file)",
        download=download,
    ),
)
