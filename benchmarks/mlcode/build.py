"""Build `mlcode.jsonl` from the task folders.

    python -m assay.benchmarks.mlcode.build           # write mlcode.jsonl
    python -m assay.benchmarks.mlcode.build --check   # exit 1 if mlcode.jsonl is out of date

Each line holds the fields of one task, in this order: id, category, difficulty, prompt, entry_point,
tests, reference_solution. The prompt is task.yaml's prompt followed by ANSWER_FORMAT; `tests` is
harness/common.py, then the task's own harness files (task.yaml `harness`), then its tests.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TASKS_DIR = HERE / "tasks"
HARNESS_DIR = HERE / "harness"
JSONL_PATH = HERE / "mlcode.jsonl"

CATEGORIES = ("tensor_ops", "modules", "training", "distributed", "debugging", "performance")
DIFFICULTIES = ("easy", "medium", "hard")
FIELDS = ("id", "category", "difficulty", "prompt", "entry_point", "tests", "reference_solution")
_YAML_KEYS = {"id", "category", "difficulty", "entry_point", "prompt", "harness"}

ANSWER_FORMAT = (
    "Answer with a single, standalone Python code block (```python ... ```) that defines `{entry_point}` "
    "and contains every import it needs. The block is run as is on a CPU-only machine with Python 3, "
    "PyTorch 2 and NumPy, and then hidden tests call `{entry_point}`; do not include tests or example usage."
)


def load_task(folder: Path) -> dict:
    """One task as a JSONL record, read from its folder; raises ValueError on a malformed folder."""
    meta = yaml.safe_load((folder / "task.yaml").read_text())
    unknown = set(meta) - _YAML_KEYS
    missing = _YAML_KEYS - {"harness"} - set(meta)
    if unknown or missing:
        raise ValueError(f"{folder}/task.yaml: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    expected_id = f"{folder.parent.name}/{folder.name}"
    if meta["id"] != expected_id or meta["category"] != folder.parent.name:
        raise ValueError(f"{folder}/task.yaml: id must be {expected_id!r} and category {folder.parent.name!r}")
    harness = meta.get("harness") or []
    if isinstance(harness, str):
        harness = [harness]
    harness = ["common", *harness]
    tests = "".join((HARNESS_DIR / f"{name}.py").read_text() + "\n\n" for name in harness)
    tests += (folder / "tests.py").read_text()
    prompt = meta["prompt"].rstrip() + "\n\n" + ANSWER_FORMAT.format(entry_point=meta["entry_point"])
    record = {
        "id": meta["id"],
        "category": meta["category"],
        "difficulty": meta["difficulty"],
        "prompt": prompt,
        "entry_point": meta["entry_point"],
        "tests": tests,
        "reference_solution": (folder / "reference.py").read_text(),
    }
    return {key: record[key] for key in FIELDS}


def build_records(tasks_dir: Path = TASKS_DIR) -> list[dict]:
    """All tasks, sorted by id."""
    folders = [p.parent for p in tasks_dir.glob("*/*/task.yaml")]
    return sorted((load_task(folder) for folder in folders), key=lambda r: r["id"])


def render_jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only verify that mlcode.jsonl is up to date")
    args = parser.parse_args(argv)
    text = render_jsonl(build_records())
    if args.check:
        current = JSONL_PATH.read_text() if JSONL_PATH.exists() else ""
        if current != text:
            print(f"{JSONL_PATH} is out of date: run python -m assay.benchmarks.mlcode.build", file=sys.stderr)
            return 1
        print(f"{JSONL_PATH} is up to date")
        return 0
    JSONL_PATH.write_text(text)
    print(f"wrote {text.count(chr(10))} tasks to {JSONL_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
