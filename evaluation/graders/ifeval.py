"""`ifeval`: instruction following. Each line carries IFEval's `instruction_id_list` and `kwargs` (one
argument dict per instruction); the final answer (evaluation/final_answer.py: reasoning is not graded) is
checked against each instruction by evaluation/instructions.py.

Sets, per line:
- `follow_instruction_list` / `follow_instruction_list_loose`: one verdict per instruction, strict and
  loose (IFEval's loose reading also tries the answer without its first or last line and without `*`);
- `follow_all_instructions` (the correct key: IFEval's prompt-level strict accuracy is pass@1 of it) and
  `follow_all_instructions_loose`.
metrics.json gets IFEval's other three figures, averaged over seeds: prompt-level loose and
instruction-level strict and loose accuracy. A line whose instructions cannot be read (an unknown id,
kwargs that do not fit) is flagged in `grading_error` and counts as not followed; the others are graded.
An empty answer, or reasoning that never finished, follows nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional, Sequence

from ..final_answer import final_answer_region
from ..instructions import follows, follows_loosely
from . import GRADERS, GradeLines, Grader


def grade_ifeval_line(line: dict, generation_key: str = "generation") -> dict:
    """The line with the fields of the module docstring set (all other fields kept)."""
    out = dict(line)
    out.pop("grading_error", None)
    ids = line.get("instruction_id_list")
    kwargs = line.get("kwargs")
    if kwargs is None and isinstance(ids, list):
        kwargs = [{} for _ in ids]
    response = final_answer_region(line.get(generation_key)) or ""
    answered = bool(response.strip())
    strict: list[bool] = []
    loose: list[bool] = []
    try:
        if not isinstance(ids, list) or not isinstance(kwargs, list) or len(ids) != len(kwargs):
            raise ValueError("needs instruction_id_list and kwargs, two lists of the same length")
        for instruction_id, arguments in zip(ids, kwargs):
            if arguments is not None and not isinstance(arguments, dict):
                raise ValueError(f"the kwargs of {instruction_id!r} are not a mapping: {arguments!r}")
            strict.append(answered and follows(instruction_id, response, arguments))
            loose.append(answered and follows_loosely(instruction_id, response, arguments))
    except (ValueError, KeyError, TypeError) as exc:
        detail = f"missing argument {exc}" if isinstance(exc, KeyError) else str(exc)
        out["grading_error"] = f"instructions cannot be checked: {detail}"
        strict = loose = [False] * (len(ids) if isinstance(ids, list) else 1)
    out["follow_instruction_list"] = strict
    out["follow_instruction_list_loose"] = loose
    out["follow_all_instructions"] = bool(strict) and all(strict) and "grading_error" not in out
    out["follow_all_instructions_loose"] = bool(loose) and all(loose) and "grading_error" not in out
    return out


def _mean(values: Sequence[float]) -> Optional[float]:
    return 100.0 * sum(values) / len(values) if values else None


@GRADERS.register("ifeval")
class InstructionFollowingGrader(Grader):
    name = "ifeval"
    correct_key = "follow_all_instructions"
    required_fields = ("instruction_id_list", "kwargs")

    @contextlib.contextmanager
    def session(self, cfg) -> Iterator[GradeLines]:
        yield lambda lines: [grade_ifeval_line(line, cfg.generation_key) for line in lines]

    def answer(self, line: dict) -> Optional[str]:
        """Instruction following has no single answer to vote on; a line answered when its text is not empty."""
        return None

    def has_answer(self, line: dict) -> bool:
        return bool((final_answer_region(line.get("generation")) or "").strip())

    def report(self, graded: Sequence[dict]) -> str:
        text = super().report(graded)
        bad = sum("grading_error" in line for line in graded)
        return text + (f"; {bad} line(s) whose instructions cannot be checked (see grading_error)" if bad else "")

    def extra_metrics(self, seeds: Sequence[Sequence[dict]]) -> dict[str, Any]:
        """IFEval's four accuracies (percent), each the mean over seeds."""
        figures: dict[str, list[float]] = {
            k: [] for k in ("prompt_strict", "prompt_loose", "inst_strict", "inst_loose")
        }
        for lines in seeds:
            if not lines:
                continue
            strict = [v for line in lines for v in line.get("follow_instruction_list", [])]
            loose = [v for line in lines for v in line.get("follow_instruction_list_loose", [])]
            figures["prompt_strict"].append(sum(bool(x.get(self.correct_key)) for x in lines) / len(lines))
            figures["prompt_loose"].append(
                sum(bool(x.get("follow_all_instructions_loose")) for x in lines) / len(lines)
            )
            if strict:
                figures["inst_strict"].append(sum(strict) / len(strict))
                figures["inst_loose"].append(sum(loose) / len(loose))
        return {
            "ifeval": {
                "prompt_level_strict_accuracy": _mean(figures["prompt_strict"]),
                "prompt_level_loose_accuracy": _mean(figures["prompt_loose"]),
                "instruction_level_strict_accuracy": _mean(figures["inst_strict"]),
                "instruction_level_loose_accuracy": _mean(figures["inst_loose"]),
            }
        }
