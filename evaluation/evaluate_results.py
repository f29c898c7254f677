"""The grading stage: grade generation files in place, without generating again.

    python -m assay.evaluation.evaluate_results ++input_files='<out>/eval-results/aime24/output-rs*.jsonl' \\
        ++grader=math
    python -m assay.evaluation.evaluate_results ++input_files='<out>/eval-results/mlcode/output-rs*.jsonl' \\
        ++grader=code ++sandbox_url=http://127.0.0.1:6000 [++diagnostics.inject_imports=true]

Each matched file is read whole, graded, and replaced atomically (written under a temporary name,
then renamed): a crash leaves the old file, never half of one. Every field of a line is kept; the
grading fields are set anew, so grading twice gives the same file (rescoring after a grader fix is
just running this again).

- math: `predicted_answer`, `symbolic_correct` (grade_math.py). Needs `expected_answer`.
- code: `passed`, `failure_category`, `extracted_code`, `tests_passed`, `tests_total`,
  `stderr_tail`, and `diagnostics` only when the import diagnostic is on (grade_code.py). Needs
  `tests` (and usually `entry_point`); the sandbox is `sandbox_url`, else ASSAY_SANDBOX_URL, with
  ASSAY_SANDBOX_TOKEN when set.
"""

from __future__ import annotations

import asyncio
import glob
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..core.config import MISSING, ConfigError, register_stage_config, run_stage
from ..core.jsonl import read_jsonl, write_jsonl_atomic

GRADERS = ("math", "code")


@dataclass
class MathGraderConfig:
    """How math answers are compared."""

    timeout: float = 10.0
    """Seconds one math-verify comparison may take; past it the comparison's worker process is killed and the answer counts as not equal."""


@dataclass
class CodeGraderConfig:
    """How code answers are run."""

    time_limit: float = 20.0
    """Seconds of execution one task gets in the sandbox (answer, tests and runner together); past it the sample is a timeout."""
    max_concurrent: int = 4
    """Samples graded at the same time, each in its own fresh sandbox session."""
    stderr_tail_chars: int = 2000
    """Characters of error output kept in each line's stderr_tail."""
    sandbox_wait: float = 60.0
    """Seconds to wait for the sandbox to answer its health check before failing."""


@dataclass
class DiagnosticsConfig:
    """Opt-in diagnostics, recorded apart from the official grading fields."""

    inject_imports: bool = False
    """Grade failed code samples again with common imports run first; the outcome goes to the line's diagnostics.inject_imports and to metrics.json's diagnostics, never to passed/failure_category."""


@register_stage_config
@dataclass
class EvaluateResultsConfig:
    """Grade generation files in place (math or code)."""

    input_files: str = MISSING
    """A glob of generation files (JSONL), e.g. /out/eval-results/aime24/output-rs*.jsonl; ** recurses."""
    grader: str = MISSING
    """math or code."""
    generation_key: str = "generation"
    """The field holding the generated text."""
    sandbox_url: Optional[str] = None
    """URL of the sandbox service for grader=code; default ASSAY_SANDBOX_URL, else http://127.0.0.1:6000."""
    math: MathGraderConfig = field(default_factory=MathGraderConfig)
    """Options of the math grader."""
    code: CodeGraderConfig = field(default_factory=CodeGraderConfig)
    """Options of the code grader."""
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    """Opt-in diagnostics."""

    def __post_init__(self) -> None:
        if self.grader not in GRADERS:
            raise ValueError(f"grader must be one of {', '.join(GRADERS)}, got '{self.grader}'")


def matched_files(pattern: str) -> list[Path]:
    """Files the glob matches, sorted; temporary and partial files are never graded."""
    paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    paths = [p for p in paths if p.is_file() and not p.name.endswith((".tmp", ".partial"))]
    if not paths:
        raise ConfigError(f"input_files '{pattern}' matches no file")
    return paths


def grade_math_file(lines: list[dict], cfg: EvaluateResultsConfig, verifier) -> list[dict]:
    from .grade_math import grade_math_line

    return [grade_math_line(line, verifier, cfg.generation_key) for line in lines]


def grade_code_file(lines: list[dict], cfg: EvaluateResultsConfig) -> list[dict]:
    from .grade_code import grade_code_lines

    return asyncio.run(
        grade_code_lines(
            lines,
            sandbox_url=cfg.sandbox_url,
            time_limit=cfg.code.time_limit,
            max_concurrent=cfg.code.max_concurrent,
            generation_key=cfg.generation_key,
            inject_imports=cfg.diagnostics.inject_imports,
            tail_chars=cfg.code.stderr_tail_chars,
            wait_for_sandbox=cfg.code.sandbox_wait,
        )
    )


def _report(path: Path, graded: list[dict], grader: str) -> str:
    key = "symbolic_correct" if grader == "math" else "passed"
    correct = sum(bool(line.get(key)) for line in graded)
    share = f"{100.0 * correct / len(graded):.1f}%" if graded else "-"
    text = f"evaluate_results: {path}: {correct}/{len(graded)} {key} ({share})"
    if grader == "code":
        failures = Counter(line["failure_category"] for line in graded if line["failure_category"])
        if failures:
            text += "; failures: " + ", ".join(f"{n} {c}" for c, n in failures.most_common())
        diagnosed = [line["diagnostics"]["inject_imports"] for line in graded if "diagnostics" in line]
        if diagnosed:
            rescued = sum(bool(d["passed"]) for d in diagnosed)
            text += f"; diagnostic: {rescued} of {len(diagnosed)} failed would pass with common imports"
    return text


def evaluate_results(cfg: EvaluateResultsConfig) -> None:
    files = matched_files(cfg.input_files)
    verifier = None
    if cfg.grader == "math":
        from .grade_math import MathVerifier

        verifier = MathVerifier(timeout=cfg.math.timeout)
    try:
        for path in files:
            lines = list(read_jsonl(path))
            try:
                if cfg.grader == "math":
                    graded = grade_math_file(lines, cfg, verifier)
                else:
                    graded = grade_code_file(lines, cfg)
            except ValueError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            write_jsonl_atomic(path, graded)
            print(_report(path, graded, cfg.grader), flush=True)
    finally:
        if verifier is not None:
            if verifier.timeouts:
                print(
                    f"evaluate_results: {verifier.timeouts} comparison(s) ran past {cfg.math.timeout:g} s "
                    "and counted as not equal"
                )
            verifier.close()


def main(argv=None) -> None:
    run_stage(EvaluateResultsConfig, evaluate_results, argv=argv, prog="python -m assay.evaluation.evaluate_results")


if __name__ == "__main__":
    main()
