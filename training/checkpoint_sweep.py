"""The checkpoint sweep table: one row per evaluated checkpoint (step, pass@1, failure taxonomy), and the best one.

    python -m assay.training.checkpoint_sweep ++eval_dir=runs/sft-eval

The best checkpoint of a fine-tuning run is often not the last one, so every checkpoint is evaluated
(`eval(model="runs/sft/merged/checkpoint-*", ...)` writes one folder per checkpoint under its
output_dir) and this table puts them side by side:

    step | checkpoint    | mlcode pass@1[avg-of-4] | mlcode failures
    0    | base          | 2.30%                   | missing_import 40, wrong_answer 210, ...
    5    | checkpoint-5  | 3.45%                   | ...
    best: checkpoint-5 (mean pass@1 3.45% over 1 benchmark)

A folder whose name ends in -<number> or _<number> is that step (checkpoint-50 -> 50); any other folder (the base
model evaluated beside the checkpoints) is step 0. The best checkpoint has the highest pass@1
averaged over the benchmarks; ties go to the earlier step (fewer steps, same score). The table is
printed and saved as `<eval_dir>/checkpoint_sweep.json`, with its picture, pass@1 against the step, as
`<eval_dir>/checkpoint_sweep.png`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..core.config import MISSING, ConfigError, register_stage_config, run_stage
from ..evaluation.metrics import default_rows
from ..evaluation.summarize import find_metrics, format_table

SWEEP_FILE = "checkpoint_sweep.json"
SWEEP_PLOT = "checkpoint_sweep.png"


def step_of(label: str) -> int:
    """checkpoint-50 -> 50; a label without a number after a - or _ at its end (the base model, smollm2) -> 0."""
    match = re.search(r"[-_](\d+)$", label)
    return int(match.group(1)) if match else 0


def pass_at_1_mode(doc: dict) -> str:
    """The pass@1 row of a metrics document: pass@1[avg-of-N] with N seeds, else pass@1."""
    for mode in default_rows(doc):
        if mode.startswith("pass@1"):
            return mode
    return "pass@1"


def runs_of(eval_dir: Path) -> list[Path]:
    """The evaluated models under eval_dir (folders holding eval-results/), in step order."""
    runs = [p.parent for p in eval_dir.glob("*/eval-results") if p.is_dir()]
    if not runs and (eval_dir / "eval-results").is_dir():
        runs = [eval_dir]
    return sorted(runs, key=lambda p: (step_of(p.name), p.name))


def sweep(eval_dir: str | Path) -> dict:
    """{"rows": [{step, checkpoint, benchmarks: {name: {mode, pass@1, failures}}, mean}], "best": label}."""
    root = Path(eval_dir)
    runs = runs_of(root)
    if not runs:
        raise FileNotFoundError(
            f"no evaluated checkpoints under {root} (expected <eval_dir>/<checkpoint>/eval-results/)"
        )
    rows: list[dict[str, Any]] = []
    for run in runs:
        try:
            docs = find_metrics(run)
        except FileNotFoundError:
            continue  # a checkpoint whose evaluation has not finished
        benchmarks = {}
        for name, doc in docs.items():
            mode = pass_at_1_mode(doc)
            failures = doc.get("failure_categories") or {}
            benchmarks[name] = {
                "mode": mode,
                "pass@1": doc["metrics"].get(mode, {}).get(doc["correct_key"]),
                "failures": {k: v for k, v in failures.items() if k not in ("passed", "total") and v},
                "samples": failures.get("total"),
            }
        scores = [b["pass@1"] for b in benchmarks.values() if b["pass@1"] is not None]
        rows.append(
            {
                "step": step_of(run.name),
                "checkpoint": run.name,
                "path": str(run),
                "benchmarks": benchmarks,
                "mean": sum(scores) / len(scores) if scores else None,
            }
        )
    scored = [r for r in rows if r["mean"] is not None]
    best = max(scored, key=lambda r: (r["mean"], -r["step"])) if scored else None
    if best is not None and best["mean"] == 0:  # nothing passed anywhere: no run is better than another
        best = None
    return {
        "eval_dir": str(root),
        "rows": rows,
        "best": best["checkpoint"] if best else None,
        "best_mean": best["mean"] if best else None,
    }


def _failures_cell(failures: dict) -> str:
    ordered = sorted(failures.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {count}" for name, count in ordered) or "-"


def format_sweep(result: dict, fmt: str = "text") -> str:
    rows = result["rows"]
    names = sorted({name for row in rows for name in row["benchmarks"]})
    with_failures = [n for n in names if any(row["benchmarks"].get(n, {}).get("failures") for row in rows)]
    header = ["step", "checkpoint"]
    for name in names:
        modes = {row["benchmarks"][name]["mode"] for row in rows if name in row["benchmarks"]}
        header.append(f"{name} {modes.pop() if len(modes) == 1 else 'pass@1'}")
    header += [f"{name} failures" for name in with_failures]
    table = []
    for row in rows:
        cells = [str(row["step"]), row["checkpoint"]]
        for name in names:
            value = row["benchmarks"].get(name, {}).get("pass@1")
            cells.append("-" if value is None else f"{value:.2f}%")
        cells += [_failures_cell(row["benchmarks"].get(name, {}).get("failures", {})) for name in with_failures]
        if row["checkpoint"] == result["best"]:
            cells[1] += " *"
        table.append(cells)
    text = format_table(header, table, "markdown" if fmt == "markdown" else "text")
    count = len(names)
    if result["best"] is not None:
        text += (
            f"\nbest: {result['best']} (mean pass@1 {result['best_mean']:.2f}% over {count} "
            f"benchmark{'s' if count != 1 else ''})"
        )
    elif any(row["mean"] is not None for row in rows):
        text += (
            f"\nbest: none (every run scored 0.00% pass@1 on {'all ' if count != 1 else ''}{count} "
            f"benchmark{'s' if count != 1 else ''}: nothing to choose between them)"
        )
    return text


def print_sweep(eval_dir: str | Path, fmt: str = "text", save: bool = True) -> dict:
    """Print the sweep table of eval_dir, save it as JSON and as a picture beside the runs, and return it."""
    from ..evaluation.plots import plot_sweep

    result = sweep(eval_dir)
    text = format_sweep(result, fmt)
    if save:
        (Path(eval_dir) / SWEEP_FILE).write_text(json.dumps(result, indent=2) + "\n")
        picture = plot_sweep(result, Path(eval_dir) / SWEEP_PLOT)
        if picture is not None:
            text += f"\npass@1 against the step: {picture}"
    print(text, flush=True)
    return result


@register_stage_config
@dataclass
class CheckpointSweepConfig:
    """Print one table of every evaluated checkpoint under eval_dir and name the best."""

    eval_dir: str = MISSING
    """The output_dir of an eval over several checkpoints (one folder per checkpoint)."""
    format: str = "text"
    """text or markdown."""
    save: bool = True
    """Also write <eval_dir>/checkpoint_sweep.json and checkpoint_sweep.png."""


def _main(cfg: CheckpointSweepConfig) -> Optional[dict]:
    if cfg.format not in ("text", "markdown"):
        raise ConfigError(f"format must be text or markdown, got '{cfg.format}'")
    try:
        return print_sweep(cfg.eval_dir, cfg.format, cfg.save)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None


def main(argv=None) -> None:
    run_stage(CheckpointSweepConfig, _main, argv=argv, prog="python -m assay.training.checkpoint_sweep")


if __name__ == "__main__":
    main()
