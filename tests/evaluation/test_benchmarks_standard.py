"""The standard benchmarks' prepare steps and graders, on small files in each upstream's exact format.

Each file below is written in the upstream's own field names and conventions (GSM8K's `#### <number>`,
MATH's boxed solutions, GPQA's column names, MMLU-Pro's option lists, MBPP's two formats); the problems
themselves are made up for these tests. Preparing goes through `prepare_data(name, data_file=...)`, the
offline path a user takes; grading through the benchmark's own grader.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from assay.benchmarks import hub
from assay.benchmarks.registry import BenchmarkError, get_benchmark, prepare_data
from assay.evaluation.grade_code import grade_code_lines
from assay.evaluation.graders.mcq import grade_mcq_line
from assay.inference.prompt import load_prompt_config


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))


def prepared(tmp_path, name: str, rows: list[dict]) -> list[dict]:
    source = tmp_path / f"{name}-upstream.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    path = prepare_data(name, data_file=str(source))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    prompt = load_prompt_config(get_benchmark(name).prompt_config)
    for line in lines:  # every prepared line fills its benchmark's prompt
        assert prompt.messages(line)[-1]["content"]
    return lines


def test_gsm8k_takes_the_number_after_the_hashes(tmp_path):
    rows = [
        {"question": "Ana has 3 bags of 4 apples. How many apples?", "answer": "3 bags of 4 is <<3*4=12>>12.\n#### 12"},
        {"question": "A car costs 1,250 dollars twice over.", "answer": "2*1250=<<2*1250=2500>>2500\n#### 2,500"},
    ]
    lines = prepared(tmp_path, "gsm8k", rows)
    assert [x["expected_answer"] for x in lines] == ["12", "2500"]
    assert lines[0]["problem"] == rows[0]["question"] and "<<" not in lines[0]["reference_solution"]
    assert lines[1]["id"] == "gsm8k-1"


def test_gsm8k_line_without_a_final_answer_is_a_clear_error(tmp_path):
    with pytest.raises(BenchmarkError, match=r"line 1 .*gsm8k's upstream format .*####"):
        prepared(tmp_path, "gsm8k", [{"question": "q", "answer": "no final line"}])


def test_math500_and_hendrycks_math_in_both_upstream_formats(tmp_path):
    prm = {
        "problem": "What is $\\frac{1}{2}+\\frac{1}{3}$?",
        "solution": "The sum is $\\boxed{\\frac{5}{6}}$.",
        "answer": "\\frac{5}{6}",
        "subject": "Prealgebra",
        "level": 2,
        "unique_id": "test/prealgebra/1.json",
    }
    [line] = prepared(tmp_path, "math-500", [prm])
    assert line["id"] == "test/prealgebra/1.json" and line["expected_answer"] == "\\frac{5}{6}"
    original = {
        "problem": "Find $x$ if $2x=\\sqrt{16}$.",
        "level": "Level 1",
        "type": "Algebra",
        "solution": "We have $2x=4$, so $x=\\boxed{2}$. Check: $\\boxed{2}$ works, so $x = \\boxed{2}$.",
    }
    lines = prepared(tmp_path, "hendrycks_math", [original, prm])
    assert [x["expected_answer"] for x in lines] == ["2", "\\frac{5}{6}"]
    assert lines[0]["subject"] == "Algebra"
    with pytest.raises(BenchmarkError, match="boxed"):
        prepared(tmp_path, "hendrycks_math", [dict(original, solution="no boxed answer")])


def test_amc23_whole_float_answers_lose_their_point(tmp_path):
    rows = [
        {"id": 0, "question": "How many ...?", "answer": 27.0, "url": "https://example.org/p0"},
        {"id": 1, "question": "What ratio ...?", "answer": 2.5, "url": "https://example.org/p1"},
    ]
    lines = prepared(tmp_path, "amc23", rows)
    assert [(x["id"], x["expected_answer"]) for x in lines] == [("amc23-0", "27"), ("amc23-1", "2.5")]


def test_aime_upstream_rows_are_read_too(tmp_path):
    [a24] = prepared(tmp_path, "aime24", [{"id": 60, "problem": "Find n.", "answer": "204", "solution": "..."}])
    [a25] = prepared(tmp_path, "aime25", [{"question": "Find m.", "answer": 70}])
    assert (a24["expected_answer"], a25["expected_answer"], a25["problem"]) == ("204", "70", "Find m.")


def gpqa_row(n: int) -> dict:
    return {
        "Record ID": f"rec{n}",
        "Question": f"Which particle is number {n}?  [title] Physics",
        "Correct Answer": f"the right one {n}",
        "Incorrect Answer 1": f"wrong a {n}",
        "Incorrect Answer 2": f"wrong b {n}",
        "Incorrect Answer 3": f"wrong c {n}",
        "Explanation": "because",
        "Subdomain": "Physics (general)",
    }


def test_gpqa_shuffles_by_question_and_grades_with_the_mcq_grader(tmp_path):
    rows = [gpqa_row(n) for n in range(40)]
    lines = prepared(tmp_path, "gpqa", rows)
    again = prepared(tmp_path, "gpqa", list(reversed(rows)))
    assert {x["id"]: x["expected_answer"] for x in lines} == {x["id"]: x["expected_answer"] for x in again}
    assert len(Counter(x["expected_answer"] for x in lines)) == 4  # spread over A-D, not always one letter
    first = lines[0]
    letter = first["expected_answer"]
    assert first["options"]["ABCD".index(letter)] == "the right one 0"
    assert "  " not in first["problem"] and f"{letter}) the right one 0" in first["problem"]
    right = grade_mcq_line(dict(first, generation=f"It must be this one.\n\\boxed{{{letter}}}"))
    by_text = grade_mcq_line(dict(first, generation="The answer is \\boxed{the right one 0}"))
    wrong_letter = "A" if letter != "A" else "B"
    wrong = grade_mcq_line(dict(first, generation=f"Answer: {wrong_letter}"))
    assert right["symbolic_correct"] and by_text["symbolic_correct"] and not wrong["symbolic_correct"]


def test_mmlu_pro_keeps_upstream_letters_and_checks_them(tmp_path):
    row = {
        "question_id": 70,
        "question": "Which is a prime?",
        "options": ["4", "6", "7", "8", "9", "10", "12", "14", "15", "16"],
        "answer": "C",
        "answer_index": 2,
        "cot_content": "",
        "category": "math",
        "src": "made-up",
    }
    [line] = prepared(tmp_path, "mmlu-pro", [row])
    assert (line["id"], line["expected_answer"], len(line["options"])) == ("mmlu-pro-70", "C", 10)
    assert "J) 16" in line["problem"]
    assert grade_mcq_line(dict(line, generation="So the answer is (C).\n\\boxed{C}"))["symbolic_correct"]
    assert grade_mcq_line(dict(line, generation="\\boxed{K}"))["predicted_answer"] is None  # past the last option
    with pytest.raises(BenchmarkError, match="disagree"):
        prepared(tmp_path, "mmlu-pro", [dict(row, answer="D")])


MBPP_FULL = {
    "task_id": 901,
    "text": "Write a function to return the hypotenuse of a right triangle with legs a and b.",
    "code": "import math\ndef hypotenuse(a, b):\n    return math.sqrt(a * a + b * b)",
    "test_list": [
        "assert hypotenuse(3, 4) == 5",
        "assert math.isclose(hypotenuse(1, 1), 1.4142135623730951)",
        "assert int(hypotenuse(5, 12)) == 13",
    ],
    "test_setup_code": "",
    "challenge_test_list": [],
}
MBPP_SANITIZED = {
    "source_file": "made-up.jsonl",
    "task_id": 902,
    "prompt": "Write a function that returns the sorted unique words of a sentence.",
    "code": "def unique_words(s):\n    return sorted(set(s.split()))",
    "test_imports": ["import collections"],
    "test_list": [
        "assert set(unique_words('b a b')) == set(['a', 'b'])",
        "assert unique_words('') == []",
        "assert collections.Counter(unique_words('x x')) == {'x': 1}",
    ],
}


def fenced(code: str) -> str:
    return f"Here it is:\n```python\n{code}\n```\n"


def test_mbpp_in_both_formats_is_graded_by_its_own_asserts(tmp_path, sandbox):
    full, sanitized = prepared(tmp_path, "mbpp", [MBPP_FULL, MBPP_SANITIZED])
    assert (full["entry_point"], sanitized["entry_point"]) == ("hypotenuse", "unique_words")
    assert full["example_test"] == MBPP_FULL["test_list"][0] and "def test_2():" in full["tests"]
    samples = [
        dict(full, generation=fenced(MBPP_FULL["code"])),
        dict(sanitized, generation=fenced(MBPP_SANITIZED["code"])),
        # the tests import math; an answer that forgot to is still a missing import
        dict(full, generation=fenced("def hypotenuse(a, b):\n    return math.sqrt(a * a + b * b)")),
        dict(sanitized, generation=fenced("def unique_words(s):\n    return s.split()")),
    ]
    graded = asyncio.run(grade_code_lines(samples, sandbox.url, time_limit=20.0, max_concurrent=2))
    assert [g["passed"] for g in graded] == [True, True, False, False], [g["stderr_tail"] for g in graded]
    assert graded[2]["failure_category"] == "missing_import"
    assert graded[3]["failure_category"] == "wrong_answer" and graded[3]["tests_passed"] == 2


def test_a_hub_download_on_a_machine_that_cannot_reach_it_fails_at_once_with_the_offline_way(monkeypatch):
    monkeypatch.setattr(hub, "HUB_HOST", "hub.invalid")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(BenchmarkError, match=r"cannot download mmlu-pro .*hub.invalid.*--data_file="):
        prepare_data("mmlu-pro")
