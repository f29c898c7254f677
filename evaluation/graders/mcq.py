"""`mcq`: multiple choice. The chosen letter (A, B, ...) against `expected_answer` (a letter, or the text of
one of the `options`). Sets `predicted_answer` (the letter, or None) and `symbolic_correct`.

The letter is read from the final answer (evaluation/final_answer.py) only, in order: the last `\\boxed{}`,
the last `Answer: X` / `the answer is (X)` statement, or a final answer that is a letter alone (`(C)`, `C.`).
A boxed or stated answer that is an option's text rather than its letter counts as that option. A letter
past the number of options is no answer. Nothing else of the text is guessed at: a response that names no
choice has no answer, so no_answer stays honest.
"""

from __future__ import annotations

import contextlib
import re
import string
from typing import Iterator, Optional, Sequence

from ..extract_math import last_boxed, strip_math_delimiters
from ..final_answer import final_answer_region
from . import GRADERS, GradeLines, Grader

LETTERS = string.ascii_uppercase
_TEXT_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm|mathbf)\{(.*)\}$", re.DOTALL)
_LETTER_ALONE = re.compile(r"^[\s*(\[]*([A-Z])\s*[)\].:]?[\s*]*$")
_LETTER_FIRST = re.compile(r"^[\s*(\[]*([A-Z])(?:[)\].:]|\s+[-–:])")
# the keyword in any case, the letter a capital followed by punctuation or the end of the line: "the answer is
# a prime" or "the answer is I think B" name no choice
_STATEMENT = re.compile(
    r"(?i:\banswer\b(?:\s+is)?|\boption\b|\bchoice\b)\s*(?i:is\s*)?[:：]?\s*\**\s*"
    r"(?:[(\[]\s*([A-Z])\s*[)\]]|([A-Z])(?=\s*(?:[.,;:!)\]*]|$)))",
    re.MULTILINE,
)


def _plain(text: str) -> str:
    """An answer without math delimiters, \\text{...} wrappers and surrounding markup."""
    text = strip_math_delimiters(text.strip())
    while (match := _TEXT_WRAPPER.match(text)) is not None:
        text = match.group(1).strip()
    return text.strip().strip("*").strip()


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.lower().split()).rstrip(".") == " ".join(b.lower().split()).rstrip(".")


def letter_of(answer: Optional[str], options: Sequence[str] = ()) -> Optional[str]:
    """The choice an answer names: `B`, `(B)`, `B) 12`, `\\text{B}`, or the text of option B."""
    if answer is None:
        return None
    text = _plain(str(answer))
    for pattern in (_LETTER_ALONE, _LETTER_FIRST):
        match = pattern.match(text)
        if match and match.group(1) in LETTERS:
            return match.group(1)
    for index, option in enumerate(options):
        if isinstance(option, str) and option.strip() and _same_text(text, option):
            return LETTERS[index]
    return None


def extract_choice(generation: Optional[str], options: Sequence[str] = ()) -> Optional[str]:
    """The letter the model chose in its final answer, or None (see the module docstring)."""
    region = final_answer_region(generation)
    if region is None:
        return None
    boxed = last_boxed(region)
    choice = letter_of(boxed, options) if boxed is not None else None
    if choice is None:
        statements = list(_STATEMENT.finditer(region))
        if statements:
            choice = statements[-1].group(1) or statements[-1].group(2)
    if choice is None:
        lines = [line for line in region.strip().split("\n") if line.strip()]
        match = _LETTER_ALONE.match(_plain(lines[-1])) if len(lines) == 1 else None
        choice = match.group(1) if match else None
    if choice is not None and options and LETTERS.index(choice) >= len(options):
        return None
    return choice


def grade_mcq_line(line: dict, generation_key: str = "generation") -> dict:
    """The line with `predicted_answer` and `symbolic_correct` set (all other fields kept)."""
    if "expected_answer" not in line:
        raise ValueError("a multiple-choice line needs 'expected_answer' (the correct letter)")
    options: list = line["options"] if isinstance(line.get("options"), list) else []
    expected = letter_of(str(line["expected_answer"]), options)
    predicted = extract_choice(line.get(generation_key), options)
    out = dict(line)
    out.pop("grading_error", None)
    out["predicted_answer"] = predicted
    out["symbolic_correct"] = expected is not None and predicted == expected
    if expected is None:  # one bad line of data is flagged and counted wrong; the others are graded
        out["grading_error"] = (
            f"expected_answer {line['expected_answer']!r} names no choice (a letter A, B, ... or an option's text)"
        )
    return out


@GRADERS.register("mcq")
class MultipleChoiceGrader(Grader):
    name = "mcq"
    correct_key = "symbolic_correct"
    required_fields = ("expected_answer",)
    votes = True

    @contextlib.contextmanager
    def session(self, cfg) -> Iterator[GradeLines]:
        yield lambda lines: [grade_mcq_line(line, cfg.generation_key) for line in lines]

    def report(self, graded: Sequence[dict]) -> str:
        text = super().report(graded)
        bad = sum("grading_error" in line for line in graded)
        return text + (
            f"; {bad} line(s) with an expected_answer that names no choice (see grading_error)" if bad else ""
        )
