"""The final answer of a math generation: the last `\\boxed{...}`, else a `Final Answer:` line.

Rules (each one is a case in tests/evaluation/extraction_cases.jsonl):

1. Only the final answer region counts (final_answer.py: harmony final channel, text after
   `</think>`; unfinished reasoning is no answer).
2. The LAST `\\boxed{...}` or `\\fbox{...}` wins: models box intermediate results and correct
   themselves, the last box is what they settled on. Braces nest (`\\boxed{\\frac{1}{2}}`) and
   escaped braces (`\\{`, `\\}`) do not count. `\\boxed 5` (no braces) takes the next token.
3. If that last box never closes, the output was cut inside its answer: no answer (an earlier box is
   a superseded draft, not the answer).
4. Without a box, the last `Final Answer: X` / `The final answer is X` (Minerva style, with or
   without bold markers, or as a heading with the answer on the next line) gives X, without `$`
   delimiters, a trailing period or "I hope it is correct". X written as plain words with a single
   number in them ("Jane started 3 hours ago") gives that number.
5. Otherwise None. An empty box is None too.

The answer is returned as written (stripped); grade_math.py normalises it for comparison.
"""

from __future__ import annotations

import re
from typing import Optional

from .final_answer import final_answer_region

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_FINAL_ANSWER = re.compile(
    r"final\s+answer(?:\*\*)?\s*(?:is\b\s*:?|:|(?=\s*$))(?:\*\*)?",
    re.IGNORECASE | re.MULTILINE,
)
# the closing formula of the MATH few-shot format; whatever follows it (chatter, a next turn) is not the answer
_HOPE = re.compile(r"\s*I hope it is correct\b.*$", re.IGNORECASE | re.DOTALL)
# a final answer written as a sentence, `The largest $n$ is 34`: the value after its last " is "
_SENTENCE_VALUE = re.compile(r"^(?:the|so|thus|hence|therefore)\b.*\bis\s+(?!not\b)(\S+(?:\s\S+){0,2})$", re.IGNORECASE)


class _Unclosed(Exception):
    """The last box opened a brace that never closes."""


def _box_starts(text: str) -> list[int]:
    """Offsets just past each `\\boxed` / `\\fbox` command name (not `\\boxedx`)."""
    starts = []
    for command in _BOX_COMMANDS:
        for m in re.finditer(re.escape(command) + r"(?![A-Za-z])", text):
            starts.append(m.end())
    return sorted(starts)


def _braced(text: str, open_at: int) -> str:
    """Content of the brace group opening at `open_at`; raises _Unclosed when it never closes."""
    depth, i = 0, open_at
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2  # an escaped character (\{ or \}) never opens or closes a group
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i]
        i += 1
    raise _Unclosed


def _box_content(text: str, at: int) -> tuple[str, int]:
    """(content, end offset) of the box whose command name ends at `at`; raises _Unclosed."""
    rest = text[at:]
    stripped = rest.lstrip()
    if stripped.startswith("{"):
        open_at = at + (len(rest) - len(stripped))
        content = _braced(text, open_at)
        return content, open_at + len(content) + 2
    m = re.match(r"\s+([^\s$]+)", rest)  # `\boxed 5`: the next token, without closing math delimiters
    return (m.group(1), at + m.end()) if m else ("", at)


def last_boxed(text: str) -> Optional[str]:
    """Content of the last outermost `\\boxed{...}`/`\\fbox{...}`; None if none, empty or cut off.

    A box inside another box belongs to it: `\\boxed{\\boxed{42}}` gives `\\boxed{42}`.
    """
    content, inside_until = None, -1
    for at in _box_starts(text):
        if at < inside_until:
            continue
        try:
            content, inside_until = _box_content(text, at)
        except _Unclosed:
            return None
    if content is None:
        return None
    return content.strip() or None


def strip_math_delimiters(answer: str) -> str:
    answer = answer.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if answer.startswith(left) and answer.endswith(right) and len(answer) >= len(left) + len(right):
            return answer[len(left) : len(answer) - len(right)].strip()
    return answer


def final_answer_line(text: str) -> Optional[str]:
    """X of the last `Final Answer: X` / `The final answer is X` (or the line after a bare heading)."""
    matches = list(_FINAL_ANSWER.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :]
    lines = rest.split("\n")
    answer = lines[0].strip()
    if not answer:  # a heading: the answer is the next non-empty line
        answer = next((line.strip() for line in lines[1:] if line.strip()), "")
    answer = _HOPE.sub("", answer).strip()
    answer = answer.strip("*").strip()
    answer = answer.rstrip(".").strip()
    answer = strip_math_delimiters(answer)
    answer = answer.rstrip(".").strip()
    sentence = _SENTENCE_VALUE.match(answer)
    if sentence:
        answer = strip_math_delimiters(sentence.group(1).rstrip(".").strip())
    return _number_of_prose(answer) or answer or None


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def _number_of_prose(answer: str) -> Optional[str]:
    """The one number of a final answer written as plain words (`Jane started growing Sphere 3 hours ago`);
    None unless the rest is only words, at least two of them, with no formula, no variable (a one-letter
    word other than a and I) and no negation (`x is not 5` does not say 5)."""
    tokens = [t.strip(",;:!?") for t in answer.split()]
    numbers = [t for t in tokens if _NUMBER.fullmatch(t)]
    words = [t for t in tokens if not _NUMBER.fullmatch(t)]
    if len(numbers) != 1 or len(words) < 2 or not all(_WORD.fullmatch(w) for w in words):
        return None
    lowered = {w.lower() for w in words}
    if lowered & _NEGATIONS or any(len(w) == 1 and w not in ("a", "A", "I") for w in words):
        return None
    return numbers[0]


_NEGATIONS = frozenset({"not", "no", "never", "neither", "nor", "except", "isn't", "cannot", "can't", "without"})


_CLOSING_ANSWER = re.compile(r"\b(?:the\s+)?answer\s+is:?\s*(.+?)\s*\.?\s*$", re.IGNORECASE)


def closing_answer_statement(text: str) -> Optional[str]:
    """X of `... the answer is X.` when it ends the response's last line (small models answer this way).

    Only the last non-empty line counts: an "answer is" in the middle of the reasoning is a step,
    not the answer. The value must be short and hold no further sentence.
    """
    lines = [line.strip() for line in text.strip().split("\n") if line.strip()]
    if not lines:
        return None
    match = _CLOSING_ANSWER.search(lines[-1].strip("*").strip())
    if not match:
        return None
    answer = strip_math_delimiters(match.group(1).strip("*").strip()).rstrip(".").strip()
    if not answer or len(answer) > 40 or ". " in answer:
        return None
    return answer


def extract_math_answer(generation: Optional[str]) -> Optional[str]:
    """The model's final math answer as written, or None when it gave none.

    In order: the last \\boxed{}; a `Final Answer:` line; `the answer is X` closing the last line.
    """
    region = final_answer_region(generation)
    if region is None:
        return None
    if _box_starts(region):
        return last_boxed(region)
    return final_answer_line(region) or closing_answer_statement(region)
