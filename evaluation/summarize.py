"""Print the metrics of one or several eval output folders: one block per benchmark, as text, JSON or
Markdown; several folders side by side (one column per run, with the difference to the first).

    python -m assay.evaluation.summarize ++output_dirs=[/tmp/e]
    python -m assay.evaluation.summarize ++output_dirs=[/exp/base,/exp/sft-step50] ++format=markdown

Reads `<output_dir>/eval-results/<benchmark>/metrics.json` (compute_metrics.py writes them). An
output dir may also be given as its `eval-results` folder or as one benchmark folder.

One run, per benchmark:

    evaluation_mode   | num_entries | avg_tokens | gen_seconds | symbolic_correct | no_answer
    pass@1[avg-of-16] | 30          | 13306      | 1645        | 96.46%           | 0.42%
    majority@16       | ...

Several runs, per benchmark, the correct column of each run; runs after the first show the
difference to the first in percentage points:

    evaluation_mode   | base   | sft            | sft-step50
    pass@1[avg-of-16] | 26.00% | 19.00% (-7.00) | 28.00% (+2.00)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..core.config import ConfigError, register_stage_config, run_stage
from .metrics import default_rows

FORMATS = ("text", "json", "markdown")
COLUMNS = ("num_entries", "avg_tokens", "gen_seconds")


def find_metrics(output_dir: str | Path) -> dict[str, dict]:
    """{benchmark: metrics document} of one output dir, sorted by benchmark name."""
    root = Path(output_dir)
    if (root / "eval-results").is_dir():
        root = root / "eval-results"
    if (root / "metrics.json").is_file():
        paths = {root.resolve().name: root / "metrics.json"}
    else:
        paths = {p.parent.name: p for p in root.glob("*/metrics.json")}
    if not paths:
        raise FileNotFoundError(
            f"no metrics.json under {output_dir} (expected <output_dir>/eval-results/<benchmark>/metrics.json)"
        )
    return {name: json.loads(paths[name].read_text()) for name in sorted(paths)}


def _rows(doc: dict, all_k: bool) -> list[str]:
    return list(doc["metrics"]) if all_k else default_rows(doc)


def _cell(column: str, value) -> str:
    if value is None:
        return "-"
    if column in COLUMNS:
        return str(int(round(value)))
    return f"{value:.2f}%"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], fmt: str) -> str:
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _title(name: str, fmt: str, width: int = 60) -> str:
    if fmt == "markdown":
        return f"### {name}"
    return f" {name} ".center(width, "-")


def _single_block(name: str, doc: dict, fmt: str, all_k: bool) -> str:
    key = doc["correct_key"]
    header = ["evaluation_mode", *COLUMNS, key, "no_answer"]
    rows = [[mode, *(_cell(c, doc["metrics"][mode].get(c)) for c in header[1:])] for mode in _rows(doc, all_k)]
    parts = [_title(name, fmt), format_table(header, rows, fmt)]
    failures = doc.get("failure_categories")
    if failures:
        counts = ", ".join(f"{c} {n}" for c, n in failures.items() if c not in ("passed", "total") and n)
        parts.append(f"failures ({failures['total']} samples): {counts or 'none'}")
    ifeval = doc.get("ifeval")
    if ifeval:
        parts.append(
            "IFEval accuracy (mean over seeds): "
            + ", ".join(
                f"{name.replace('_accuracy', '').replace('_', ' ')} {value:.2f}%"
                for name, value in ifeval.items()
                if value is not None
            )
        )
    diag = (doc.get("diagnostics") or {}).get("inject_imports")
    if diag:
        parts.append(
            f"diagnostic (not official): with common imports {diag['would_pass']} of {diag['regraded']} "
            f"failed samples pass; {key} would be {diag['passed_with_imports']:.2f}%"
        )
    return "\n".join(parts)


def _single_json(doc: dict, all_k: bool, categories: bool) -> dict:
    out = {
        "correct_key": doc["correct_key"],
        "num_seeds": doc["num_seeds"],
        "metrics": {mode: doc["metrics"][mode] for mode in _rows(doc, all_k)},
    }
    if categories and doc.get("per_category"):
        out["per_category"] = doc["per_category"]
    for extra in ("failure_categories", "diagnostics", "judge_failures", "ifeval"):
        if doc.get(extra):
            out[extra] = doc[extra]
    return out


def _category_blocks(name: str, doc: dict, fmt: str, all_k: bool) -> list[str]:
    blocks = []
    for category, table in (doc.get("per_category") or {}).items():
        sub = {**doc, "metrics": table, "failure_categories": None, "diagnostics": None, "ifeval": None}
        blocks.append(_single_block(f"{name} / {category}", sub, fmt, all_k))
    return blocks


def _unique_labels(output_dirs: Sequence[str]) -> list[str]:
    labels = [Path(d).resolve().name or str(d) for d in output_dirs]
    if len(set(labels)) == len(labels):
        return labels
    return [str(d) for d in output_dirs]


def _compare_block(name: str, docs: list[Optional[dict]], labels: list[str], fmt: str, all_k: bool) -> tuple[str, dict]:
    present = [d for d in docs if d is not None]
    key = present[0]["correct_key"]
    modes: list[str] = []
    for doc in present:
        modes += [m for m in _rows(doc, all_k) if m not in modes]
    rows, data = [], {}
    for mode in modes:
        values = [None if d is None else d["metrics"].get(mode, {}).get(key) for d in docs]
        cells = []
        for i, value in enumerate(values):
            cell = _cell(key, value)
            if i > 0 and value is not None and values[0] is not None:
                cell += f" ({value - values[0]:+.2f})"
            cells.append(cell)
        rows.append([mode, *cells])
        data[mode] = {
            "values": dict(zip(labels, values)),
            "diff": {
                lab: (None if v is None or values[0] is None else v - values[0])
                for lab, v in zip(labels[1:], values[1:])
            },
        }
    title = _title(f"{name} ({key})", fmt)
    return title + "\n" + format_table(["evaluation_mode", *labels], rows, fmt), data


def summarize_results(
    output_dirs: str | Sequence[str],
    format: str = "text",
    all_k: bool = False,
    categories: bool = False,
    labels: Optional[Sequence[str]] = None,
    print_output: bool = True,
    plot: Optional[str] = None,
) -> str:
    """The summary of one output dir, or the side-by-side comparison of several; printed and returned.
    With `plot` (a .png path), also the picture of pass@k against k for every run and benchmark."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got '{format}'")
    dirs = [output_dirs] if isinstance(output_dirs, (str, Path)) else list(output_dirs)
    if not dirs:
        raise ValueError("no output dir given")
    found = [find_metrics(d) for d in dirs]
    if len(dirs) == 1:
        docs = found[0]
        if format == "json":
            text = json.dumps({name: _single_json(doc, all_k, categories) for name, doc in docs.items()}, indent=2)
        else:
            blocks = []
            for name, doc in docs.items():
                blocks.append(_single_block(name, doc, format, all_k))
                if categories:
                    blocks += _category_blocks(name, doc, format, all_k)
            text = "\n\n".join(blocks)
    else:
        names = sorted({name for docs in found for name in docs})
        run_labels = list(labels) if labels else _unique_labels([str(d) for d in dirs])
        if len(run_labels) != len(dirs):
            raise ValueError(f"{len(run_labels)} labels for {len(dirs)} output dirs")
        blocks, data = [], {}
        for name in names:
            block, data[name] = _compare_block(
                name,
                [docs.get(name) for docs in found],
                run_labels,
                "markdown" if format == "markdown" else "text",
                all_k,
            )
            blocks.append(block)
        if format == "json":
            text = json.dumps({"runs": dict(zip(run_labels, map(str, dirs))), "benchmarks": data}, indent=2)
        else:
            text = "\n\n".join(blocks)
    if plot:
        from .plots import plot_pass_at_k

        run_names = [""] if len(dirs) == 1 else list(labels) if labels else _unique_labels([str(d) for d in dirs])
        written = plot_pass_at_k(dict(zip(run_names, found)), plot)
        text += f"\n\npass@k against k: {written}"
    if print_output:
        print(text)
    return text


@register_stage_config
@dataclass
class SummarizeConfig:
    """Print the metrics table of eval output folders."""

    output_dirs: list[str] = field(default_factory=list)
    """Eval output folders, e.g. [/exp/base,/exp/sft]: one summarizes it, several are compared side by side."""
    format: str = "text"
    """text, json or markdown."""
    all_k: bool = False
    """Show every k (1, 2, 4, ..., N), not only N."""
    categories: bool = False
    """Also show the per-category blocks of benchmarks that have categories."""
    labels: Optional[list[str]] = None
    """Column names of the runs when comparing; default: the folders' names."""
    plot: Optional[str] = None
    """Also write a PNG of pass@k against k (every run and benchmark) to this path."""

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got '{self.format}'")


def _run(cfg: SummarizeConfig) -> None:
    if not cfg.output_dirs:
        raise ConfigError("give at least one folder: ++output_dirs=[/path/to/output_dir]")
    try:
        summarize_results(
            cfg.output_dirs,
            format=cfg.format,
            all_k=cfg.all_k,
            categories=cfg.categories,
            labels=cfg.labels,
            plot=cfg.plot,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def main(argv=None) -> None:
    run_stage(SummarizeConfig, _run, argv=argv, prog="python -m assay.evaluation.summarize")


if __name__ == "__main__":
    main()
