"""The output comparison of program runs (sandbox/program_output.py): pure rules, no sandbox needed."""

from __future__ import annotations

import pytest

from assay.sandbox.program_output import first_difference


@pytest.mark.parametrize(
    "actual, expected",
    [
        ("6\n", "6"),
        ("  6  \r\n", "6\n"),
        ("1 2 3\n4 5\n\n\n", "1 2 3\n4 5"),
        ("1.0 2.50\n", "1 2.5\n"),
        ("Yes\nNo\n", "Yes\r\nNo\r\n"),
        ("1e3\n", "1000\n"),
    ],
)
def test_outputs_that_match(actual, expected):
    assert first_difference(actual, expected) is None


@pytest.mark.parametrize(
    "actual, expected, message",
    [
        ("5\n", "6\n", "line 1: expected '6', got '5'"),
        ("0.333\n", "0.3333\n", "line 1: expected '0.3333', got '0.333'"),
        ("1 2\n", "1 2 3\n", "line 1"),
        ("6\n7\n", "6\n", "expected 1 line(s) of output, got 2"),
        ("yes\n", "Yes\n", "line 1"),
        ("1 2\n", "12\n", "line 1"),
        ("nan\n", "nan2\n", "line 1"),
        ("", "6\n", "line 1: expected '6', got ''"),
    ],
)
def test_outputs_that_differ(actual, expected, message):
    difference = first_difference(actual, expected)
    assert difference is not None and message in difference


def test_program_requests_are_checked_before_anything_runs():
    import json

    from assay.sandbox.app import BadRequest, parse_grade_program
    from assay.sandbox.config import SandboxConfig

    def body(**fields) -> bytes:
        return json.dumps({"answer": "print(1)", **fields}).encode()

    cfg = SandboxConfig()
    with pytest.raises(BadRequest, match="non-empty list"):
        parse_grade_program(body(cases=[]), cfg)
    with pytest.raises(BadRequest, match=r"cases\[0\] needs 'expected_output'"):
        parse_grade_program(body(cases=[{"stdin": ""}]), cfg)
    with pytest.raises(BadRequest, match="lone surrogate"):
        parse_grade_program(body(cases=[{"stdin": "\ud800", "expected_output": "1"}]), cfg)
    args = parse_grade_program(body(cases=[{"stdin": "2", "expected_output": "4"}]), cfg)
    assert args["max_output_chars"] == cfg.max_output_chars and args["timeout"] == cfg.default_timeout
