"""Metrics golden tests: values computed by hand on small arrays (the comments show the arithmetic)."""

from __future__ import annotations

import json
import math
import random

import pytest

from assay.evaluation.compute_metrics import main as compute_metrics_main
from assay.evaluation.metrics import (
    all_fail_at_k,
    compute_benchmark_metrics,
    ks_for,
    majority_credit,
    majority_vote,
    metrics_table,
    pass_at_k,
    seed_files,
)

# seed -> per problem (correct, predicted_answer); 3 seeds x 4 problems
GRID = [
    [(True, "1"), (False, "2"), (False, None), (True, "4")],
    [(True, "1"), (True, "3"), (False, "5"), (False, "x")],
    [(False, "7"), (True, "3"), (False, None), (False, "9")],
]


def math_seeds(grid=GRID, categories=None):
    seeds = []
    for s, row in enumerate(grid):
        lines = []
        for p, (ok, answer) in enumerate(row):
            line = {
                "problem": f"p{p}",
                "expected_answer": "?",
                "symbolic_correct": ok,
                "predicted_answer": answer,
                "num_generated_tokens": 10 * (s + 1),
                "generation_time": [1.0 + p, 2.0, 0.5][s] if s < 3 else 1.0,
            }
            if categories:
                line["category"] = categories[p]
            lines.append(line)
        seeds.append(lines)
    return seeds


def test_pass_at_k_matches_the_binomial_formula():
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(1, 40)
        c = rng.randint(0, n)
        k = rng.randint(1, n)
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_pass_at_k_hand_values():
    assert pass_at_k(3, 1, 2) == pytest.approx(2 / 3)  # 1 - C(2,2)/C(3,2) = 1 - 1/3
    assert pass_at_k(4, 1, 1) == pytest.approx(1 / 4)
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6)  # 1 - C(2,2)/C(4,2) = 1 - 1/6
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # fewer than k wrong samples
    assert all_fail_at_k(3, 2, 1) == pytest.approx(2 / 3)  # C(2,1)/C(3,1)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_pass_at_k_large_n_stays_finite():
    value = pass_at_k(2000, 3, 1000)
    assert 0.0 < value < 1.0 and value == pytest.approx(1 - math.comb(1997, 1000) / math.comb(2000, 1000))


def test_ks_are_powers_of_two_and_n():
    assert ks_for(1) == [1]
    assert ks_for(3) == [1, 2, 3]
    assert ks_for(4) == [1, 2, 4]
    assert ks_for(6) == [1, 2, 4, 6]
    assert ks_for(16) == [1, 2, 4, 8, 16]


def test_the_vote_goes_to_the_first_of_tied_answers_and_the_score_shares_its_credit():
    assert majority_vote(["b", "a"], [False, True]) == ("b", False)  # not the alphabetically first
    assert majority_credit(["b", "a"], [False, True]) == majority_credit(["a", "b"], [True, False]) == 0.5
    assert majority_credit(["a", "b", "b", "a"], [True, False, False, True]) == 0.5
    assert majority_credit(["a", "b", "c"], [True, False, False]) == pytest.approx(1 / 3)
    assert majority_vote([None, "b", "a", "a"], [False, False, True, True]) == ("a", True)  # a clear winner
    assert majority_credit([None, "b", "a", "a"], [False, False, True, True]) == 1.0
    assert majority_vote([None, None], [False, False]) == (None, False)
    assert majority_credit([None, None], [False, False]) == 0.0
    assert majority_vote([None, "c"], [False, True]) == ("c", True)  # no answer never votes


def test_majority_uses_normalised_answers():
    grid = [[(False, "5")], [(True, "073")], [(True, "73.0")], [(True, "\\boxed{73}")], [(False, "5")]]
    table = metrics_table(math_seeds(grid), "math")
    # as strings the first four are 5, 073, 73.0, \boxed{73}: a four-way tie that "5" (seen first) would
    # win; normalised they are 73 three times against 5 once
    assert table["majority@4"]["symbolic_correct"] == 100.0
    assert table["majority@5"]["symbolic_correct"] == 100.0


def test_hand_computed_table():
    table = metrics_table(math_seeds(), "math")
    assert list(table) == [
        "pass@1[avg-of-2]",
        "pass@1[avg-of-3]",
        "majority@2",
        "majority@3",
        "pass@1",
        "pass@2",
        "pass@3",
    ]
    key = "symbolic_correct"
    # per-seed accuracy 2/4, 2/4, 1/4
    assert table["pass@1[avg-of-2]"][key] == pytest.approx(50.0)
    assert table["pass@1[avg-of-2]"][f"{key}_std"] == pytest.approx(0.0)
    assert table["pass@1[avg-of-3]"][key] == pytest.approx(100 * 5 / 12)
    assert table["pass@1[avg-of-3]"][f"{key}_std"] == pytest.approx(
        100 * math.sqrt((2 * (1 / 12) ** 2 + (1 / 6) ** 2) / 2)
    )
    # correct counts per problem c = 2, 2, 0, 1 of n = 3
    assert table["pass@1"][key] == pytest.approx(100 * (2 / 3 + 2 / 3 + 0 + 1 / 3) / 4)
    assert table["pass@2"][key] == pytest.approx(100 * (1 + 1 + 0 + 2 / 3) / 4)
    assert table["pass@3"][key] == pytest.approx(75.0)
    # majority@2: p0 "1" (T), p1 tie 2 (F) / 3 (T) -> 1/2, p2 "5" (F), p3 tie 4 (T) / x (F) -> 1/2
    assert table["majority@2"][key] == pytest.approx(50.0)
    # majority@3: p0 "1" (T), p1 "3" x2 (T), p2 "5" (F), p3 three-way tie, one right -> 1/3
    assert table["majority@3"][key] == pytest.approx(100 * (1 + 1 + 0 + 1 / 3) / 4)
    # no answer: seeds miss 1/4, 0, 1/4; problem p2 lacks an answer in 2 of 3 samples
    assert table["pass@1[avg-of-2]"]["no_answer"] == pytest.approx(12.5)
    assert table["pass@1[avg-of-3]"]["no_answer"] == pytest.approx(100 / 6)
    assert table["pass@1"]["no_answer"] == pytest.approx(100 * (2 / 3) / 4)
    assert table["pass@2"]["no_answer"] == pytest.approx(100 * (1 / 3) / 4)
    assert table["pass@3"]["no_answer"] == 0.0
    assert table["majority@3"]["no_answer"] == 0.0
    # run statistics: tokens 10, 20, 30 per seed; seconds per seed 1+2+3+4, 4*2, 4*0.5
    for row in table.values():
        assert row["num_entries"] == 4
        assert row["avg_tokens"] == pytest.approx(20.0)
        assert row["gen_seconds"] == pytest.approx((10 + 8 + 2) / 3)


def test_problem_nobody_answered_is_no_answer_for_majority():
    grid = [[(False, None), (True, "1")], [(False, None), (True, "1")]]
    table = metrics_table(math_seeds(grid), "math")
    assert table["majority@2"]["no_answer"] == 50.0
    assert table["majority@2"]["symbolic_correct"] == 50.0


def test_single_seed_has_only_pass_at_1():
    table = metrics_table(math_seeds(GRID[:1]), "math")
    assert list(table) == ["pass@1"]
    assert table["pass@1"]["symbolic_correct"] == 50.0


def code_seeds():
    def line(passed, category, diag=None):
        out = {
            "passed": passed,
            "failure_category": category,
            "extracted_code": None if category == "no_code" else "x",
            "num_generated_tokens": 5,
            "generation_time": 1.0,
            "category": "ops" if diag != "dist" else "dist",
        }
        if isinstance(diag, bool):
            out["diagnostics"] = {"inject_imports": {"passed": diag}}
        return out

    return [
        [line(True, None), line(False, "missing_import", True), line(False, "no_code", "dist")],
        [line(False, "wrong_answer", False), line(True, None), line(False, "timeout", "dist")],
    ]


def test_code_metrics_taxonomy_and_diagnostics():
    doc = compute_benchmark_metrics(code_seeds(), benchmark="mlcode")
    assert doc["grader"] == "code" and doc["correct_key"] == "passed"
    assert "majority@2" not in doc["metrics"]
    assert doc["metrics"]["pass@1[avg-of-2]"]["passed"] == pytest.approx(100 / 3)
    assert doc["metrics"]["pass@2"]["passed"] == pytest.approx(200 / 3)  # p0 and p1 solved once each
    assert doc["metrics"]["pass@1[avg-of-2]"]["no_answer"] == pytest.approx(100 / 6)  # 1 of 6 samples
    counts = doc["failure_categories"]
    assert counts["missing_import"] == 1 and counts["wrong_answer"] == 1 and counts["no_code"] == 1
    assert counts["timeout"] == 1 and counts["syntax_error"] == 0 and counts["passed"] == 2 and counts["total"] == 6
    diag = doc["diagnostics"]["inject_imports"]
    assert diag == {
        "regraded": 2,
        "would_pass": 1,
        "passed_official": pytest.approx(100 / 3),
        "passed_with_imports": pytest.approx(50.0),
    }
    assert set(doc["per_category"]) == {"ops", "dist"}
    assert doc["per_category"]["dist"]["pass@2"]["passed"] == 0.0
    assert doc["per_category"]["ops"]["pass@1[avg-of-2]"]["passed"] == pytest.approx(50.0)


def test_per_category_breakdown_for_math():
    doc = compute_benchmark_metrics(math_seeds(categories=["a", "a", "b", "b"]))
    assert doc["per_category"]["a"]["pass@3"]["symbolic_correct"] == 100.0
    assert doc["per_category"]["b"]["pass@3"]["symbolic_correct"] == 50.0
    assert doc["per_category"]["a"]["pass@3"]["num_entries"] == 2


def test_misaligned_seeds_are_rejected():
    seeds = math_seeds()
    seeds[1] = seeds[1][:3]
    with pytest.raises(ValueError, match="different numbers of lines"):
        compute_benchmark_metrics(seeds)


def test_ungraded_lines_are_rejected():
    with pytest.raises(ValueError, match="evaluate_results"):
        compute_benchmark_metrics([[{"generation": "x"}]])


def write_seeds(folder, seeds):
    folder.mkdir(parents=True, exist_ok=True)
    for s, lines in enumerate(seeds):
        (folder / f"output-rs{s}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_seed_files_are_ordered_by_number_and_skip_chunks(tmp_path):
    for name in [
        "output-rs10.jsonl",
        "output-rs2.jsonl",
        "output-rs0_chunk_1.jsonl",
        "output-rs3.jsonl.partial",
        "output-rs1.jsonl",
    ]:
        (tmp_path / name).write_text("")
    assert [p.name for p in seed_files(tmp_path)] == ["output-rs1.jsonl", "output-rs2.jsonl", "output-rs10.jsonl"]


def test_compute_metrics_stage_writes_metrics_json(tmp_path):
    folder = tmp_path / "eval-results" / "tiny"
    write_seeds(folder, math_seeds())
    compute_metrics_main([f"++input_dir={folder}"])
    doc = json.loads((folder / "metrics.json").read_text())
    assert doc["benchmark"] == "tiny" and doc["num_seeds"] == 3
    assert doc["seed_files"] == ["output-rs0.jsonl", "output-rs1.jsonl", "output-rs2.jsonl"]
    assert doc["metrics"]["pass@3"]["symbolic_correct"] == pytest.approx(75.0)
    assert not list(folder.glob("*.tmp"))


def test_compute_metrics_stage_fails_clearly_without_seed_files(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        compute_metrics_main([f"++input_dir={tmp_path}"])
    assert exc.value.code == 2
    assert "no output-rs<seed>.jsonl" in capsys.readouterr().err
