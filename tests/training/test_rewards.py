"""GRPO's rewards: the execution reward runs real code against real tests in the real sandbox; the trace
writes what each reward function gave, under the step it was generated for."""

import json

import pytest
from transformers import TrainerState

from assay.training.rewards import ExecutionReward, FormatReward, RewardTrace, completion_text, format_ok

TESTS = (
    "def test_small():\n    assert add(2, 3) == 5\n\n\ndef test_negative():\n    assert add(-4, 1) == -3\n\n\n"
    "def test_zero():\n    assert add(0, 0) == 0\n"
)
RIGHT = "Here it is:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nIt adds."
HALF = "```python\ndef add(a, b):\n    return abs(a) + b\n```"  # right for non-negative a: 2 of 3 tests
CUT = "```python\ndef add(a, b):\n    return a + b\n```\n\nFor example:\n```python\nprint(add(1,"
CRASH = "```python\ndef add(a, b):\n    return a + b\nraise RuntimeError('at import')\n```"
OTHER_NAME = "```python\ndef plus(a, b):\n    return a + b\n```"


def test_format_reward_wants_a_closed_parseable_block_defining_the_entry_point():
    assert format_ok(RIGHT, "add") and format_ok(HALF, "add")
    assert not format_ok(CUT, "add")  # the last fence never closes: the output was cut
    assert not format_ok(OTHER_NAME, "add")
    assert not format_ok("```python\ndef add(a, b)\n    return a + b\n```", "add")  # does not parse
    assert not format_ok("I would add them.", "add")
    assert format_ok("def add(a, b):\n    return a + b\n", "add")  # bare code is an answer too


def test_chat_completions_are_read_as_their_assistant_text():
    assert completion_text([{"role": "assistant", "content": RIGHT}]) == RIGHT
    assert completion_text(RIGHT) == RIGHT


def test_execution_reward_is_the_fraction_of_tests_passed_in_the_sandbox(sandbox_url):
    reward = ExecutionReward(sandbox_url=sandbox_url, time_limit=20)
    completions = [[{"role": "assistant", "content": text}] for text in (RIGHT, HALF, CUT, CRASH, OTHER_NAME)]
    rewards = reward(completions=completions, entry_point=["add"] * 5, tests=[TESTS] * 5)
    assert rewards == pytest.approx([1.0, 2 / 3, 0.0, 0.0, 0.0])


def trace_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_trace_writes_every_function_and_the_test_outcomes_under_the_next_step(sandbox_url, tmp_path):
    trace = RewardTrace(str(tmp_path), ["execution", "format"], [1.0, 0.5], stop_token_ids={2})
    funcs = [ExecutionReward(trace, sandbox_url), FormatReward(trace)]
    prompts = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Write add(a, b)."}]] * 3
    batch = {
        "prompts": prompts,
        "completions": [RIGHT, HALF, CUT],
        "entry_point": ["add"] * 3,
        "tests": [TESTS] * 3,
        "id": ["t-add"] * 3,
        "row": [0, 0, 0],
        "completion_ids": [[5, 6, 2], [5, 6, 7, 2], [5, 6, 7, 8, 9, 10, 11, 12]],
        "trainer_state": TrainerState(global_step=4),
    }
    for func in funcs:
        func(**batch)
    lines = trace_lines(tmp_path / "rewards" / "step_5.jsonl")  # generated after step 4: trains step 5
    assert [line["rewards"] for line in lines] == [
        {"execution": 1.0, "format": 1.0},
        {"execution": pytest.approx(2 / 3), "format": 1.0},
        {"execution": 0.0, "format": 0.0},
    ]
    assert [line["reward"] for line in lines] == pytest.approx([1.5, 2 / 3 + 0.5, 0.0])
    assert [(line["tests_passed"], line["tests_total"], line["failure_category"]) for line in lines] == [
        (3, 3, None),
        (2, 3, "wrong_answer"),
        (0, 3, "no_code"),
    ]
    assert "test_negative" in lines[1]["stderr_tail"]
    assert [(line["num_tokens"], line["clipped"]) for line in lines] == [(3, False), (4, False), (8, True)]
    assert {(line["step"], line["phase"], line["prompt"], line["id"]) for line in lines} == {
        (5, "train", "Write add(a, b).", "t-add")
    }
    assert lines[2]["completion"] == CUT

    for func in funcs:  # a second batch of the same step appends
        func(**{**batch, "completions": [CRASH] * 3})
    assert len(trace_lines(tmp_path / "rewards" / "step_5.jsonl")) == 6

    again = RewardTrace(str(tmp_path), ["execution"], [1.0], {2})  # a rerun (resume) replaces the step's file
    ExecutionReward(again, sandbox_url)(**batch)
    assert len(trace_lines(tmp_path / "rewards" / "step_5.jsonl")) == 3


def test_trace_files_of_the_preflight_and_of_other_ranks(tmp_path):
    trace = RewardTrace(str(tmp_path), ["format"], [1.0], {2}, rank=1)
    assert trace.path(3).name == "step_3.rank1.jsonl"
    trace.phase = "preflight"
    FormatReward(trace)(
        completions=[RIGHT, "no"], entry_point=["add", "add"], row=[7, 7], trainer_state=TrainerState(global_step=0)
    )
    lines = trace_lines(tmp_path / "rewards" / "preflight.rank1.jsonl")
    assert [(line["step"], line["phase"], line["row"], line["reward"]) for line in lines] == [
        (None, "preflight", 7, 1.0),
        (None, "preflight", 7, 0.0),
    ]


def test_a_function_reporting_twice_for_one_batch_is_an_error(tmp_path):
    trace = RewardTrace(str(tmp_path), ["execution", "format"], [1.0, 1.0], {2})
    fmt = FormatReward(trace)
    fmt(completions=[RIGHT], entry_point=["add"])
    with pytest.raises(RuntimeError, match="reported twice"):
        fmt(completions=[RIGHT], entry_point=["add"])
