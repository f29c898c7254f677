"""The generation stage with code execution, replaying recorded model turns against the real sandbox.

No gpt-oss runs here, so its side is tested with transcripts written in the harmony format (gpt-oss's
raw output as vLLM returns it with skip_special_tokens=false: the `<|call|>` / `<|return|>` that end a
turn are usually left out, sometimes kept). A replay server answers /v1/completions with the next turn
of the transcript whose question is in the prompt, so the test sees every prompt the stage sent: the
harmony rendering, the tool messages, and the generic ```output blocks. The code itself runs in a real
sandbox server, so outputs, errors, timeouts and session state are the service's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from assay.core.config import ConfigError
from assay.inference.code_execution import prepare_code_execution
from assay.inference.config import GenerateConfig, ServerConfig
from assay.pipeline.services import free_port
from assay.sandbox.client import SandboxClient

CALL, START, END = "<|call|>", "<|start|>", "<|end|>"


@dataclass
class Turn:
    text: str
    finish_reason: str = "stop"


class ReplayServer:
    """An OpenAI-compatible /v1/completions that replays scripted turns (in a thread of the test process).

    The transcript is chosen by its question appearing in the prompt; the turn is the first one whose text
    the prompt does not contain yet. Tokens are counted as words; a turn longer than max_tokens is cut there
    and finishes with `length`, as a server would.
    """

    def __init__(self, transcripts: dict[str, list[Turn]]):
        self.transcripts = transcripts
        self.requests: list[tuple[str, int, dict]] = []
        self.port = free_port()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(30)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/completions", self._complete)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    async def _complete(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt = body["prompt"]
        key = next((k for k in self.transcripts if k in prompt), None)
        if key is None:
            return web.Response(status=400, text="no transcript for this prompt")
        turns = self.transcripts[key]
        index = next((i for i, turn in enumerate(turns) if turn.text not in prompt), None)
        if index is None:
            return web.Response(status=400, text=f"transcript {key!r} has no turn left")
        self.requests.append((key, index, body))
        text, finish = turns[index].text, turns[index].finish_reason
        words = text.split(" ")
        if "max_tokens" in body and len(words) > body["max_tokens"]:
            text, finish = " ".join(words[: body["max_tokens"]]), "length"
        choice = {"text": text, "finish_reason": finish, "index": 0}
        return web.json_response({"choices": [choice], "usage": {"completion_tokens": len(text.split(" "))}})

    def prompts(self, key: str) -> list[str]:
        return [body["prompt"] for k, _, body in self.requests if k == key]

    def bodies(self, key: str) -> list[dict]:
        return [body for k, _, body in self.requests if k == key]

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A real sandbox server (one ready kernel, to spare the CPU)."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("sandbox") / "sandbox.log", "wb")
    # ipykernel stops capturing child-process output when it sees PYTEST_CURRENT_TEST.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_SANDBOX_", "PYTEST_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "assay.sandbox.server", "--port", str(port), "--pool-size", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with SandboxClient(url, token="") as client:
            client.wait_until_healthy(120)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()


def live_sessions(url: str) -> list[dict]:
    with SandboxClient(url, token="") as client:
        return client.sessions()


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory) -> Path:
    """A tokenizer folder with a plain chat template, for the generic tags (which render with a chat template)."""
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    folder = tmp_path_factory.mktemp("tiny-tokenizer")
    tokenizer.save_pretrained(folder)
    return folder


def run_stage(server: ReplayServer, sandbox_url: str | None, tmp_path: Path, questions: list[str], *extra: str):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "question": q}) + "\n" for i, q in enumerate(questions)))
    argv = [
        sys.executable,
        "-m",
        "assay.inference.generate",
        f"++input_file={inp}",
        f"++output_file={out}",
        "++server.model=replay",
        f"++server.port={server.port}",
        "++code_execution=true",
        "++inference.tokens_to_generate=2048",
        *extra,
    ]
    if sandbox_url:
        argv.append(f"++sandbox_url={sandbox_url}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_SANDBOX_")}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    lines = {x["question"]: x for x in map(json.loads, out.read_text().splitlines())} if out.exists() else {}
    return proc, lines


def python_answer(output: str, recipient: str = "python", channel: str = "analysis") -> str:
    return f"{START}{recipient} to=assistant<|channel|>{channel}<|message|>{output}{END}{START}assistant"


# ----------------------------------------------------------------------------- gpt-oss (harmony)

PRIMES = "What is the sum of the first 100 prime numbers?"
PRIMES_TURNS = [
    Turn(
        "<|channel|>analysis<|message|>We need the sum of the first 100 primes. Let me list them with python "
        "and check the count first.<|end|><|start|>assistant<|channel|>analysis to=python code<|message|>"
        "primes = []\nk = 2\nwhile len(primes) < 100:\n    if all(k % p for p in primes if p * p <= k):\n"
        "        primes.append(k)\n    k += 1\nprint(len(primes), primes[-1])"
    ),
    Turn(
        "<|channel|>analysis<|message|>100 primes, the last is 541, as expected. Now the sum.<|end|>"
        "<|start|>assistant<|channel|>analysis to=python code<|message|>sum(primes)"
    ),
    Turn(
        "<|channel|>analysis<|message|>The sum is 24133.<|end|><|start|>assistant<|channel|>final<|message|>"
        "The sum of the first 100 primes is \\boxed{24133}."
    ),
]
DIVISORS = "How many positive divisors does 2024 have?"
DIVISORS_TURNS = [
    # the recipient right after the role, before the channel
    Turn(" to=python<|channel|>analysis code<|message|>print(count_divisors(2024))"),
    # a function-style call with JSON arguments, its <|call|> kept by the server
    Turn(
        "<|channel|>analysis<|message|>No such helper; count directly.<|end|><|start|>assistant"
        "<|channel|>commentary to=functions.python <|constrain|>json<|message|>"
        '{"code": "n = 2024\\nprint(sum(1 for d in range(1, n + 1) if n % d == 0))"}' + CALL
    ),
    Turn("<|channel|>final<|message|>2024 = 2^3 * 11 * 23 has \\boxed{16} positive divisors.<|return|>"),
]
HARMONY = [
    "++code_tags=gpt-oss",
    "++use_completions_api=true",
    "++server.server_type=vllm",
    "++chat_template_kwargs.current_date=2025-08-05",
    "++chat_template_kwargs.reasoning_effort=high",
]


def test_harmony_calls_run_in_one_session_per_sample_and_are_answered_by_the_tool(sandbox, tmp_path):
    server = ReplayServer({PRIMES: PRIMES_TURNS, DIVISORS: DIVISORS_TURNS})
    try:
        proc, lines = run_stage(server, sandbox, tmp_path, [PRIMES, DIVISORS], *HARMONY)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]

    first, second, third = server.prompts(PRIMES)
    assert first.startswith(
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\nCurrent date: 2025-08-05\n\nReasoning: high\n\n# Tools\n\n"
        "## python\n\nUse this tool to execute Python code"
    )
    assert first.endswith(f"{END}<|start|>user<|message|>{PRIMES}{END}{START}assistant")
    assert second == first + PRIMES_TURNS[0].text + CALL + python_answer("100 541\n")
    assert third == second + PRIMES_TURNS[1].text + CALL + python_answer("24133\n")  # `primes` outlived its call
    body = server.bodies(PRIMES)[0]
    assert body["skip_special_tokens"] is False and body["stop"] == ["<|call|>", "<|return|>"]

    primes = lines[PRIMES]
    assert primes["error"] is None and primes["finish_reason"] == "stop"
    assert primes["generation"] == third[len(first) :] + PRIMES_TURNS[2].text
    assert [(e["status"], e["output"]) for e in primes["code_executions"]] == [("ok", "100 541\n"), ("ok", "24133\n")]
    assert primes["code_executions"][1]["result"] == "24133"
    words = [len(t.text.split(" ")) for t in PRIMES_TURNS]
    assert primes["num_generated_tokens"] == sum(words)
    assert [b["max_tokens"] for b in server.bodies(PRIMES)] == [2048, 2048 - words[0], 2048 - words[0] - words[1]]

    d_first, d_second, d_third = server.prompts(DIVISORS)
    error_answer = d_second[len(d_first) + len(DIVISORS_TURNS[0].text) + len(CALL) :]
    assert error_answer.startswith(f"{START}python to=assistant<|channel|>analysis<|message|>NameError")
    assert "----> 1 print(count_divisors(2024))" in error_answer
    assert error_answer.endswith(f"NameError: name 'count_divisors' is not defined\n{END}{START}assistant")
    assert d_third == d_second + DIVISORS_TURNS[1].text + python_answer("16\n", "functions.python", "commentary")
    divisors = lines[DIVISORS]
    assert [e["status"] for e in divisors["code_executions"]] == ["error", "ok"]
    assert divisors["code_executions"][0]["error"]["ename"] == "NameError"
    assert divisors["code_executions"][1]["code"] == "n = 2024\nprint(sum(1 for d in range(1, n + 1) if n % d == 0))"

    from assay.evaluation.final_answer import final_answer_region  # the graders read the answer the loop wrote

    assert final_answer_region(primes["generation"]) == "The sum of the first 100 primes is \\boxed{24133}."
    assert "\\boxed{16}" in final_answer_region(divisors["generation"])
    assert live_sessions(sandbox) == []  # every sample's session was deleted


LATTICE = "How many lattice points lie inside the circle of radius 100?"
STRIPPED = "What is 2+2 (a server that strips special tokens)?"


def test_harmony_limit_budget_and_stripped_output(sandbox, tmp_path):
    long_thought = "We count the points with x^2 + y^2 < 10000 by looping over both coordinates. " * 20
    server = ReplayServer(
        {
            PRIMES: PRIMES_TURNS,
            LATTICE: [
                Turn(
                    f"<|channel|>analysis<|message|>{long_thought}<|end|><|start|>assistant"
                    "<|channel|>analysis to=python code<|message|>print(sum(1 for x in range(-100, 101) "
                    "for y in range(-100, 101) if x * x + y * y < 10000))"
                )
            ],
            STRIPPED: [Turn("analysisWe need 2+2.assistantfinalThe answer is 4.")],
        }
    )
    try:
        proc, lines = run_stage(
            server,
            sandbox,
            tmp_path,
            [PRIMES, LATTICE, STRIPPED],
            *HARMONY,
            "++server.code_execution.max_code_executions=1",
            "++inference.tokens_to_generate=150",
            "++max_failed_fraction=0.5",
        )  # the stripped sample is recorded with its error
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    primes = lines[PRIMES]
    assert [e["status"] for e in primes["code_executions"]] == ["ok", "skipped"]
    limit_answer = primes["generation"].split(PRIMES_TURNS[1].text + CALL)[1]
    assert limit_answer.startswith(
        f"{START}python to=assistant<|channel|>analysis<|message|>Code execution limit reached: 1 blocks were run"
    )
    assert primes["finish_reason"] == "stop" and primes["generation"].endswith("\\boxed{24133}.")

    lattice = lines[LATTICE]  # cut by the budget inside its analysis: nothing runs
    assert lattice["finish_reason"] == "length" and lattice["truncated"] and lattice["code_executions"] == []
    assert lattice["num_generated_tokens"] == 150

    stripped = lines[STRIPPED]
    assert stripped["generation"] is None and "without its special tokens" in stripped["error"]
    assert "1 failed requests recorded" in proc.stdout
    assert live_sessions(sandbox) == []


# ----------------------------------------------------------------------------- generic (```python blocks)

FIB = "What is the 20th Fibonacci number?"
FIB_TURNS = [  # as vLLM returns them with include_stop_str_in_output: each ends at the stop string
    Turn(
        "I will define a helper first.\n```python\ndef fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n"
        "        a, b = b, a + b\n    return a\nprint(fib(10))\n```\n"
    ),
    Turn("fib(10) is 55, as expected. Now the 20th:\n```python\nfib(20)\n```\n"),
    Turn("A table of both:\n```\n"),  # a plain fence also matches the stop string: generation goes on
    Turn("n  | fib(n)\n10 | 55\n20 | 6765\n```\n"),
    Turn("The answer is \\boxed{6765}."),
]
SECRET_A, SECRET_B = "Keep the secret alpha.", "Keep the secret beta."


def secret_turns(value: str) -> list[Turn]:
    return [
        Turn(f"```python\nimport time\nsecret = '{value}'\ntime.sleep(0.5)\n```\n"),
        Turn("```python\nprint(secret)\n```\n"),
        Turn(f"Kept {value}."),
    ]


def test_generic_blocks_continue_the_models_own_text(sandbox, tmp_path, tiny_tokenizer):
    server = ReplayServer({FIB: FIB_TURNS, SECRET_A: secret_turns("alpha"), SECRET_B: secret_turns("beta")})
    try:
        proc, lines = run_stage(
            server,
            sandbox,
            tmp_path,
            [FIB, SECRET_A, SECRET_B],
            "++code_tags=generic",
            f"++tokenizer={tiny_tokenizer}",
            "++max_concurrent_requests=3",
            "++prompt_config=generic/default",
        )
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    prompts = server.prompts(FIB)
    assert prompts[0] == f"<|user|>\n{FIB}\n<|assistant|>\n"  # the tokenizer's chat template
    assert prompts[1] == prompts[0] + FIB_TURNS[0].text + "```output\n55\n```\n"
    assert prompts[2] == prompts[1] + FIB_TURNS[1].text + "```output\n6765\n```\n"
    assert prompts[3] == prompts[2] + FIB_TURNS[2].text and prompts[4] == prompts[3] + FIB_TURNS[3].text
    body = server.bodies(FIB)[0]
    assert body["stop"] == ["```\n"] and body["include_stop_str_in_output"] is True
    fib = lines[FIB]
    assert fib["generation"] == prompts[4][len(prompts[0]) :] + FIB_TURNS[4].text
    assert [e["output"] for e in fib["code_executions"]] == ["55\n", "6765\n"]
    assert fib["finish_reason"] == "stop" and fib["error"] is None
    # two samples in flight at once, each with its own session
    assert lines[SECRET_A]["code_executions"][1]["stdout"] == "alpha\n"
    assert lines[SECRET_B]["code_executions"][1]["stdout"] == "beta\n"
    assert live_sessions(sandbox) == []


SIX_SEVEN = "What is 6 times 7?"


def test_generic_blocks_when_the_server_cuts_the_stop_string_and_code_times_out(sandbox, tmp_path, tiny_tokenizer):
    turns = [
        Turn("First the slow way.\n```python\nimport time\ntime.sleep(30)\n"),
        Turn("Too slow. Directly:\n```python\nprint(6 * 7)\n"),
        Turn("The answer is \\boxed{42}."),
    ]
    server = ReplayServer({SIX_SEVEN: turns})
    try:
        proc, lines = run_stage(
            server,
            sandbox,
            tmp_path,
            [SIX_SEVEN],
            "++code_tags=generic",
            f"++tokenizer={tiny_tokenizer}",
            "++server.server_type=openai",
            "++server.code_execution.code_execution_timeout=1",
        )
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "include_stop_str_in_output" not in server.bodies(SIX_SEVEN)[0]  # not an OpenAI field
    line = lines[SIX_SEVEN]
    timeout, ok = line["code_executions"]
    assert timeout["status"] == "timeout" and timeout["output"].startswith("SandboxTimeout: ")
    assert ok["status"] == "ok" and ok["output"] == "42\n"
    assert line["generation"] == (
        turns[0].text
        + "```\n```output\n"
        + timeout["output"]
        + "```\n"
        + turns[1].text
        + "```\n```output\n42\n```\n"
        + turns[2].text
    )


# ----------------------------------------------------------------------------- setup errors


def test_no_sandbox_is_a_clear_error_before_any_request(tmp_path):
    server = ReplayServer({})
    try:
        proc, _ = run_stage(server, None, tmp_path, ["anything"], *HARMONY)
    finally:
        server.stop()
    assert proc.returncode == 2 and "code_execution=true needs a sandbox" in proc.stderr
    assert "Traceback" not in proc.stderr and server.requests == []


def test_a_sandbox_that_does_not_answer_is_a_config_error():
    cfg = GenerateConfig(
        input_file="i",
        output_file="o",
        server=ServerConfig(model="m"),
        code_execution=True,
        code_tags="generic",
        sandbox_url=f"http://127.0.0.1:{free_port()}",
    )
    with pytest.raises(ConfigError, match="does not answer /health"):
        prepare_code_execution(cfg, health_timeout_s=0.5)
