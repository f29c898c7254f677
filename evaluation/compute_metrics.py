"""The metrics stage: one benchmark's graded seed files in, `metrics.json` out.

    python -m assay.evaluation.compute_metrics ++input_dir=<out>/eval-results/aime24 \\
        ++output_file=<out>/eval-results/aime24/metrics.json

Reads every `output-rs<seed>.jsonl` of `input_dir` (chunk and partial files are ignored), computes
the metrics of metrics.py and writes them atomically. The benchmark's name is the folder's name
unless given.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..core.config import MISSING, ConfigError, register_stage_config, run_stage
from ..core.jsonl import read_jsonl
from ..core.suggest import UnknownNameError
from .graders import get_grader
from .metrics import compute_benchmark_metrics, seed_files


@register_stage_config
@dataclass
class ComputeMetricsConfig:
    """Compute pass@1[avg-of-k], majority@k, pass@k and the failure taxonomy of one benchmark."""

    input_dir: str = MISSING
    """Folder of the graded seed files output-rs<seed>.jsonl (one benchmark)."""
    output_file: Optional[str] = None
    """Where metrics.json goes; default <input_dir>/metrics.json."""
    grader: Optional[str] = None
    """A grader of evaluation/graders/ (math, code, mcq); default: detected from the graded fields."""
    benchmark: Optional[str] = None
    """Name recorded in metrics.json; default: the name of input_dir."""

    def __post_init__(self) -> None:
        if self.grader is not None:
            try:
                get_grader(self.grader)
            except UnknownNameError as exc:
                raise ValueError(f"grader: {exc}") from None


def write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def compute_metrics(cfg: ComputeMetricsConfig) -> dict:
    input_dir = Path(cfg.input_dir)
    if not input_dir.is_dir():
        raise ConfigError(f"input_dir {input_dir} is not a folder")
    files = seed_files(input_dir)
    if not files:
        raise ConfigError(f"no output-rs<seed>.jsonl files in {input_dir}")
    seeds = [list(read_jsonl(path)) for path in files]
    try:
        doc = compute_benchmark_metrics(
            seeds, cfg.grader, benchmark=cfg.benchmark or input_dir.resolve().name, seed_names=[p.name for p in files]
        )
    except ValueError as exc:
        raise ConfigError(f"{input_dir}: {exc}") from None
    output = Path(cfg.output_file) if cfg.output_file else input_dir / "metrics.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output, doc)
    print(f"compute_metrics: {len(files)} seed file(s) of {doc['benchmark']} -> {output}")
    return doc


def main(argv=None) -> None:
    run_stage(ComputeMetricsConfig, compute_metrics, argv=argv, prog="python -m assay.evaluation.compute_metrics")


if __name__ == "__main__":
    main()
