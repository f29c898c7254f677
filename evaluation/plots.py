"""Pictures of results: pass@k against k (summarize_results --plot) and pass@1 against the training step
(the checkpoint sweep). Users would rather look than read.

Both read only what metrics.json and checkpoint_sweep.json already hold, so a picture always agrees with
its table. matplotlib draws them off-screen (the Agg backend: no display needed on a cluster node), and is
imported only when a picture is asked for.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Optional

_PASS_AT_K = re.compile(r"^pass@(\d+)$")


def pass_at_k_points(doc: dict) -> list[tuple[int, float]]:
    """(k, pass@k) of one benchmark's metrics document, in k order (pass@1[avg-of-n] is not a pass@k)."""
    key = doc["correct_key"]
    points = []
    for mode, row in doc.get("metrics", {}).items():
        match = _PASS_AT_K.match(mode)
        if match and isinstance(row, dict) and row.get(key) is not None:
            points.append((int(match.group(1)), float(row[key])))
    return sorted(points)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pass_at_k(runs: Mapping[str, Mapping[str, dict]], path: str | Path) -> Path:
    """One line per (run, benchmark): pass@k against k, on a log2 axis; `runs` maps a run's label to its
    benchmarks' metrics documents (a single run may be labelled "")."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    drawn = 0
    for label, docs in runs.items():
        for name, doc in sorted(docs.items()):
            points = pass_at_k_points(doc)
            if not points:
                continue
            ks, values = zip(*points)
            axes.plot(ks, values, marker="o", label=f"{label} {name}".strip())
            drawn += 1
    if not drawn:
        plt.close(figure)
        raise ValueError("no pass@k values to plot (the metrics have no pass@k rows)")
    axes.set_xscale("log", base=2)
    axes.set_xlabel("k (samples per problem)")
    axes.set_ylabel("pass@k (%)")
    axes.set_title("pass@k against k")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, plt, path)


def plot_sweep(result: dict, path: str | Path) -> Optional[Path]:
    """pass@1 against the training step, one line per benchmark, the best checkpoint marked; None when no
    checkpoint has a score yet."""
    rows = [row for row in result["rows"] if row["benchmarks"]]
    names = sorted({name for row in rows for name in row["benchmarks"]})
    series = {
        name: [
            (row["step"], row["benchmarks"][name]["pass@1"])
            for row in rows
            if row["benchmarks"].get(name, {}).get("pass@1") is not None
        ]
        for name in names
    }
    if not any(series.values()):
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, points in series.items():
        if points:
            steps, values = zip(*points)
            axes.plot(steps, values, marker="o", label=name)
    best = next((row for row in rows if row["checkpoint"] == result.get("best")), None)
    if best is not None:
        axes.axvline(best["step"], linestyle="--", color="grey", label=f"best: {best['checkpoint']}")
    axes.set_xlabel("training step")
    axes.set_ylabel("pass@1 (%)")
    axes.set_title("pass@1 against the training step")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, plt, path)


def _save(figure, plt, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp.png")
    figure.tight_layout()
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    temporary.replace(target)  # a reader never sees half a picture
    return target
