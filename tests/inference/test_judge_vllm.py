"""The judge grader against a real judge: the embedded model served by vLLM (CPU), through `assay evaluate_results`.

A 135M model is a poor judge, so what is checked is the path, not its verdicts: every answered line was
sent to the judge and has its reply, each line is either judged (a Yes/No verdict) or has its judge failure
recorded, a line with no final answer is not sent, and metrics.json counts the judge's failures apart.
tests/evaluation/test_grader_judge.py drives the verdict rules with a scripted stand-in judge.
"""

from __future__ import annotations

import json

import pytest

from assay.evaluation.graders.judge import parse_verdict
from assay.pipeline.results import evaluate_results


@pytest.mark.timeout(900)
def test_a_real_vllm_judge_grades_each_answer_and_its_failures_are_counted_apart(running_vllm, tmp_path):
    bench = tmp_path / "eval-results" / "omni-math"
    bench.mkdir(parents=True)
    lines = [
        {"id": "a", "problem": "What is 2+2?", "expected_answer": "4", "generation": "So it is \\boxed{4}."},
        {"id": "b", "problem": "What is 3*3?", "expected_answer": "9", "generation": "The answer is \\boxed{6}."},
        {
            "id": "c",
            "problem": "Name the set of roots of x^2=1.",
            "expected_answer": "\\{-1, 1\\}",
            "generation": "x is 1 or -1",
        },
        {"id": "d", "problem": "What is 1+1?", "expected_answer": "2", "generation": "<think>let me see"},
    ]
    (bench / "output-rs0.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    evaluate_results(
        str(bench / "output-rs*.jsonl"),
        "judge",
        ctx=["++judge.model=smollm2", f"++judge.port={running_vllm}", "++judge.tokens_to_generate=64"],
    )
    graded = [json.loads(x) for x in (bench / "output-rs0.jsonl").read_text().splitlines()]
    answered, unanswered = graded[:3], graded[3]
    for line in answered:
        assert line["judge_generation"], line  # the judge was asked and replied
        verdict = parse_verdict(line["judge_generation"])
        assert line["judge_correct"] is bool(verdict)
        assert (verdict is None) == ("judge_error" in line)
    assert unanswered["predicted_answer"] is None and "judge_generation" not in unanswered
    assert not unanswered["judge_correct"] and "judge_error" not in unanswered
    metrics = json.loads((bench / "metrics.json").read_text())
    failures = metrics["judge_failures"]
    assert failures["judged"] == 3
    assert failures["no_verdict"] == sum("judge_error" in line for line in answered)
