"""aime25: the 30 problems of AIME 2025 (parts I and II), downloaded from their public source by
`assay prepare_data aime25` (offline: `--data_file=` a local copy, in assay's fields or the upstream
`question`/`answer` lines). Fields: id, problem, expected_answer."""

from __future__ import annotations

from ..registry import BENCHMARKS, Benchmark, fetch_jsonl

SOURCE_URLS = (
    "https://huggingface.co/datasets/opencompass/AIME2025/resolve/main/aime2025-I.jsonl",
    "https://huggingface.co/datasets/opencompass/AIME2025/resolve/main/aime2025-II.jsonl",
)


def download() -> list[dict]:
    return [row for url in SOURCE_URLS for row in fetch_jsonl(url)]


def from_upstream(row: dict, index: int) -> dict:
    return {"id": f"aime25-{index}", "problem": row["question"], "expected_answer": str(row["answer"])}


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
        from_upstream=from_upstream,
    ),
)
