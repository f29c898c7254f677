"""recipes/mlcode_clean_sft.py end to end, small, with every component real: data cleaning with the embedded
model's tokenizer -> 4 LoRA steps with a checkpoint every 2 (merged for serving) -> the base model and both
checkpoints served by vLLM (CPU build) on a slice of mlcode, graded in the sandbox -> the sweep table."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "mlcode_clean_sft.py"


# The recipe's own bound is the subprocess timeout below; pytest's default 600 s cut it first.
@pytest.mark.timeout(1800)
def test_the_recipe_cleans_trains_evaluates_every_checkpoint_and_prints_the_table(
    tmp_path, smollm2_dir, vllm_cpu_python, monkeypatch
):
    monkeypatch.setenv("ASSAY_VLLM_PYTHON", vllm_cpu_python)
    out = tmp_path / "clean_sft"
    proc = subprocess.run(
        [
            sys.executable,
            str(RECIPE),
            f"--output_dir={out}",
            "--max_steps=4",
            "--save_steps=2",
            "--eval_samples=4",
            "--tokens_to_generate=128",
            "--cpu_threads=1",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    report = json.loads((out / "data" / "train.report.json").read_text())
    assert report["kept"] == 33 and report["removed"]["contaminated"] == 3  # recipes/data/README.md's figures
    assert sorted(p.name for p in (out / "sft" / "merged").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    steps = [json.loads(line)["step"] for line in (out / "sft" / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]

    sweep = json.loads((out / "eval" / "checkpoint_sweep.json").read_text())
    assert [(r["step"], r["checkpoint"]) for r in sweep["rows"]] == [
        (0, "smollm2"),
        (2, "checkpoint-2"),
        (4, "checkpoint-4"),
    ]
    for row in sweep["rows"]:
        mlcode = row["benchmarks"]["mlcode"]
        assert mlcode["samples"] == 4 and mlcode["pass@1"] is not None
        graded = [
            json.loads(line)
            for line in (Path(row["path"]) / "eval-results" / "mlcode" / "output-rs0.jsonl").read_text().splitlines()
        ]
        assert len(graded) == 4 and all("passed" in line and "failure_category" in line for line in graded)
        # each failure is explained by the taxonomy, and the table counts them all
        assert sum(mlcode["failures"].values()) == sum(not line["passed"] for line in graded)
    table = proc.stdout[proc.stdout.rindex("step | checkpoint") :]
    assert "checkpoint-2" in table and "checkpoint-4" in table and "\nbest: " in table, table
