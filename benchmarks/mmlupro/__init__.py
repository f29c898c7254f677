"""mmlu-pro: MMLU-Pro's test split, 12,032 questions with up to ten options over 14 subjects (Wang et al.).

Upstream rows (the Hub's `TIGER-Lab/MMLU-Pro`) carry `question`, `options` (a list), `answer` (the letter) and
`answer_index`, `category`, `question_id`. The options keep their upstream order, so the letter is upstream's.
Fields: id, problem (question and lettered options), options, expected_answer (the letter), subject.
"""

from __future__ import annotations

from functools import partial

from ..choices import LETTERS, choice_fields
from ..hub import hub_rows
from ..registry import BENCHMARKS, Benchmark


def from_upstream(row: dict, index: int) -> dict:
    options = [str(option) for option in row["options"]]
    correct = row["answer_index"] if isinstance(row.get("answer_index"), int) else LETTERS.index(row["answer"])
    if "answer" in row and row["answer"] != LETTERS[correct]:
        raise ValueError(f"answer {row['answer']!r} and answer_index {correct} disagree")
    return {
        "id": f"mmlu-pro-{row.get('question_id', index)}",
        **choice_fields(row["question"], options, correct),
        "subject": row.get("category"),
    }


BENCHMARKS.add(
    "mmlu-pro",
    Benchmark(
        name="mmlu-pro",
        grader="mcq",
        prompt_config="generic/multichoice",
        tokens_to_generate=4096,
        required_fields=("problem", "options", "expected_answer"),
        description="MMLU-Pro test split, 12,032 questions with up to 10 options (Hub, or --data_file)",
        download=partial(hub_rows, "TIGER-Lab/MMLU-Pro", "test"),
        from_upstream=from_upstream,
    ),
)
