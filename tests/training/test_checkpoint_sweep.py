"""The checkpoint sweep: one table over every evaluated checkpoint, the best named, and an eval chained after
the job that writes the checkpoints (the glob is expanded when the deferred job starts).

The table tests read metrics.json files written by the real compute_metrics stage from graded lines;
the chained test uses the OpenAI stand-in server as the endpoint (the same path with a real vLLM server
and real checkpoints is tests/training/test_recipe_clean_sft.py).
"""

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

from assay.core.config import ConfigError
from assay.evaluation.plots import plot_sweep
from assay.pipeline.evaluate import eval as run_eval
from assay.pipeline.evaluate import expand_models
from assay.pipeline.run_cmd import run_cmd
from assay.training.checkpoint_sweep import SWEEP_FILE, SWEEP_PLOT, format_sweep, step_of, sweep


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))


def _graded_code_run(run_dir: Path, outcomes: list[list[str]]) -> None:
    """Write graded mlcode-style seed files (one list of failure categories per seed; 'passed' passes) and
    compute their metrics with the real stage."""
    bench = run_dir / "eval-results" / "mlcode"
    bench.mkdir(parents=True)
    for seed, categories in enumerate(outcomes):
        lines = [
            {
                "id": f"t{i}",
                "category": "tensor_ops",
                "generation": "x",
                "num_generated_tokens": 10,
                "passed": c == "passed",
                "failure_category": None if c == "passed" else c,
                "tests_passed": 1 if c == "passed" else 0,
                "tests_total": 1,
            }
            for i, c in enumerate(categories)
        ]
        (bench / f"output-rs{seed}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    subprocess.run(
        [sys.executable, "-m", "assay.evaluation.compute_metrics", f"++input_dir={bench}", "++benchmark=mlcode"],
        check=True,
        capture_output=True,
    )


def test_table_has_one_row_per_checkpoint_with_taxonomy_and_names_the_best(tmp_path):
    root = tmp_path / "sweep"
    _graded_code_run(root / "smollm2", [["missing_import", "wrong_answer"], ["passed", "wrong_answer"]])
    _graded_code_run(root / "checkpoint-10", [["passed", "syntax_error"], ["passed", "wrong_answer"]])
    _graded_code_run(root / "checkpoint-5", [["passed", "passed"], ["passed", "timeout"]])
    result = sweep(root)
    assert [r["checkpoint"] for r in result["rows"]] == ["smollm2", "checkpoint-5", "checkpoint-10"]
    assert [r["step"] for r in result["rows"]] == [0, 5, 10]
    scores = [r["benchmarks"]["mlcode"]["pass@1"] for r in result["rows"]]
    assert scores == [25.0, 75.0, 50.0]
    assert result["best"] == "checkpoint-5"  # the best checkpoint is not the last one
    assert result["rows"][0]["benchmarks"]["mlcode"]["failures"] == {"missing_import": 1, "wrong_answer": 2}
    text = format_sweep(result)
    header, *rows = text.splitlines()
    assert [c.strip() for c in header.split(" | ")] == [
        "step",
        "checkpoint",
        "mlcode pass@1[avg-of-2]",
        "mlcode failures",
    ], text
    assert "checkpoint-5 *" in rows[1] and "75.00%" in rows[1]
    assert "wrong_answer 2, missing_import 1" in rows[0]
    assert rows[-1] == "best: checkpoint-5 (mean pass@1 75.00% over 1 benchmark)"


def test_ties_go_to_the_earlier_step_and_the_stage_saves_json(tmp_path):
    root = tmp_path / "sweep"
    _graded_code_run(root / "checkpoint-20", [["passed", "wrong_answer"]])
    _graded_code_run(root / "checkpoint-10", [["wrong_answer", "passed"]])
    out = subprocess.run(
        [sys.executable, "-m", "assay.training.checkpoint_sweep", f"++eval_dir={root}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "best: checkpoint-10" in out
    saved = json.loads((root / SWEEP_FILE).read_text())
    assert saved["best"] == "checkpoint-10" and len(saved["rows"]) == 2
    picture = root / SWEEP_PLOT
    assert f"pass@1 against the step: {picture}" in out
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(picture)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500 and pixels.std() > 0.05  # drawn, not blank
    missing = subprocess.run(
        [sys.executable, "-m", "assay.training.checkpoint_sweep", f"++eval_dir={tmp_path}/x"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no evaluated checkpoints" in missing.stderr


def test_no_best_is_named_when_nothing_passed(tmp_path):
    root = tmp_path / "sweep"
    _graded_code_run(root / "smollm2", [["wrong_answer", "no_code"]])
    _graded_code_run(root / "checkpoint-10", [["missing_import", "wrong_answer"]])
    result = sweep(root)
    assert result["best"] is None and [r["mean"] for r in result["rows"]] == [0.0, 0.0]
    text = format_sweep(result)
    assert "*" not in text
    assert (
        text.splitlines()[-1]
        == "best: none (every run scored 0.00% pass@1 on 1 benchmark: nothing to choose between them)"
    )


def test_no_picture_is_drawn_before_any_checkpoint_has_a_score(tmp_path):
    result = {"rows": [{"step": 5, "checkpoint": "checkpoint-5", "benchmarks": {}, "mean": None}], "best": None}
    assert plot_sweep(result, tmp_path / "p.png") is None and not (tmp_path / "p.png").exists()


def test_step_of_labels():
    assert (
        step_of("checkpoint-150") == 150
        and step_of("smollm2") == 0
        and step_of("step-7") == 7
        and step_of("llama3") == 0
    )


def test_a_glob_without_matches_is_an_error_unless_chained(tmp_path):
    with pytest.raises(ConfigError, match="pass run_after"):
        expand_models(f"{tmp_path}/ckpt/checkpoint-*")
    assert expand_models(f"{tmp_path}/ckpt/checkpoint-*", defer_empty=True) is None


@pytest.mark.parametrize("max_parallel_jobs", [None, 1])
def test_eval_chained_after_training_expands_checkpoints_when_they_exist(
    standin_url, tmp_path, capsys, max_parallel_jobs
):
    """With `max_parallel_jobs: 1` too: the deferred job waits for the evals it submits without taking their slot."""
    cluster = "local"
    if max_parallel_jobs:
        cluster = str(tmp_path / "one-at-a-time.yaml")
        Path(cluster).write_text(f"executor: local\nmax_parallel_jobs: {max_parallel_jobs}\n")
    ckpt = tmp_path / "run" / "merged"
    # the "training" job: writes two checkpoint folders, after the eval below was submitted
    run_cmd(
        f"sleep 2 && mkdir -p {ckpt}/checkpoint-4 {ckpt}/checkpoint-8",
        cluster=cluster,
        expname="train",
        output_dir=str(tmp_path / "run"),
        wait=False,
    )
    out = tmp_path / "sweep"
    run_eval(
        cluster=cluster,
        benchmarks="smallmath:1",
        output_dir=str(out),
        model=f"{ckpt}/checkpoint-*",
        server_type="openai",
        server_address=standin_url,
        run_after="train",
        time="10",
    )
    for step in (4, 8):
        assert (out / f"checkpoint-{step}" / "eval-results" / "smallmath" / "metrics.json").is_file()
    saved = json.loads((out / SWEEP_FILE).read_text())
    assert [r["step"] for r in saved["rows"]] == [4, 8]
    text = capsys.readouterr().out
    assert "evaluating 2 model(s)" in text and "\nbest: " in text, text


def test_chained_eval_dry_run_shows_the_deferred_job(tmp_path, capsys):
    run_cmd("true", expname="train", output_dir=str(tmp_path / "run"), dry_run=True)
    run_eval(
        benchmarks="smallmath:1",
        output_dir=str(tmp_path / "sweep"),
        model=f"{tmp_path}/run/checkpoint-*",
        server_type="openai",
        server_address="http://127.0.0.1:1/v1",
        run_after="train",
        dry_run=True,
    )
    text = capsys.readouterr().out
    assert "assay.pipeline.deferred_eval" in text and "matches nothing yet" in text
