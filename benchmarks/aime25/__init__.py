"""aime25: the 30 problems of AIME 2025 (parts I and II), downloaded from their public source by
`assay prepare_data aime25` (offline: `--data_file=` a local copy). Fields: id, problem, expected_answer."""

from __future__ import annotations

import json

from ..registry import BENCHMARKS, Benchmark, fetch

SOURCE_URLS = (
    "https://huggingface.co/datasets/opencompass/AIME2025/resolve/main/aime2025-I.jsonl",
    "https://huggingface.co/datasets/opencompass/AIME2025/resolve/main/aime2025-II.jsonl",
)


def download() -> list[dict]:
    lines = []
    for url in SOURCE_URLS:
        lines += [json.loads(x) for x in fetch(url).decode().splitlines() if x.strip()]
    return [
        {"id": f"aime25-{i}", "problem": x["question"], "expected_answer": str(x["answer"])}
        for i, x in enumerate(lines)
    ]


BENCHMARKS.add(
    "aime25",
    Benchmark(
        name="aime25",
        grader="math",
        prompt_config="generic/math",
        tokens_to_generate=16384,
        required_fields=("problem", "expected_answer"),
        description="AIME 2025, 30 problems (downloaded from its public source, or --data_file)",
        download=download,
    ),
)
