"""Code execution without servers: block and tool-call parsing, output formatting, harmony rendering, and the
loop's accounting (token budget over turns, the execution limit, sessions) against scripted fakes."""

from __future__ import annotations

import asyncio

import pytest

from assay.core.config import ConfigError, compose_stage_config
from assay.inference import code_execution, harmony
from assay.inference.code_execution import MAX_REFUSED_CALLS, CodeExecutionError, CodeExecutionLoop
from assay.inference.code_execution_output import RESTARTED_NOTE, execution_record, limit_message, shown_output
from assay.inference.code_execution_tags import FencedTags, HarmonyTags, load_code_tags
from assay.inference.config import GenerateConfig, ServerConfig
from assay.inference.model_client import Completion, ContextLengthError, RequestFailedError
from assay.sandbox.client import ExecutionResult, SandboxHTTPError
from assay.sandbox.output import truncation_marker

GENERIC = FencedTags()
GPT_OSS = HarmonyTags()


# ----------------------------------------------------------------------------- generic (fenced) blocks


@pytest.mark.parametrize(
    "text, code, close",
    [
        ("Let me compute.\n```python\nprint(6 * 7)\n```\n", "print(6 * 7)\n", ""),  # vLLM kept the stop string
        ("Let me compute.\n```python\nprint(6 * 7)\n", "print(6 * 7)\n", "```\n"),  # the server cut it off
        ("```python\nprint(6 * 7)", "print(6 * 7)", "\n```\n"),  # cut off, no newline before the fence
        ("```python\nprint(6 * 7)\n```", "print(6 * 7)\n", "\n"),  # closing fence, then end of sequence
        ("```python\nx = 1\n```\n```output\n\n```\nMore:\n```python\nprint(x)\n```\n", "print(x)\n", ""),
    ],
)
def test_a_block_at_the_end_of_the_text_is_pending(text, code, close):
    call = GENERIC.pending_call(text)
    assert call is not None and (call.code, call.close) == (code, close)


@pytest.mark.parametrize(
    "text",
    [
        "The answer is \\boxed{42}.",
        "```python\nprint(6 * 7)\n```\n```output\n42\n```\nThe answer is \\boxed{42}.",  # answered already
        "```python\nprint(6 * 7)\n```\nSo the answer is 42.",  # closed, then the model moved on
        "```python\n```\n",  # an empty block runs nothing
        "A plain block:\n```\n",
    ],
)
def test_no_block_is_pending(text):
    assert GENERIC.pending_call(text) is None


def test_a_stop_at_a_plain_fence_goes_on_and_outputs_are_fenced():
    assert GENERIC.stopped_midway("Here is a table:\n```\n")
    assert not GENERIC.stopped_midway("The answer is 4.")
    call = GENERIC.pending_call("```python\nprint(1)\n```\n")
    assert GENERIC.render_output(call, "1") == "```output\n1\n```\n"
    assert GENERIC.render_output(call, "") == "```output\n```\n"


# ----------------------------------------------------------------------------- what the model sees


def result(status="ok", stdout="", stderr="", value=None, error=None, restarted=False):
    return ExecutionResult(
        status=status,
        stdout=stdout,
        stderr=stderr,
        result=value,
        error=error,
        session_id="s",
        duration=0.25,
        restarted=restarted,
        restart_reason="killed" if restarted else None,
    )


def test_output_joins_streams_value_and_traceback_on_their_own_lines():
    tb = [
        "-" * 75,
        "ZeroDivisionError                         Traceback (most recent call last)",
        "Cell In[2], line 2\n      1 print('hi')\n----> 2 1/0\n",
        "ZeroDivisionError: division by zero",
    ]
    text = shown_output(
        result(
            "error",
            stdout="hi",
            stderr="warn\n",
            error={"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": tb},
        ),
        1000,
    )
    assert text.startswith("hi\nwarn\nZeroDivisionError ")
    assert "----> 2 1/0\n" in text and text.endswith("ZeroDivisionError: division by zero\n")
    assert "-" * 75 not in text
    assert shown_output(result(value="42"), 100) == "42\n"
    assert shown_output(result(), 100) == ""


def test_timeouts_and_restarts_say_so():
    timeout = result(
        "timeout",
        stdout="partial\n",
        error={"ename": "SandboxTimeout", "evalue": "the call exceeded its 1 s timeout", "traceback": []},
    )
    assert shown_output(timeout, 500) == "partial\nSandboxTimeout: the call exceeded its 1 s timeout\n"
    killed = result(
        "killed", error={"ename": "SandboxKilled", "evalue": "memory limit", "traceback": []}, restarted=True
    )
    assert shown_output(killed, 500) == f"SandboxKilled: memory limit\n{RESTARTED_NOTE}\n"


def test_long_output_keeps_head_and_tail_within_the_cap():
    lines = "".join(f"line {i}\n" for i in range(1000))
    text = shown_output(result(stdout=lines, value="THE RESULT"), 200)
    assert text.startswith("line 0\n") and text.endswith("THE RESULT\n")
    assert "...[truncated" in text
    assert len(text) <= 200 + len(truncation_marker(10**6))


def test_records_keep_the_streams_apart():
    rec = execution_record(
        "1/0", "shown", result("error", stdout="x\n", error={"ename": "E", "evalue": "v", "traceback": ["long"]})
    )
    assert rec == {
        "code": "1/0",
        "output": "shown",
        "status": "error",
        "stdout": "x\n",
        "stderr": "",
        "result": None,
        "error": {"ename": "E", "evalue": "v"},
        "duration": 0.25,
    }
    skipped = execution_record("print(1)", limit_message(2))
    assert skipped["status"] == "skipped" and "limit reached: 2 blocks" in skipped["output"]


# ----------------------------------------------------------------------------- harmony


def test_harmony_prompt_has_the_python_tool_and_opens_the_assistant_turn():
    prompt = harmony.render_prompt(
        [
            {"role": "system", "content": "Put the answer in \\boxed{}."},
            {"role": "user", "content": "Example?"},
            {"role": "assistant", "content": "\\boxed{1}"},
            {"role": "user", "content": "What is 2+2?"},
        ],
        reasoning_effort="high",
        python_timeout_s=10,
        current_date="2025-08-05",
    )
    assert prompt == (
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\nCurrent date: 2025-08-05\n\nReasoning: high\n\n# Tools\n\n## python\n\n"
        "Use this tool to execute Python code in your chain of thought. The code will not be shown to the user. "
        "This tool should be used for internal reasoning, but not for code that is intended to be visible to the "
        "user (e.g. when creating plots, tables, or files).\n\nWhen you send a message containing Python code to "
        "python, it will be executed in a stateful Jupyter notebook environment. python will respond with the "
        "output of the execution or time out after 10.0 seconds. The drive at '/mnt/data' can be used to save and "
        "persist user files. Internet access for this session is UNKNOWN. Depends on the cluster.\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
        "<|start|>developer<|message|># Instructions\n\nPut the answer in \\boxed{}.<|end|>"
        "<|start|>user<|message|>Example?<|end|>"
        "<|start|>assistant<|channel|>final<|message|>\\boxed{1}<|end|>"
        "<|start|>user<|message|>What is 2+2?<|end|><|start|>assistant"
    )
    bare = harmony.render_prompt([{"role": "user", "content": "hi"}], python_timeout_s=None, current_date=None)
    assert "# Tools" not in bare and "Current date" not in bare and "Reasoning: medium" in bare


@pytest.mark.parametrize("tools, described", [(None, True), (["python"], True), ([], False), (["browser"], False)])
def test_the_python_tool_is_described_as_builtin_tools_says(tools, described):
    from assay.inference.generate import Renderer

    overrides = ["++input_file=i", "++output_file=o", "++server.model=m", "++prompt_config=gpt-oss/math"]
    if tools is not None:
        overrides.append(f"++chat_template_kwargs.builtin_tools=[{','.join(tools)}]")
    cfg = compose_stage_config(GenerateConfig, overrides)
    prompt = GPT_OSS.render_prompt(Renderer(cfg, chat_template=False), {"problem": "1+1?"}, cfg)
    assert ("## python" in prompt) == described and "<|start|>user<|message|>Solve this problem" in prompt


@pytest.mark.parametrize(
    "generated, code, recipient, channel, close",
    [
        (
            "<|channel|>analysis<|message|>Compute it.<|end|><|start|>assistant<|channel|>analysis to=python code"
            "<|message|>print(2**10)",
            "print(2**10)",
            "python",
            "analysis",
            "<|call|>",
        ),
        ("<|channel|>analysis to=python<|message|>x = 3\nx * x<|call|>", "x = 3\nx * x", "python", "analysis", ""),
        (" to=python<|channel|>analysis code<|message|>print(1)", "print(1)", "python", "analysis", "<|call|>"),
        (
            '<|channel|>commentary to=functions.python <|constrain|>json<|message|>{"code": "print(5)"}',
            "print(5)",
            "functions.python",
            "commentary",
            "<|call|>",
        ),
        (
            "<|channel|>commentary to=functions.python code<|message|>print(6)<|call|>",
            "print(6)",
            "functions.python",
            "commentary",
            "",
        ),
    ],
)
def test_harmony_python_calls_in_their_variants(generated, code, recipient, channel, close):
    call = GPT_OSS.pending_call(generated)
    assert call is not None and call.runnable
    assert (call.code, call.recipient, call.channel, call.close) == (code, recipient, channel, close)


def test_harmony_answers_go_back_from_the_tool_in_the_calls_channel():
    call = GPT_OSS.pending_call('<|channel|>commentary to=functions.python <|constrain|>json<|message|>{"code": "1"}')
    assert GPT_OSS.render_output(call, "1\n") == (
        "<|start|>functions.python to=assistant<|channel|>commentary<|message|>1\n<|end|><|start|>assistant"
    )
    other = GPT_OSS.pending_call("<|channel|>commentary to=functions.lookup <|constrain|>json<|message|>{}")
    assert not other.runnable
    assert "no tool 'functions.lookup'" in GPT_OSS.render_output(other, "")


@pytest.mark.parametrize(
    "generated",
    [
        "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>\\boxed{4}",
        '<|channel|>final <|constrain|>json<|message|>{"answer": 4}<|return|>',
        "<|channel|>analysis to=python code<|message|>print(1)<|end|><|start|>assistant<|channel|>final<|message|>4",
        "<|channel|>analysis<|message|>still thinking",
    ],
)
def test_harmony_text_without_a_pending_call(generated):
    assert GPT_OSS.pending_call(generated) is None


def test_harmony_without_special_tokens_is_a_clear_error():
    with pytest.raises(CodeExecutionError, match="without its special tokens"):
        GPT_OSS.pending_call("analysisWe need 2+2.assistantfinalThe answer is 4.")


def test_harmony_messages_parse_roles_channels_and_terminators():
    msgs = harmony.parse_messages(
        "<|start|>assistant<|channel|>analysis<|message|>a<|end|>"
        "<|start|>python to=assistant<|channel|>analysis<|message|>b<|end|>"
        "<|start|>assistant<|channel|>final<|message|>c"
    )
    assert [(m.role, m.channel, m.recipient, m.content, m.terminator) for m in msgs] == [
        ("assistant", "analysis", None, "a", "<|end|>"),
        ("python", "analysis", "assistant", "b", "<|end|>"),
        ("assistant", "final", None, "c", None),
    ]


# ----------------------------------------------------------------------------- configs


def test_code_tags_load_by_name_and_reject_mistakes(tmp_path):
    assert isinstance(load_code_tags("generic"), FencedTags)
    assert isinstance(load_code_tags("gpt-oss"), HarmonyTags)
    with pytest.raises(ConfigError, match="known: generic, gpt-oss"):
        load_code_tags("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: fenced\ncode_start: '```py'\n")
    with pytest.raises(ConfigError, match="unknown keys \\['code_start'\\]"):
        load_code_tags(str(bad))
    bad.write_text("format: xml\n")
    with pytest.raises(ConfigError, match="format"):
        load_code_tags(str(bad))


def test_code_execution_without_code_tags_is_a_config_error():
    base = ["++input_file=a", "++output_file=b", "++server.model=m", "++code_execution=true"]
    with pytest.raises(ConfigError, match="needs \\+\\+code_tags"):
        compose_stage_config(GenerateConfig, base)
    cfg = compose_stage_config(GenerateConfig, base + ["++code_tags=generic", "++sandbox_url=http://x:1"])
    assert (cfg.code_tags, cfg.sandbox_url) == ("generic", "http://x:1")


# ----------------------------------------------------------------------------- the loop, against fakes


class FakeClient:
    """Answers each completion request with the next scripted (text, tokens, finish_reason)."""

    def __init__(self, turns):
        self.turns = list(turns)
        self.requests = []

    async def complete(self, prompt, body):
        self.requests.append((prompt, body))
        text, tokens, finish = self.turns.pop(0)
        return Completion(text, tokens, finish)


class FakeSandbox:
    url = "http://fake"

    def __init__(self, fail=False):
        self.calls, self.deleted, self.fail = [], [], fail

    async def execute(self, code, session_id=None, timeout=10.0, max_output_chars=10000):
        self.calls.append((code, session_id, timeout, max_output_chars))
        if self.fail:
            raise SandboxHTTPError(503, "too many sessions")
        return result(stdout=f"ran {len(self.calls)}\n")

    async def delete_session(self, session_id):
        self.deleted.append(session_id)
        return True


def make_loop(tags=GENERIC, server_type="vllm", fail=False, **limits):
    cfg = GenerateConfig(
        input_file="in",
        output_file="out",
        code_execution=True,
        code_tags="generic",
        server=ServerConfig(model="m", server_type=server_type),
    )
    for key, value in limits.items():
        setattr(cfg.server.code_execution, key, value)
    sandbox = FakeSandbox(fail)
    return CodeExecutionLoop(cfg, tags, sandbox), sandbox


BLOCK = "```python\nprint(1)\n```\n"


def test_the_token_budget_counts_every_turn():
    loop, sandbox = make_loop()
    client = FakeClient([(BLOCK, 30, "stop"), (BLOCK, 50, "stop"), ("The answer", 20, "length")])
    line = asyncio.run(loop.run(client, "PROMPT", {"max_tokens": 100, "stop": ["\n\n\n"], "temperature": 0.0}))
    assert [body["max_tokens"] for _, body in client.requests] == [100, 70, 20]
    assert client.requests[0][1]["stop"] == ["\n\n\n", "```\n"]  # the user's stop phrases are kept
    assert client.requests[0][1]["include_stop_str_in_output"] is True
    assert client.requests[1][0] == "PROMPT" + BLOCK + "```output\nran 1\n```\n"
    assert line["num_generated_tokens"] == 100 and line["finish_reason"] == "length" and line["truncated"]
    assert len(line["code_executions"]) == 2 and len({c[1] for c in sandbox.calls}) == 1  # one session per sample
    assert sandbox.deleted == [sandbox.calls[0][1]]


def test_a_budget_used_up_by_a_code_turn_ends_the_sample_as_length():
    loop, _ = make_loop()
    client = FakeClient([(BLOCK, 40, "stop")])
    line = asyncio.run(loop.run(client, "P", {"max_tokens": 40}))
    assert len(client.requests) == 1 and line["finish_reason"] == "length" and len(line["code_executions"]) == 1


def test_blocks_past_the_limit_get_a_message_then_the_sample_ends():
    loop, sandbox = make_loop(max_code_executions=2)
    client = FakeClient([(BLOCK, 1, "stop")] * (2 + MAX_REFUSED_CALLS + 1))
    line = asyncio.run(loop.run(client, "P", {"max_tokens": 1000}))
    statuses = [e["status"] for e in line["code_executions"]]
    assert statuses == ["ok", "ok"] + ["skipped"] * MAX_REFUSED_CALLS
    assert len(sandbox.calls) == 2 and line["finish_reason"] == "max_code_executions"
    assert line["generation"].count("Code execution limit reached: 2 blocks") == MAX_REFUSED_CALLS


def test_the_model_may_answer_after_the_limit_message():
    loop, _ = make_loop(max_code_executions=1)
    client = FakeClient([(BLOCK, 5, "stop"), (BLOCK, 5, "stop"), ("So \\boxed{1}.", 5, "stop")])
    line = asyncio.run(loop.run(client, "P", {"max_tokens": 1000}))
    assert line["finish_reason"] == "stop" and line["generation"].endswith("So \\boxed{1}.")
    assert [e["status"] for e in line["code_executions"]] == ["ok", "skipped"]


def test_missing_usage_still_spends_the_budget():
    loop, _ = make_loop()
    turn = "x" * 40 + "\n" + BLOCK  # 64 characters: charged 16 tokens
    client = FakeClient([(turn, None, "stop")] * 3)
    line = asyncio.run(loop.run(client, "P", {"max_tokens": 30}))
    assert [body["max_tokens"] for _, body in client.requests] == [30, 14]
    assert line["finish_reason"] == "length" and line["num_generated_tokens"] == 32


def test_a_failing_sandbox_fails_the_sample_not_the_stage(monkeypatch):
    # A full sandbox (503) is waited out, a few attempts here instead of about two minutes; a stand-in
    # sandbox that stays full. The real one is waited out in tests/sandbox/test_code_execution_waits.py.
    monkeypatch.setattr(code_execution, "FULL_SANDBOX_RETRIES", 2)
    monkeypatch.setattr(code_execution, "_retry_delay", lambda attempt, retry_after: 0.0)
    loop, sandbox = make_loop(fail=True)
    with pytest.raises(CodeExecutionError, match="HTTP 503"):
        asyncio.run(loop.run(FakeClient([(BLOCK, 5, "stop")]), "P", {"max_tokens": 100}))
    assert len(sandbox.calls) == 3  # the first attempt and two after waiting
    assert sandbox.deleted == [sandbox.calls[0][1]]  # the failed call may have made the session: it goes too


def test_harmony_requests_keep_special_tokens_and_stop_at_call():
    loop, sandbox = make_loop(tags=GPT_OSS)
    call = "<|channel|>analysis to=python code<|message|>print(1)"
    client = FakeClient([(call, 9, "stop"), ("<|channel|>final<|message|>\\boxed{1}", 4, "stop")])
    line = asyncio.run(loop.run(client, "<|start|>assistant", {"max_tokens": 50}))
    body = client.requests[0][1]
    assert body["skip_special_tokens"] is False and body["stop"] == ["<|call|>", "<|return|>"]
    assert client.requests[1][0] == (
        "<|start|>assistant" + call + "<|call|><|start|>python to=assistant"
        "<|channel|>analysis<|message|>ran 1\n<|end|><|start|>assistant"
    )
    assert line["finish_reason"] == "stop" and line["num_generated_tokens"] == 13
    assert line["code_executions"][0]["code"] == "print(1)"


class ContextFullClient(FakeClient):
    """Answers its scripted turns, then says the prompt no longer fits, as ModelClient does (ContextLengthError)."""

    async def complete(self, prompt, body):
        if not self.turns:
            self.requests.append((prompt, body))
            raise ContextLengthError("context_length: This model's maximum context length is 4096 tokens")
        return await super().complete(prompt, body)


def test_outputs_that_fill_the_context_end_the_sample_as_length():
    loop, _ = make_loop()
    line = asyncio.run(loop.run(ContextFullClient([(BLOCK, 5, "stop")]), "P", {"max_tokens": 100}))
    assert line["finish_reason"] == "length" and line["generation"].startswith(BLOCK)
    with pytest.raises(RequestFailedError):  # a first request that does not fit is the caller's mistake
        asyncio.run(loop.run(ContextFullClient([]), "P", {"max_tokens": 100}))
