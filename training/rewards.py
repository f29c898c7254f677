"""GRPO rewards for code tasks, and the trace of every reward given.

- `ExecutionReward`: the completion's code (extracted exactly as evaluation extracts it, so training
  optimizes the score the eval reports) runs against the task's hidden tests in the sandbox; the
  reward is the fraction of tests passed. No code, a syntax error or a crash before the tests is 0.
  Partial credit matters for GRPO: a group where one sample passes 2 of 3 tests and the others 0
  still has a gradient, while all-or-nothing rewards leave most groups of a weak model flat.
- `FormatReward` (optional, `++rewards.format_weight`): 1 when the answer holds a complete code block
  that parses and defines the entry point. It teaches the answer format (close the fence, stop)
  before the model passes any test.
- `RewardTrace`: trl calls each reward function once per generation batch, in order; the trace
  gathers their values and writes one JSON line per completion (prompt, completion, each function's
  reward, the weighted total, test outcomes, length, whether it was cut) to
  `<output_dir>/rewards/step_<n>.jsonl`, or `preflight.jsonl` for the preflight. A batch is traced
  under the optimizer step it is generated for (trl's global_step + 1).

The functions take trl's keyword arguments (`completions`, `completion_ids`, `trainer_state` and the
dataset columns `entry_point`, `tests`, `id`, `row`), so they plug into `GRPOTrainer(reward_funcs=...)`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Optional

from ..evaluation.extract_code import defines, extract_code, top_level_names
from ..evaluation.grade_code import grade_code_lines

TRACE_DIR = "rewards"
PREFLIGHT_TRACE = "preflight"
STDERR_TAIL_CHARS = 500
"""How much of a failed sample's error output a trace line keeps (enough to read why it failed)."""


def completion_text(completion: Any) -> str:
    """The text of a trl completion: a string, or a list of chat messages (the assistant's content)."""
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content") or "") for m in completion if m.get("role", "assistant") == "assistant")


def prompt_text(prompt: Any) -> str:
    """The task as the model read it: the last user message of a chat prompt, or the prompt string."""
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if m.get("role") == "user"]
    return str((users or prompt)[-1].get("content") or "")


def format_ok(text: str, entry_point: Optional[str]) -> bool:
    """A complete code block (or bare code) that parses and defines the entry point."""
    code = extract_code(text, entry_point)
    if code is None or top_level_names(code) is None:
        return False
    return defines(code, entry_point) if entry_point else True


class RewardTrace:
    """Collects the values of every reward function for one batch, then writes them as JSON lines.

    Each process writes its own share: rank 0 `step_<n>.jsonl`, rank r `step_<n>.rank<r>.jsonl`. A file
    is replaced the first time this process writes it (a resumed run redoes the steps after its
    checkpoint), and appended to afterwards (several generation batches of one step).
    """

    def __init__(
        self, output_dir: str, names: list[str], weights: list[float], stop_token_ids: set[int], rank: int = 0
    ):
        self.dir = Path(output_dir) / TRACE_DIR
        self.names = list(names)
        self.weights = dict(zip(names, weights))
        self.stop_token_ids = set(stop_token_ids)
        self.rank = rank
        self.phase = "train"
        """`train`, or `preflight` while the preflight samples the starting policy."""
        self._pending: dict[str, list[float]] = {}
        self._outcomes: Optional[list[dict]] = None
        self._written: set[Path] = set()

    def path(self, step: Optional[int]) -> Path:
        stem = PREFLIGHT_TRACE if step is None else f"step_{step}"
        return self.dir / (f"{stem}.jsonl" if self.rank == 0 else f"{stem}.rank{self.rank}.jsonl")

    def add(self, name: str, rewards: list[float], batch: dict, outcomes: Optional[list[dict]] = None) -> None:
        """Record one function's rewards for the current batch; write the batch when every function reported."""
        if name not in self.names:
            raise ValueError(f"reward '{name}' is not traced (known: {self.names})")
        if name in self._pending:
            raise RuntimeError(f"reward '{name}' reported twice for one batch: a previous batch was left unfinished")
        self._pending[name] = [float(r) for r in rewards]
        if outcomes is not None:
            self._outcomes = outcomes
        if len(self._pending) == len(self.names):
            try:
                self._write(batch)
            finally:
                self._pending, self._outcomes = {}, None

    def _clipped(self, ids: Optional[list[int]]) -> Optional[bool]:
        """trl's rule: a completion is cut when its last token is not an end (or pad) token."""
        if ids is None:
            return None
        return not ids or ids[-1] not in self.stop_token_ids

    def _write(self, batch: dict) -> None:
        completions = batch["completions"]
        state = batch.get("trainer_state")
        step = None if self.phase == PREFLIGHT_TRACE else (state.global_step + 1 if state is not None else 0)
        ids = batch.get("completion_ids") or [None] * len(completions)
        prompts = batch.get("prompts") or [None] * len(completions)
        lines = []
        for i, completion in enumerate(completions):
            rewards = {name: self._pending[name][i] for name in self.names}
            line = {
                "step": step,
                "phase": self.phase,
                "row": _at(batch.get("row"), i),
                "id": _at(batch.get("id"), i),
                "prompt": prompt_text(prompts[i]) if prompts[i] is not None else None,
                "completion": completion_text(completion),
                "rewards": rewards,
                "reward": sum(self.weights[n] * v for n, v in rewards.items()),
                "num_tokens": len(ids[i]) if ids[i] is not None else None,
                "clipped": self._clipped(ids[i]),
            }
            if self._outcomes is not None:
                line.update(self._outcomes[i])
            lines.append(json.dumps(line, ensure_ascii=False))
        path = self.path(step)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a" if path in self._written else "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        self._written.add(path)


def _at(values: Optional[list], i: int) -> Any:
    return values[i] if values is not None else None


class ExecutionReward:
    """Fraction of the task's tests that the completion's code passes in the sandbox (see the module doc)."""

    def __init__(
        self,
        trace: Optional[RewardTrace] = None,
        sandbox_url: Optional[str] = None,
        time_limit: float = 20.0,
        max_concurrent: int = 8,
    ):
        self.__name__ = "execution"  # trl logs rewards/<__name__>/mean
        self.trace = trace
        self.sandbox_url = sandbox_url
        self.time_limit = time_limit
        self.max_concurrent = max_concurrent

    def grade(self, completions: list, entry_point: list, tests: list) -> list[dict]:
        lines = [
            {"generation": completion_text(c), "entry_point": e, "tests": t}
            for c, e, t in zip(completions, entry_point, tests)
        ]
        return asyncio.run(
            grade_code_lines(
                lines,
                self.sandbox_url,
                time_limit=self.time_limit,
                max_concurrent=self.max_concurrent,
                tail_chars=STDERR_TAIL_CHARS,
            )
        )

    def __call__(self, completions: list, entry_point: list, tests: list, **batch) -> list[float]:
        graded = self.grade(completions, entry_point, tests)
        rewards = [g["tests_passed"] / g["tests_total"] if g["tests_total"] else 0.0 for g in graded]
        if self.trace is not None:
            outcomes = [
                {
                    "tests_passed": g["tests_passed"],
                    "tests_total": g["tests_total"],
                    "passed": g["passed"],
                    "failure_category": g["failure_category"],
                    "stderr_tail": g["stderr_tail"] or None,
                }
                for g in graded
            ]
            self.trace.add(self.__name__, rewards, {"completions": completions, **batch}, outcomes)
        return rewards


class FormatReward:
    """1.0 when the answer has a complete code block that parses and defines the entry point, else 0.0."""

    def __init__(self, trace: Optional[RewardTrace] = None):
        self.__name__ = "format"
        self.trace = trace

    def __call__(self, completions: list, entry_point: list, **batch) -> list[float]:
        rewards = [float(format_ok(completion_text(c), e)) for c, e in zip(completions, entry_point)]
        if self.trace is not None:
            self.trace.add(self.__name__, rewards, {"completions": completions, **batch})
        return rewards
