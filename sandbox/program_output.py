"""Whether a program's output is the expected one: line by line, as competitive-programming judges compare.

Used by the worker (outside the process that ran the program) for program runs (`POST /grade_program`).
The rule, the one LiveCodeBench's checker applies:

- Leading and trailing whitespace of the whole output and of each line is ignored, and so is a `\\r` before
  a newline; the number of lines must match.
- Two lines match when they are equal, or when both are the same number of whitespace-separated numbers
  with equal values (`1.0` and `1`, `2.50` and `2.5`). Values are compared exactly, as decimals: no
  tolerance, so `0.333` is not `0.3333`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Optional


def output_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _numbers(line: str) -> Optional[list[Decimal]]:
    try:
        values = [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None
    return values if all(v.is_finite() for v in values) else None


def lines_match(actual: str, expected: str) -> bool:
    if actual == expected:
        return True
    a, b = _numbers(actual), _numbers(expected)
    return a is not None and b is not None and len(a) == len(b) and a == b


def first_difference(actual: str, expected: str) -> Optional[str]:
    """None when the outputs match, else what differs first (for the failure's message)."""
    got, want = output_lines(actual), output_lines(expected)
    for number, (g, w) in enumerate(zip(got, want), start=1):
        if not lines_match(g, w):
            return f"line {number}: expected {w[:200]!r}, got {g[:200]!r}"
    if len(got) != len(want):
        return f"expected {len(want)} line(s) of output, got {len(got)}"
    return None
