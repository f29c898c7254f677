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


def test_rate_limits_busy_servers_and_answers_without_choices_are_retried(standin, tmp_path):
    qs = ["limited RATE429:1", "busy BUSY503:2", "empty NOCHOICES:1"]
    inp, out = write_input(tmp_path, qs), tmp_path / "out.jsonl"
    started = time.monotonic()
    run_stage(*stage_argv(standin, inp, out, "++server.max_retries=3"))
    assert time.monotonic() - started >= 1.0  # the 429's Retry-After: 1 was honoured
    lines = {x["question"]: x for x in read(out)}
    seen = stats(standin)["seen"]
    assert all(lines[q]["error"] is None and lines[q]["generation"] == q[::-1] for q in qs)
    assert seen["limited RATE429:1"] == 2 and seen["busy BUSY503:2"] == 3 and seen["empty NOCHOICES:1"] == 2


def test_a_prompt_over_the_context_is_recorded_on_its_line_and_the_stage_goes_on(standin, tmp_path):
    qs = ["fits fine", "enormous TOOLONG", "fits again"]
    inp, out = write_input(tmp_path, qs), tmp_path / "out.jsonl"
    first = run_stage(*stage_argv(standin, inp, out))
    lines = read(out)
    assert [x["error"] for x in lines] == [None, "context_length", None]
    assert lines[1]["finish_reason"] == "context_length" and "maximum model length" in lines[1]["error_detail"]
    assert "failed" not in first.stdout
    assert "nothing to do" in run_stage(*stage_argv(standin, inp, out)).stdout  # not retried on every rerun


def test_tokens_to_generate_beyond_the_context_is_cut_to_what_is_left_with_one_warning(standin, tmp_path):
    qs = ["big budget CTX:100:10", "another big budget CTX:100:30"]
    inp, out = write_input(tmp_path, qs), tmp_path / "out.jsonl"
    proc = run_stage(*stage_argv(standin, inp, out, "++inference.tokens_to_generate=4096"))
    bodies = stats(standin)["bodies"]
    assert bodies[qs[0]]["max_tokens"] == 90 and bodies[qs[1]]["max_tokens"] == 70
    assert proc.stderr.count("does not fit the model's context") == 1
    assert all(x["error"] is None for x in read(out))


def test_tokens_to_generate_beyond_the_whole_context_is_cut_in_two_refusals(standin, tmp_path):
    """vLLM refuses max_tokens over max_model_len before counting the prompt: the client asks for the whole
    context, then for what the prompt leaves (the gpt-oss tutorial's 120000 tokens on a 4096-token model)."""
    qs = ["tutorial budget MAXLEN:100 CTX:100:10"]
    inp, out = write_input(tmp_path, qs), tmp_path / "out.jsonl"
    proc = run_stage(*stage_argv(standin, inp, out, "++inference.tokens_to_generate=120000"))
    assert stats(standin)["bodies"][qs[0]]["max_tokens"] == 90
    assert proc.stderr.count("does not fit the model's context") == 1
    assert read(out)[0]["error"] is None


def test_unset_tokens_to_generate_leaves_the_length_to_the_server(standin, tmp_path):
    inp, out = write_input(tmp_path, ["no budget given"]), tmp_path / "out.jsonl"
    run_stage(*stage_argv(standin, inp, out))
    assert "max_tokens" not in stats(standin)["bodies"]["no budget given"]


def test_a_changed_input_or_config_is_refused_then_overwrite_starts_over(standin, tmp_path):
    inp, out = write_input(tmp_path, ["first version"]), tmp_path / "out.jsonl"
    run_stage(*stage_argv(standin, inp, out))
    inp.write_text(json.dumps({"id": 0, "question": "second version"}) + "\n")
    refused = run_stage(*stage_argv(standin, inp, out), check=False)
    assert refused.returncode == 2 and "the input changed" in refused.stderr and "Traceback" not in refused.stderr
    sampled = run_stage(*stage_argv(standin, inp, out, "++inference.temperature=0.7"), check=False)
    assert "inference.temperature: 0.0 -> 0.7" in sampled.stderr
    run_stage(*stage_argv(standin, inp, out, "++overwrite=true"))
    assert read(out)[0]["generation"] == "second version"[::-1]


def test_a_quick_run_never_passes_for_the_full_one(standin, tmp_path):
    inp, out = write_input(tmp_path, [f"quick {i}" for i in range(5)]), tmp_path / "out.jsonl"
    run_stage(*stage_argv(standin, inp, out, "++max_samples=2"))  # NeMo-Skills' name for num_samples
    assert len(read(out)) == 2
    full = run_stage(*stage_argv(standin, inp, out), check=False)
    assert full.returncode == 2 and "num_samples: 2 -> unset (all)" in full.stderr
    assert len(read(out)) == 2  # nothing lost either


def test_a_partial_of_other_work_is_not_resumed(standin, tmp_path):
    qs = [f"interrupted {i} SLOW:0.2" for i in range(12)]
    inp, out = write_input(tmp_path, qs), tmp_path / "out.jsonl"
    partial = Path(str(out) + ".partial")
    proc = subprocess.Popen(stage_argv(standin, inp, out, "++max_concurrent_requests=2"), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.read_text().count("\n") >= 2):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    changed = run_stage(*stage_argv(standin, inp, out, "++inference.top_p=0.5"), check=False)
    assert changed.returncode == 2 and "has a partial file from other work" in changed.stderr
    assert "inference.top_p: 0.95 -> 0.5" in changed.stderr and partial.exists()


def test_a_second_writer_of_the_same_output_is_refused_naming_the_first(standin, tmp_path):
    inp, out = write_input(tmp_path, [f"locked {i} SLOW:0.3" for i in range(10)]), tmp_path / "out.jsonl"
    first = subprocess.Popen(
        stage_argv(standin, inp, out, "++max_concurrent_requests=1"), stdout=subprocess.PIPE, text=True
    )
    first.stdout.readline()  # "generate: ... to go": the lock is held from before this line to the end
    second = run_stage(*stage_argv(standin, inp, out), check=False)
    assert second.returncode == 4 and f"pid {first.pid}" in second.stderr and "another process" in second.stderr
    first.kill()
    first.wait()


def test_tasks_of_one_process_share_one_in_flight_limit(standin, tmp_path):
    inp = write_input(tmp_path, [f"shared {i} SLOW:0.3" for i in range(8)])
    outs = [tmp_path / "a" / "output-rs0.jsonl", tmp_path / "b" / "output-rs1.jsonl"]
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{standin}/reset_load", method="POST"))
    common = stage_argv(standin, inp, outs[0])
    common = [a for a in common if not a.startswith(("++input_file", "++output_file"))]
    argv = [*common, "++max_concurrent_requests=4", "++inference.temperature=0.5"]
    for seed, out in enumerate(outs):
        argv += ["--task", f"++input_file={inp}", f"++output_file={out}", f"++inference.random_seed={seed}"]
    proc = run_stage(*argv)
    assert stats(standin)["max_in_flight"] == 4  # 16 requests, never more than the one limit at once
    assert all([x["id"] for x in read(out)] == list(range(8)) for out in outs)
    assert proc.stdout.count("wrote 8 lines") == 2


@pytest.mark.parametrize(
    "override, named",
    [
        ("++inference.temperature=-1", "inference.temperature=-1.0 must be 0"),
        ("++inference.top_p=1.5", "inference.top_p=1.5 must be in (0, 1]"),
        ("++inference.tokens_to_generate=-5", "inference.tokens_to_generate=-5"),
        ("++max_failed_fraction=-3", "max_failed_fraction=-3.0 must be in [0, 1]"),
        ("++num_samples=-1", "num_samples=-1 must be at least 1"),
    ],
)
def test_out_of_range_values_are_rejected_with_the_fields_name(standin, tmp_path, override, named):
    inp = write_input(tmp_path, ["never sent"])
    proc = run_stage(*stage_argv(standin, inp, tmp_path / "o.jsonl", override), check=False)
    assert proc.returncode == 2 and named in proc.stderr and "Traceback" not in proc.stderr


def test_the_api_key_goes_to_openai_endpoints_only(standin, tmp_path):
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-secret", "MY_KEY": "other-secret"}
    inp = write_input(tmp_path, ["keyed openai"])
    subprocess.run(stage_argv(standin, inp, tmp_path / "a.jsonl"), env=env, check=True, capture_output=True)
    vllm = [a.replace("server_type=openai", "server_type=vllm") for a in stage_argv(standin, inp, tmp_path / "b.jsonl")]
    inp2 = write_input(tmp_path, ["keyed vllm"])
    subprocess.run([*vllm[:3], f"++input_file={inp2}", *vllm[4:]], env=env, check=True, capture_output=True)
    inp3 = write_input(tmp_path, ["keyed by name"])
    named = [*vllm[:3], f"++input_file={inp3}", *vllm[4:], "++server.api_key_env=MY_KEY"]
    named = [a.replace("b.jsonl", "c.jsonl") for a in named]
    subprocess.run(named, env=env, check=True, capture_output=True)
    auth = stats(standin)["auth"]
    assert auth["keyed openai"] == "Bearer sk-test-secret"
    assert auth["keyed vllm"] is None
    assert auth["keyed by name"] == "Bearer other-secret"


def test_the_api_key_never_travels_over_plain_http_to_another_host(monkeypatch, capsys):
    from assay.inference.config import ServerConfig
    from assay.inference.model_client import auth_headers

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    remote = ServerConfig(model="m", server_type="openai", base_url="http://10.1.2.3:8000/v1")
    assert auth_headers(remote) == {} and "not sending the API key" in capsys.readouterr().err
    assert auth_headers(ServerConfig(model="m", server_type="openai", base_url="https://api.example.com/v1"))
    assert auth_headers(ServerConfig(model="m", server_type="openai", host="127.0.0.1"))


@pytest.mark.parametrize("sig", [signal.SIGUSR2, signal.SIGTERM])
def test_the_time_limit_warning_stops_the_stage_cleanly_and_a_rerun_resumes(standin, tmp_path, sig):
    qs = [f"warned {sig} {i} SLOW:0.2" for i in range(20)]
    inp, out = write_input(tmp_path, qs), tmp_path / "out.jsonl"
    partial = Path(str(out) + ".partial")
    proc = subprocess.Popen(
        stage_argv(standin, inp, out, "++max_concurrent_requests=2"), stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.read_text().count("\n") >= 4):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3 and f"stopped by signal {int(sig)}" in err and "Traceback" not in err
    kept = partial.read_text()
    assert kept.endswith("\n") and not out.exists()
    again = run_stage(*stage_argv(standin, inp, out, "++max_concurrent_requests=2"))
    assert f"{kept.count(chr(10))} done before" in again.stdout
    assert [x["question"] for x in read(out)] == qs
