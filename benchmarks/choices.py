"""The fields a multiple-choice line carries, the same for every such benchmark (gpqa, mmlu-pro, a user's own).

`problem` is the question followed by its lettered options (what the generic/multichoice prompt shows),
`options` the option texts in letter order (what the mcq grader maps an answer given as text back to),
and `expected_answer` the correct letter.
"""

from __future__ import annotations

import string
from typing import Sequence

LETTERS = string.ascii_uppercase


def choice_fields(question: str, options: Sequence[str], correct: int) -> dict:
    """`problem`, `options` and `expected_answer` for a question whose option number `correct` is right."""
    if not options or len(options) > len(LETTERS):
        raise ValueError(f"a multiple-choice question needs 1 to {len(LETTERS)} options, got {len(options)}")
    if not 0 <= correct < len(options):
        raise ValueError(f"the correct option {correct} is not one of the {len(options)} options")
    listed = "\n".join(f"{LETTERS[i]}) {option}" for i, option in enumerate(options))
    return {
        "problem": f"{question.strip()}\n\n{listed}",
        "options": list(options),
        "expected_answer": LETTERS[correct],
    }
