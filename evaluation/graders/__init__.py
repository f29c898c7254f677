"""Graders: how one benchmark's answers are judged. One module per grader (math.py, code.py, mcq.py, judge.py, ...),
chosen by the benchmark's `grader` (or `++grader=`) through `GRADERS`.

A grader does three things for the rest of assay:
- grades a file's lines (`grade`), inside a `session` that holds what grading needs (a math-verify worker,
  a sandbox client), setting its fields on each line and keeping all the others;
- names the field that says a sample is correct (`correct_key`) and the answer a sample gave (`answer`), from
  which metrics.py derives pass@k, majority@k (when `votes`) and no_answer;
- says what it needs: input fields, a sandbox beside the grading job (`needs_sandbox`).

Adding a grader is one module here that subclasses `Grader` and registers itself:
`@GRADERS.register("name")`. Its options, if any, are a section of EvaluateResultsConfig named after it.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from ...core.registry import Registry

if TYPE_CHECKING:
    from ..evaluate_results import EvaluateResultsConfig

GradeLines = Callable[[list[dict]], list[dict]]


class Grader(ABC):
    """One way of judging answers; see the module docstring for the contract."""

    name: str = ""
    correct_key: str = "symbolic_correct"
    """The boolean field a graded line carries: the sample is correct."""
    required_fields: tuple[str, ...] = ()
    """Fields every input line needs (besides the generation)."""
    needs_sandbox: bool = False
    """Whether grading runs code (a sandbox is started beside the grading job; GRPO can reward with it)."""
    needs_judge: bool = False
    """Whether grading asks an LLM judge (eval serves one beside the grading job, or points at an endpoint)."""
    votes: bool = False
    """Whether answers can be compared for majority@k (code has no single answer to vote on)."""

    @abstractmethod
    def session(self, cfg: EvaluateResultsConfig) -> contextlib.AbstractContextManager[GradeLines]:
        """A context manager whose value grades the lines of one file (usually a `@contextlib.contextmanager`)."""

    def answer(self, line: dict) -> Optional[str]:
        """The answer a graded line gave, normalised for voting; None when it gave none."""
        value = line.get("predicted_answer")
        return None if value is None else str(value)

    def has_answer(self, line: dict) -> bool:
        """Whether the sample gave an answer at all (no_answer counts the others)."""
        return self.answer(line) is not None

    def report(self, graded: Sequence[dict]) -> str:
        """One line for the log: how many of the file's samples are correct."""
        correct = sum(bool(line.get(self.correct_key)) for line in graded)
        share = f"{100.0 * correct / len(graded):.1f}%" if graded else "-"
        return f"{correct}/{len(graded)} {self.correct_key} ({share})"

    def extra_metrics(self, seeds: Sequence[Sequence[dict]]) -> dict[str, Any]:
        """Fields this grader adds to metrics.json (a failure taxonomy, diagnostics); none by default."""
        return {}


GRADERS: Registry[Grader] = Registry(
    "grader", __name__, "Add one with a module in assay/evaluation/graders/ (see its __init__.py)."
)


def get_grader(name: str) -> Grader:
    """The grader of that name (an UnknownNameError lists the known ones)."""
    return GRADERS.get(name)


def detect_grader(lines: Sequence[dict]) -> str:
    """The grader whose fields graded lines carry (the first registered one that fits)."""
    for line in lines:
        if isinstance(line.get("grader"), str) and line["grader"] in GRADERS:
            return line["grader"]
        for name in GRADERS.names():
            if get_grader(name).correct_key in line:
                return name
    keys = sorted({get_grader(name).correct_key for name in GRADERS.names()})
    raise ValueError(f"the lines are not graded (no {' or '.join(map(repr, keys))}): run evaluate_results first")
