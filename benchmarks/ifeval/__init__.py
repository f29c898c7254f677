"""ifeval: IFEval, 541 prompts with verifiable instructions ("answer in fewer than 300 words", "wrap the whole
response in double quotes"; Zhou et al., 2023), graded by the `ifeval` grader.

Upstream rows (the Hub's `google/IFEval`, or the `input_data.jsonl` of Google's release) give `key`,
`prompt`, `instruction_id_list` and `kwargs`, one argument dict per instruction; the Hub's copy fills every
argument any instruction takes with null, which is dropped here. The prompt is sent as it is.
Fields: id, question (the prompt), instruction_id_list, kwargs.
"""

from __future__ import annotations

from functools import partial

from ..hub import hub_rows
from ..registry import BENCHMARKS, Benchmark


def from_upstream(row: dict, index: int) -> dict:
    ids = [str(i) for i in row["instruction_id_list"]]
    kwargs = row.get("kwargs") or [{} for _ in ids]
    if len(kwargs) != len(ids):
        raise ValueError(f"{len(ids)} instructions but {len(kwargs)} kwargs")
    return {
        "id": f"ifeval-{row.get('key', index)}",
        "question": str(row["prompt"]),
        "instruction_id_list": ids,
        "kwargs": [{k: v for k, v in (args or {}).items() if v is not None} for args in kwargs],
    }


BENCHMARKS.add(
    "ifeval",
    Benchmark(
        name="ifeval",
        grader="ifeval",
        prompt_config="generic/default",
        tokens_to_generate=2048,
        required_fields=("question", "instruction_id_list", "kwargs"),
        description="IFEval, 541 prompts with verifiable instructions, strict and loose accuracy (Hub, or --data_file)",
        download=partial(hub_rows, "google/IFEval", "train"),
        from_upstream=from_upstream,
    ),
)
