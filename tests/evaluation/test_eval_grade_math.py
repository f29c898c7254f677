"""Math grading: normalisation, exact numbers, math-verify equivalence, and a hard deadline that a
pathological answer cannot outlast."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from assay.evaluation.grade_math import MathVerifier, as_number, grade_math_line, math_equal, normalize_math_answer


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(timeout=10.0) as v:
        yield v


@pytest.mark.parametrize(
    "written",
    ["73", "073", "\\boxed{73}", "73.0", "$73$", "73.", "+73", "\\text{73}", " 73 ", "\\(73\\)", "$\\boxed{073}$"],
)
def test_forms_of_73_normalise_to_73(written):
    assert normalize_math_answer(written) == "73"


@pytest.mark.parametrize(
    "written,expected",
    [
        ("1,000", "1000"),
        ("1,2", "1,2"),  # a pair, not a thousands separator
        ("1, 234", "1, 234"),  # a list of two numbers, not 1234
        ("1 000", "1000"),
        ("11,\\! 111,\\! 100", "11111100"),
        ("14{,}916", "14916"),
        ("10\\%", "10"),
        ("$28$ %", "28"),
        ("\\boxed{28} pct", "28"),
        ("185\\", "185"),
        ("4 4/9", "40/9"),
        ("-4 4/9", "-40/9"),
        ("1 000 4/9", "9004/9"),
        ("4 0/9", "4"),
        ("\\begin{bmatrix} 1 & 0 \\\\ 0 & 1 \\end{bmatrix}", "\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}"),
        ("-0.50", "-0.5"),
        (".5", "0.5"),
        ("-0", "0"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("90^\\circ", "90"),
        ("\\left( 1, 2 \\right)", "( 1, 2 )"),
        ("\\text{(B)}", "(B)"),
        ("\\boxed{\\boxed{42}}", "42"),
        ("\\frac{1}{2}\\,", "\\frac{1}{2}"),
        ("\\boxed{1}+\\boxed{2}", "\\boxed{1}+\\boxed{2}"),  # not one wrapper around everything
    ],
)
def test_normalisation(written, expected):
    assert normalize_math_answer(written) == expected


def test_as_number():
    assert as_number("0.5") == as_number("\\frac{1}{2}") == as_number("1/2")
    assert as_number("-\\frac{3}{4}") == as_number("-0.75")
    assert as_number("x") is None and as_number("1/0") is None


def test_numbers_compare_exactly_without_the_worker():
    lazy = MathVerifier(timeout=1.0)  # never started: these never reach math-verify
    assert math_equal("073", 73, lazy)
    assert math_equal("0.5", "\\frac{1}{2}", lazy)
    assert not math_equal("0.333", "\\frac{1}{3}", lazy)
    assert not math_equal("72", "73", lazy)
    assert not math_equal(None, "73", lazy) and not math_equal("", "73", lazy)
    assert lazy._proc is None


@pytest.mark.parametrize(
    "predicted,expected,same",
    [
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
        ("(x+1)^2", "x^2+2x+1", True),
        ("2\\pi", "\\pi \\cdot 2", True),
        ("\\sqrt{8}", "2\\sqrt{2}", True),
        ("\\sqrt{8}", "3\\sqrt{2}", False),
        ("x^2", "x^3", False),
    ],
)
def test_symbolic_equivalence(verifier, predicted, expected, same):
    assert math_equal(predicted, expected, verifier) is same


def test_pathological_answer_hits_the_hard_deadline_and_the_next_call_works():
    """With math-verify's own SIGALRM off, 9^{9^{9^9}} makes sympy compute for minutes: only the
    worker's kill ends it, and the verifier starts a new worker for the next comparison."""
    with MathVerifier(timeout=2.0, library_timeouts=False) as v:
        v.equivalent("1", "1")  # start the worker before timing
        start = time.monotonic()
        assert v.equivalent("1", "9^{9^{9^{9}}}") is None
        assert time.monotonic() - start < 6.0
        assert v.timeouts == 1
        assert v.equivalent("\\frac{1}{2}", "0.5") is True


def test_pathological_answer_with_library_timeouts_is_not_equal(verifier):
    start = time.monotonic()
    assert not math_equal("9^{9^{9^{9}}}", "1", verifier)
    assert time.monotonic() - start < verifier.timeout + 5


def test_grade_math_line_keeps_fields_and_adds_grades(verifier):
    line = {"id": 3, "problem": "p", "expected_answer": 73, "generation": "so $\\boxed{073}$", "extra": [1]}
    out = grade_math_line(line, verifier)
    assert out == {**line, "predicted_answer": "073", "symbolic_correct": True}
    failed = grade_math_line({"expected_answer": "5", "generation": None, "error": "boom"}, verifier)
    assert failed["predicted_answer"] is None and failed["symbolic_correct"] is False
    with pytest.raises(ValueError, match="expected_answer"):
        grade_math_line({"generation": "x"}, verifier)


def test_evaluate_results_math_stage_grades_in_place(tmp_path):
    lines = [
        {"id": 0, "expected_answer": "73", "generation": "Thus \\boxed{73}.", "num_generated_tokens": 5},
        {"id": 1, "expected_answer": "\\frac{1}{2}", "generation": "Final Answer: 0.5", "num_generated_tokens": 6},
        {"id": 2, "expected_answer": "4", "generation": "<think>\\boxed{4}", "num_generated_tokens": 7},
        {
            "id": 3,
            "expected_answer": "10",
            "generation": "\\boxed{11}",
            "num_generated_tokens": 8,
            "predicted_answer": "stale",
            "symbolic_correct": True,
        },
    ]
    path = tmp_path / "output-rs0.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "assay.evaluation.evaluate_results",
            f"++input_files={tmp_path}/output-rs*.jsonl",
            "++grader=math",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2/4 symbolic_correct" in proc.stdout
    graded = [json.loads(x) for x in path.read_text().splitlines()]
    assert [g["symbolic_correct"] for g in graded] == [True, True, False, False]
    assert [g["predicted_answer"] for g in graded] == ["73", "0.5", None, "11"]
    assert [g["num_generated_tokens"] for g in graded] == [5, 6, 7, 8]
    assert not list(tmp_path.glob("*.tmp"))


def test_evaluate_results_rejects_a_glob_that_matches_nothing(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "assay.evaluation.evaluate_results",
            f"++input_files={tmp_path}/*.jsonl",
            "++grader=math",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "matches no file" in proc.stderr
