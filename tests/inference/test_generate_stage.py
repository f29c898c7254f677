"""The generation stage against an OpenAI-compatible stand-in: ordering, retries, recorded failures, resume.

The stand-in (openai_standin.py) produces the errors real servers cannot produce on demand; the same
stage runs against real vLLM in test_vllm_cpu_server.py.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def standin(standin_port):
    return standin_port


def stats(port):
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats"))


def write_input(tmp_path, questions):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": i, "question": q}) + "\n" for i, q in enumerate(questions)))
    return path


def stage_argv(port, inp, out, *extra):
    return [
        sys.executable,
        "-m",
        "assay.inference.generate",
        f"++input_file={inp}",
        f"++output_file={out}",
        "++server.model=standin",
        "++server.server_type=openai",
        f"++server.port={port}",
        *extra,
    ]


def run_stage(*argv, check=True):
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def read(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_every_line_is_answered_in_input_order_with_its_fields(standin, tmp_path):
    questions = [f"question number {i} SLOW:{0.05 * (9 - i):.2f}" for i in range(10)]  # later ones finish first
    inp, out = write_input(tmp_path, questions), tmp_path / "out.jsonl"
    proc = run_stage(*stage_argv(standin, inp, out, "++max_concurrent_requests=10"))
    lines = read(out)
    assert [x["id"] for x in lines] == list(range(10))
    for line, q in zip(lines, questions):
        assert line["question"] == q and line["generation"] == q[::-1]
        assert line["num_generated_tokens"] == len(q.split()) and line["finish_reason"] == "stop"
        assert line["generation_time"] > 0 and line["error"] is None
    assert not Path(str(out) + ".partial").exists()
    assert "10/10" in proc.stderr  # the progress bar


def test_sampling_parameters_and_extra_fields_reach_the_server(standin, tmp_path):
    inp, out = write_input(tmp_path, ["params check"]), tmp_path / "out.jsonl"
    run_stage(
        *stage_argv(
            standin,
            inp,
            out,
            "++inference.temperature=0.7",
            "++inference.top_p=0.5",
            "++inference.tokens_to_generate=33",
            "++inference.random_seed=5",
            "++inference.extra_body.min_tokens=2",
            "++chat_template_kwargs.reasoning_effort=high",
        )
    )
    body = stats(standin)["bodies"]["params check"]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.7, 0.5, 33, 5)
    assert body["min_tokens"] == 2 and body["chat_template_kwargs"] == {"reasoning_effort": "high"}
    assert body["model"] == "standin" and "top_k" not in body  # OpenAI servers get no vLLM-only knobs


def test_5xx_and_malformed_answers_are_retried_4xx_are_not(standin, tmp_path):
    qs = ["flaky FAIL500:2", "garbled BADJSON:1", "rejected BAD400", "hopeless FAIL500:99"]
    inp, out = write_input(tmp_path, qs), tmp_path / "out.jsonl"
    run_stage(*stage_argv(standin, inp, out, "++server.max_retries=3", "++max_failed_fraction=0.5"))
    lines = {x["question"]: x for x in read(out)}
    seen = stats(standin)["seen"]
    assert lines["flaky FAIL500:2"]["generation"] == "2:005LIAF ykalf" and seen["flaky FAIL500:2"] == 3
    assert lines["garbled BADJSON:1"]["error"] is None and seen["garbled BADJSON:1"] == 2
    assert "HTTP 400" in lines["rejected BAD400"]["error"] and seen["rejected BAD400"] == 1
    assert "gave up after 4 attempts" in lines["hopeless FAIL500:99"]["error"] and seen["hopeless FAIL500:99"] == 4
    assert len(lines) == 4  # failures are recorded, not dropped


def test_kill_9_midway_then_restart_gives_every_line_exactly_once(standin, tmp_path):
    qs = [f"resume item {i} SLOW:0.2" for i in range(24)]
    inp, out = write_input(tmp_path, qs), tmp_path / "out.jsonl"
    partial = Path(str(out) + ".partial")
    proc = subprocess.Popen(
        stage_argv(standin, inp, out, "++max_concurrent_requests=2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (partial.exists() and len(partial.read_text().splitlines()) >= 8):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(partial.read_text().splitlines())
    assert not out.exists() and done_before < 24
    result = run_stage(*stage_argv(standin, inp, out, "++max_concurrent_requests=2"))
    assert f"{done_before} done before" in result.stdout
    lines = read(out)
    assert [x["question"] for x in lines] == qs
    seen = stats(standin)["seen"]
    assert sum(seen[q] for q in qs) <= 24 + 2  # only the requests in flight at the kill were sent twice


def test_a_finished_output_is_not_redone(standin, tmp_path):
    inp, out = write_input(tmp_path, ["once only"]), tmp_path / "out.jsonl"
    run_stage(*stage_argv(standin, inp, out))
    second = run_stage(*stage_argv(standin, inp, out))
    assert "nothing to do" in second.stdout and stats(standin)["seen"]["once only"] == 1


def test_chunks_and_num_samples_select_their_slice(standin, tmp_path):
    inp = write_input(tmp_path, [f"slice {i}" for i in range(7)])
    out = tmp_path / "chunk1.jsonl"
    run_stage(*stage_argv(standin, inp, out, "++chunk_id=1", "++num_chunks=3"))
    assert [x["id"] for x in read(out)] == [3, 4]
    out2 = tmp_path / "first2.jsonl"
    run_stage(*stage_argv(standin, inp, out2, "++num_samples=2"))
    assert [x["id"] for x in read(out2)] == [0, 1]


def test_a_prompt_field_missing_from_the_data_is_a_clear_error(standin, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"problem": "1+1"}) + "\n")
    proc = run_stage(*stage_argv(standin, inp, tmp_path / "o.jsonl"), check=False)
    assert proc.returncode == 2
    assert "needs field(s) question" in proc.stderr and "Traceback" not in proc.stderr


def test_completions_mode_renders_the_models_chat_template(standin, tmp_path, embedded_cache):
    tokenizer = embedded_cache / "models" / "smollm2"
    inp, out = write_input(tmp_path, ["template check"]), tmp_path / "out.jsonl"
    run_stage(
        *stage_argv(
            standin, inp, out, "++use_completions_api=true", f"++tokenizer={tokenizer}", "++system_message=Be brief."
        )
    )
    prompts = [p for p in stats(standin)["bodies"] if "template check" in p]
    assert len(prompts) == 1
    prompt = prompts[0]
    # SmolLM2's template: <|im_start|>role\ncontent<|im_end|>, ending with the assistant turn opened
    assert "<|im_start|>system\nBe brief.<|im_end|>" in prompt
    assert "<|im_start|>user\ntemplate check<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert read(out)[0]["generation"] == prompt[::-1]


def test_failed_requests_fail_the_stage_and_a_rerun_retries_only_them(standin, tmp_path):
    qs = ["fine one", "fine two", "flaky twice FAIL500:2"]
    inp, out = write_input(tmp_path, qs), tmp_path / "out.jsonl"
    first = run_stage(*stage_argv(standin, inp, out, "++server.max_retries=1"), check=False)
    assert first.returncode == 1 and "1 of 3 requests failed" in first.stderr and "Traceback" not in first.stderr
    assert not out.exists()  # never looks complete
    second = run_stage(*stage_argv(standin, inp, out, "++server.max_retries=1"))
    assert "2 done before" in second.stdout
    assert [x["generation"] for x in read(out)] == [q[::-1] for q in qs]
    seen = stats(standin)["seen"]
    assert seen["fine one"] == 1 and seen["flaky twice FAIL500:2"] == 3
