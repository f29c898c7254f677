"""The grading stage: grade generation files in place, without generating again.

    python -m assay.evaluation.evaluate_results ++input_files='<out>/eval-results/aime24/output-rs*.jsonl' \\
        ++grader=math
    python -m assay.evaluation.evaluate_results ++input_files='<out>/eval-results/mlcode/output-rs*.jsonl' \\
        ++grader=code ++sandbox_url=http://127.0.0.1:6000 [++diagnostics.inject_imports=true]

Each matched file is read whole, graded, and replaced atomically (written under a temporary name,
then renamed): a crash leaves the old file, never half of one. Every field of a line is kept; the
grading fields are set anew, so grading twice gives the same file (rescoring after a grader fix is
just running this again).

Each grader is a module of graders/ (graders/__init__.py has the contract):

- math: `predicted_answer`, `symbolic_correct` (grade_math.py). Needs `expected_answer`.
- mcq: `predicted_answer` (the chosen letter), `symbolic_correct`. Needs `expected_answer` (a letter).
- judge: `predicted_answer`, `judge_correct`, `judge_generation`, `judge_error` (the judge's own failures,
  counted apart). Needs `expected_answer` and a judge (`++judge.model`, `++judge.base_url`; graders/judge.py).
- code: `passed`, `failure_category`, `extracted_code`, `tests_passed`, `tests_total`,
  `stderr_tail`, and `diagnostics` only when the import diagnostic is on (grade_code.py). Needs
  `tests` (and usually `entry_point`); the sandbox is `sandbox_url`, else ASSAY_SANDBOX_URL, with
  ASSAY_SANDBOX_TOKEN when set.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..core.config import MISSING, ConfigError, register_stage_config, run_stage
from ..core.jsonl import read_jsonl, write_jsonl_atomic
from ..core.suggest import UnknownNameError
from .graders import get_grader


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
class JudgeGraderConfig:
    """The LLM judge of grader=judge: where it is served and how it is asked (eval fills the server fields)."""

    model: Optional[str] = None
    """The judge's served model name."""
    base_url: Optional[str] = None
    """Base URL of the judge's OpenAI-compatible server (https://host/v1); default ASSAY_JUDGE_URL, else host and port."""
    server_type: str = "vllm"
    """The judge server's kind (decides, as server.server_type does, whether an API key is sent): vllm, sglang, openai, ..."""
    host: str = "127.0.0.1"
    """Host of a judge server started beside the grading job."""
    port: Optional[int] = None
    """Port of a judge server started beside the grading job."""
    api_key_env: Optional[str] = None
    """Name of the environment variable holding the judge endpoint's API key."""
    prompt_config: str = "judge/answer"
    """The judge prompt (prompt_configs/); it reads problem, expected_answer and predicted_answer."""
    tokens_to_generate: int = 1024
    """Tokens the judge may write before its verdict."""
    temperature: float = 0.0
    """The judge's sampling temperature."""
    max_concurrent: int = 32
    """Judge requests in flight at once."""
    request_timeout: float = 600.0
    """Seconds one judge request may take before it is retried."""
    max_retries: int = 3
    """Retries of a judge request on connection errors and 5xx answers."""


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
    """math, code, mcq, judge, ... (evaluation/graders/)."""
    generation_key: str = "generation"
    """The field holding the generated text."""
    sandbox_url: Optional[str] = None
    """URL of the sandbox service for grader=code; default ASSAY_SANDBOX_URL, else http://127.0.0.1:6000."""
    math: MathGraderConfig = field(default_factory=MathGraderConfig)
    """Options of the math grader."""
    code: CodeGraderConfig = field(default_factory=CodeGraderConfig)
    """Options of the code grader."""
    judge: JudgeGraderConfig = field(default_factory=JudgeGraderConfig)
    """Options of the judge grader."""
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    """Opt-in diagnostics."""

    def __post_init__(self) -> None:
        try:
            get_grader(self.grader)
        except UnknownNameError as exc:
            raise ValueError(f"grader: {exc}") from None


def matched_files(pattern: str) -> list[Path]:
    """Files the glob matches, sorted; temporary and partial files are never graded."""
    paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    paths = [p for p in paths if p.is_file() and not p.name.endswith((".tmp", ".partial"))]
    if not paths:
        raise ConfigError(f"input_files '{pattern}' matches no file")
    return paths


def evaluate_results(cfg: EvaluateResultsConfig) -> None:
    grader = get_grader(cfg.grader)
    files = matched_files(cfg.input_files)
    with grader.session(cfg) as grade:
        for path in files:
            lines = list(read_jsonl(path))
            try:
                graded = grade(lines)
            except ValueError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            write_jsonl_atomic(path, graded)
            print(f"evaluate_results: {path}: {grader.report(graded)}", flush=True)


def main(argv=None) -> None:
    run_stage(EvaluateResultsConfig, evaluate_results, argv=argv, prog="python -m assay.evaluation.evaluate_results")


if __name__ == "__main__":
    main()
