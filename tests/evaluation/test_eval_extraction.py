"""Extraction golden cases (extraction_cases.jsonl): every hard case of math and code answers.

Each line holds a generation, the expected extraction (null = no answer) and why; a failure prints
the why, so a changed rule shows which promise it broke.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.evaluation.extract_code import defines, extract_code, fenced_blocks
from assay.evaluation.extract_math import extract_math_answer, last_boxed
from assay.evaluation.final_answer import final_answer_region

CASES = [json.loads(line) for line in Path(__file__).with_name("extraction_cases.jsonl").read_text().splitlines()]


def test_the_golden_file_is_large_and_ids_are_unique():
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))
    assert sum(c["kind"] == "math" for c in CASES) >= 20
    assert sum(c["kind"] == "code" for c in CASES) >= 20
    assert any(c["expected"] is None for c in CASES if c["kind"] == "code")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_golden_case(case):
    if case["kind"] == "math":
        got = extract_math_answer(case["generation"])
    else:
        got = extract_code(case["generation"], case.get("entry_point"))
    assert got == case["expected"], case["why"]


def test_code_extraction_never_adds_text():
    """Whatever is extracted is a piece of the (newline-normalised) generation, up to the final newline."""
    for case in CASES:
        if case["kind"] == "code" and case["expected"] is not None:
            text = case["generation"].replace("\r\n", "\n")
            got = extract_code(case["generation"], case.get("entry_point"))
            lines = [line.strip() for line in got.splitlines() if line.strip()]
            assert all(line in text for line in lines), case["id"]


def test_last_boxed_handles_a_backslash_linebreak_before_a_closing_brace():
    assert last_boxed(r"\boxed{\begin{matrix}1\\2\\\end{matrix}}") == r"\begin{matrix}1\\2\\\end{matrix}"


def test_boxed_prefix_of_another_command_is_not_a_box():
    assert last_boxed(r"\boxedtext{3}") is None


def test_unterminated_block_is_reported_incomplete():
    blocks = fenced_blocks("```python\nx = 1\n```\n```python\ny = 2\n")
    assert [b.complete for b in blocks] == [True, False]


def test_defines_falls_back_to_a_def_line_when_the_code_does_not_parse():
    assert defines("def solve(x:\n    pass\n", "solve")
    assert not defines("def solver(x:\n", "solve")


def test_whitespace_only_final_answer_is_no_answer():
    assert final_answer_region("<think>a</think>\n  \n") is None


@pytest.mark.parametrize(
    "generation, answer",
    [
        ("Final Answer: The final answer is $12,000,023$. I hope it is correct. Note: ask me more!", "12,000,023"),
        ("Final Answer: 19. <|im_start|>user\nAnother question", "19"),
        ("Final Answer: The largest $n$ is 34.", "34"),
        ("Final Answer: The volume of $ABCDEFGH$ is $120$", "120"),
        ("Final Answer: x is not 5", "x is not 5"),  # a negation is not a value
        ("Final Answer: The bakery sold 42 loaves on Monday.", "42"),  # prose with one number gives it
        ("Final Answer: we never reach 7 steps", "we never reach 7 steps"),  # negated prose does not
        ("Final Answer: the trains meet after 2 or 3 hours", "the trains meet after 2 or 3 hours"),  # two numbers
    ],
)
def test_final_answer_lines_lose_what_follows_the_answer(generation, answer):
    assert extract_math_answer(generation) == answer


def test_an_end_of_turn_token_ends_the_final_answer():
    assert final_answer_region("The answer is 7.<|im_end|>\n<|im_start|>user\n\\boxed{9}") == "The answer is 7."
    assert final_answer_region("<|eot_id|>") is None
