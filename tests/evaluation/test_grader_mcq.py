"""The multiple-choice grader, added as one module (evaluation/graders/mcq.py): which letter a response
chose, grading a file through the real grading stage, and majority@k from the metrics stage."""

from __future__ import annotations

import json

import pytest

from assay.evaluation.compute_metrics import ComputeMetricsConfig, compute_metrics
from assay.evaluation.evaluate_results import EvaluateResultsConfig
from assay.evaluation.evaluate_results import main as evaluate_results_main
from assay.evaluation.graders import GRADERS, get_grader
from assay.evaluation.graders.mcq import extract_choice, letter_of

OPTIONS = ["12", "Paris", "a prime number", "none of these"]


@pytest.mark.parametrize(
    "generation, choice",
    [
        ("Let me think. The capital is Paris.\n\\boxed{B}", "B"),
        ("\\boxed{\\text{(C)}}", "C"),
        ("So we pick... \\boxed{Paris}", "B"),  # the option's text names it
        ("Answer: D", "D"),
        ("The correct option is **A**.", "A"),
        ("After checking each one, the answer is (C) because it has two divisors.", "C"),
        ("Answer: A\n...wait, no. Final answer: (B)", "B"),  # the last statement counts
        ("(C)", "C"),
        ("C.", "C"),
        ("<think>maybe A</think>\nThe answer is D.", "D"),  # the reasoning is not the answer
        ("<think>the answer is A", None),  # never finished thinking
        ("the answer is a prime number of apples", None),  # 'a' is an article, not a choice
        ("A total of 5 apples.", None),
        ("I am not sure.", None),
        ("\\boxed{F}", None),  # past the four options
    ],
)
def test_the_chosen_letter_comes_from_the_final_answer_only(generation, choice):
    assert extract_choice(generation, OPTIONS) == choice


def test_expected_answers_may_be_letters_or_option_text():
    assert letter_of("(b)".upper(), OPTIONS) == "B"
    assert letter_of("a prime number", OPTIONS) == "C"
    assert letter_of("seven", OPTIONS) is None


def test_a_file_is_graded_in_place_and_majority_votes_on_letters(tmp_path, capsys):
    folder = tmp_path / "mcq"
    folder.mkdir()
    problems = [{"id": "q1", "options": OPTIONS, "expected_answer": "B"}, {"id": "q2", "expected_answer": "A"}]
    answers = [["\\boxed{B}", "Answer: C"], ["\\boxed{Paris}", "no idea"], ["Answer: A", "Answer: C"]]
    for seed, per_problem in enumerate(answers):
        lines = [{**p, "generation": g} for p, g in zip(problems, per_problem)]
        (folder / f"output-rs{seed}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    evaluate_results_main([f"++input_files={folder}/output-rs*.jsonl", "++grader=mcq"])
    assert "1/2 symbolic_correct (50.0%)" in capsys.readouterr().out
    graded = [json.loads(x) for x in (folder / "output-rs1.jsonl").read_text().splitlines()]
    assert [(g["predicted_answer"], g["symbolic_correct"], g["id"]) for g in graded] == [
        ("B", True, "q1"),
        (None, False, "q2"),
    ]
    doc = compute_metrics(ComputeMetricsConfig(input_dir=str(folder), grader="mcq"))
    assert doc["grader"] == "mcq" and doc["correct_key"] == "symbolic_correct"
    # q1: B, B, A -> B wins (correct); q2: C, (none), C -> C wins (wrong)
    assert doc["metrics"]["majority@3"]["symbolic_correct"] == pytest.approx(50.0)
    assert doc["metrics"]["majority@3"]["no_answer"] == 0.0
    assert doc["metrics"]["pass@3"]["symbolic_correct"] == pytest.approx(50.0)


def test_a_line_whose_expected_answer_names_no_choice_is_flagged_and_the_others_graded(tmp_path, capsys):
    path = tmp_path / "output-rs0.jsonl"
    lines = [{"expected_answer": "42", "generation": "A"}, {"expected_answer": "A", "generation": "Answer: A"}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    evaluate_results_main([f"++input_files={path}", "++grader=mcq"])
    assert (
        "1/2 symbolic_correct (50.0%); 1 line(s) with an expected_answer that names no choice"
        in capsys.readouterr().out
    )
    first, second = [json.loads(x) for x in path.read_text().splitlines()]
    assert "names no choice" in first["grading_error"] and not first["symbolic_correct"] and second["symbolic_correct"]


def test_a_file_without_expected_answers_is_not_a_multiple_choice_file(tmp_path, capsys):
    path = tmp_path / "output-rs0.jsonl"
    path.write_text(json.dumps({"generation": "A"}) + "\n")
    with pytest.raises(SystemExit):
        evaluate_results_main([f"++input_files={path}", "++grader=mcq"])
    assert "needs 'expected_answer'" in capsys.readouterr().err


def test_it_is_registered_and_unknown_graders_list_the_known_ones():
    assert {"math", "code", "mcq"} <= set(GRADERS.names())
    assert get_grader("mcq").votes and not get_grader("mcq").needs_sandbox
    with pytest.raises(ValueError, match=r"unknown grader 'mcqq'\. Did you mean 'mcq'\?"):
        EvaluateResultsConfig(input_files="x", grader="mcqq")
