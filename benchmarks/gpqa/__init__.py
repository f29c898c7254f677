"""gpqa: GPQA Diamond, 198 graduate-level science questions with four options (Rein et al.).

Upstream rows (the Hub's `Idavidrein/gpqa`, config `gpqa_diamond`, which needs a Hub token that has accepted
the dataset's terms) give the question, its correct answer and three incorrect ones. The four options are
shuffled with a random generator seeded by the question itself, so the correct letter is spread over A-D and
a question gets the same letters whichever file or order it comes from. The option texts are cleaned as
the dataset's evaluations usually are (stripped, ` [title]` turned into `. `, double spaces collapsed).
Fields: id, problem (question and lettered options), options, expected_answer (the letter), subject.
"""

from __future__ import annotations

import hashlib
import random
from functools import partial

from ..choices import choice_fields
from ..hub import hub_rows
from ..registry import BENCHMARKS, Benchmark


def clean(text: object) -> str:
    text = "" if text is None else str(text).strip()
    return text.replace(" [title]", ". ").replace("  ", " ")


def from_upstream(row: dict, index: int) -> dict:
    question = clean(row["Question"])
    correct = clean(row["Correct Answer"])
    options = [correct] + [clean(row[f"Incorrect Answer {n}"]) for n in (1, 2, 3)]
    seed = int.from_bytes(hashlib.sha256(question.encode("utf-8")).digest()[:8], "big")
    random.Random(seed).shuffle(options)
    return {
        "id": str(row.get("Record ID") or f"gpqa-{index}"),
        **choice_fields(question, options, options.index(correct)),
        "subject": row.get("Subdomain"),
        "explanation": clean(row.get("Explanation")),
    }


BENCHMARKS.add(
    "gpqa",
    Benchmark(
        name="gpqa",
        grader="mcq",
        prompt_config="generic/multichoice",
        tokens_to_generate=8192,
        required_fields=("problem", "options", "expected_answer"),
        description="GPQA Diamond, 198 four-option science questions (Hub, gated: needs a token; or --data_file)",
        download=partial(hub_rows, "Idavidrein/gpqa", "train", "gpqa_diamond"),
        from_upstream=from_upstream,
    ),
)
