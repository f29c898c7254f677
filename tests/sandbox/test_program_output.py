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
