"""`math`: the final answer (boxed, or a closing answer statement) against `expected_answer`, by value and
by math-verify's symbolic equivalence (grade_math.py). Sets `predicted_answer` and `symbolic_correct`."""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

from ..grade_math import MathVerifier, grade_math_line, normalize_math_answer
from . import GRADERS, GradeLines, Grader


@GRADERS.register("math")
class MathGrader(Grader):
    name = "math"
    correct_key = "symbolic_correct"
    required_fields = ("expected_answer",)
    votes = True

    @contextlib.contextmanager
    def session(self, cfg) -> Iterator[GradeLines]:
        verifier = MathVerifier(timeout=cfg.math.timeout)
        try:
            yield lambda lines: [grade_math_line(line, verifier, cfg.generation_key) for line in lines]
        finally:
            if verifier.timeouts:
                print(
                    f"evaluate_results: {verifier.timeouts} comparison(s) ran past {cfg.math.timeout:g} s "
                    "and counted as not equal"
                )
            verifier.close()

    def answer(self, line: dict) -> Optional[str]:
        return normalize_math_answer(line.get("predicted_answer"))

    def has_answer(self, line: dict) -> bool:
        return line.get("predicted_answer") is not None
