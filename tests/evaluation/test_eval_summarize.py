"""summarize_results: the table of DESIGN.md section 2, per benchmark; several runs side by side."""

from __future__ import annotations

import json

import pytest

from assay.evaluation.metrics import compute_benchmark_metrics
from assay.evaluation.summarize import find_metrics, summarize_results
from assay.evaluation.summarize import main as summarize_main


def seeds(correct_by_seed, answers=None):
    out = []
    for s, row in enumerate(correct_by_seed):
        out.append(
            [
                {
                    "symbolic_correct": ok,
                    "predicted_answer": (answers or {}).get((s, p), str(p)),
                    "num_generated_tokens": 100 + p,
                    "generation_time": 2.0,
                    "category": "alg" if p < 2 else "geo",
                }
                for p, ok in enumerate(row)
            ]
        )
    return out


def write_run(root, benchmark, doc):
    folder = root / "eval-results" / benchmark
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(doc))


@pytest.fixture
def runs(tmp_path):
    base, sft = tmp_path / "base", tmp_path / "sft"
    # 4 problems, 2 seeds; base: 2 + 1 correct, sft: 3 + 3 correct
    write_run(base, "tiny-math", compute_benchmark_metrics(seeds([[1, 1, 0, 0], [1, 0, 0, 0]]), benchmark="tiny-math"))
    write_run(sft, "tiny-math", compute_benchmark_metrics(seeds([[1, 1, 1, 0], [1, 1, 1, 0]]), benchmark="tiny-math"))
    code = [
        [
            {
                "passed": True,
                "failure_category": None,
                "extracted_code": "x",
                "num_generated_tokens": 7,
                "generation_time": 1.0,
            },
            {
                "passed": False,
                "failure_category": "missing_import",
                "extracted_code": "y",
                "num_generated_tokens": 9,
                "generation_time": 1.0,
                "diagnostics": {"inject_imports": {"passed": True}},
            },
        ]
    ]
    write_run(base, "mlcode", compute_benchmark_metrics(code, benchmark="mlcode"))
    return base, sft


def test_single_run_text_table(runs):
    text = summarize_results(str(runs[0]), print_output=False)
    lines = text.splitlines()
    assert "mlcode" in lines[0] and "-----" in lines[0]
    assert lines[1].split(" | ")[0].strip() == "evaluation_mode"
    assert [c.strip() for c in lines[1].split("|")] == [
        "evaluation_mode",
        "num_entries",
        "avg_tokens",
        "gen_seconds",
        "passed",
        "no_answer",
    ]
    assert [c.strip() for c in lines[2].split("|")] == ["pass@1", "2", "8", "2", "50.00%", "0.00%"]
    assert "failures (2 samples): missing_import 1" in text
    assert "diagnostic (not official): with common imports 1 of 1 failed samples pass; passed would be 100.00%" in text
    math_block = text.split("\n\n")[1].splitlines()
    assert "tiny-math" in math_block[0]
    rows = [[c.strip() for c in line.split("|")] for line in math_block[1:]]
    assert rows[0] == ["evaluation_mode", "num_entries", "avg_tokens", "gen_seconds", "symbolic_correct", "no_answer"]
    assert rows[1] == ["pass@1[avg-of-2]", "4", "102", "8", "37.50%", "0.00%"]
    assert rows[2][0] == "majority@2" and rows[3] == ["pass@2", "4", "102", "8", "50.00%", "0.00%"]


def test_all_k_and_categories(runs):
    text = summarize_results(str(runs[0]), all_k=True, categories=True, print_output=False)
    assert "pass@1 " in text and "tiny-math / alg" in text and "tiny-math / geo" in text


def test_markdown_and_json(runs):
    md = summarize_results(str(runs[0]), format="markdown", print_output=False)
    assert "### tiny-math" in md
    assert "| evaluation_mode | num_entries | avg_tokens | gen_seconds | symbolic_correct | no_answer |" in md
    assert "| pass@1[avg-of-2] | 4 | 102 | 8 | 37.50% | 0.00% |" in md
    data = json.loads(summarize_results(str(runs[0]), format="json", print_output=False))
    assert data["tiny-math"]["metrics"]["pass@2"]["symbolic_correct"] == 50.0
    assert list(data["tiny-math"]["metrics"]) == ["pass@1[avg-of-2]", "majority@2", "pass@2"]
    assert data["mlcode"]["failure_categories"]["missing_import"] == 1


def test_side_by_side_comparison(runs):
    base, sft = runs
    text = summarize_results([str(base), str(sft)], print_output=False)
    block = text.split("\n\n")
    math_block = next(b for b in block if "tiny-math" in b.splitlines()[0]).splitlines()
    assert "(symbolic_correct)" in math_block[0]
    assert [c.strip() for c in math_block[1].split("|")] == ["evaluation_mode", "base", "sft"]
    assert [c.strip() for c in math_block[2].split("|")] == ["pass@1[avg-of-2]", "37.50%", "75.00% (+37.50)"]
    code_block = next(b for b in block if "mlcode" in b.splitlines()[0]).splitlines()
    assert [c.strip() for c in code_block[2].split("|")] == ["pass@1", "50.00%", "-"]
    data = json.loads(summarize_results([str(base), str(sft)], format="json", labels=["b", "s"], print_output=False))
    assert data["benchmarks"]["tiny-math"]["pass@2"]["values"] == {"b": 50.0, "s": 75.0}
    assert data["benchmarks"]["tiny-math"]["pass@2"]["diff"] == {"s": 25.0}
    md = summarize_results([str(base), str(sft)], format="markdown", print_output=False)
    assert "| pass@2 | 50.00% | 75.00% (+25.00) |" in md


def test_output_dir_forms(runs):
    base = runs[0]
    assert set(find_metrics(base)) == {"mlcode", "tiny-math"}
    assert set(find_metrics(base / "eval-results")) == {"mlcode", "tiny-math"}
    assert set(find_metrics(base / "eval-results" / "mlcode")) == {"mlcode"}
    with pytest.raises(FileNotFoundError, match="eval-results/<benchmark>/metrics.json"):
        find_metrics(base.parent / "nothing-here")


def test_stage_entry_point(runs, capsys):
    summarize_main([f"++output_dirs=[{runs[0]},{runs[1]}]", "++format=markdown"])
    assert "| evaluation_mode | base | sft |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        summarize_main(["++format=html", f"++output_dirs=[{runs[0]}]"])


def test_plot_draws_pass_at_k_of_every_run_and_benchmark(runs, tmp_path):
    import matplotlib.image

    from assay.evaluation.plots import pass_at_k_points

    base, sft = runs
    doc = find_metrics(sft)["tiny-math"]
    assert pass_at_k_points(doc) == [(1, 75.0), (2, 75.0)]  # pass@1[avg-of-2] is not a point of the curve
    picture = tmp_path / "pics" / "pass_at_k.png"
    text = summarize_results([str(base), str(sft)], print_output=False, plot=str(picture))
    assert text.endswith(f"pass@k against k: {picture}")
    pixels = matplotlib.image.imread(picture)
    assert pixels.shape[0] > 300 and pixels.std() > 0.05
    summarize_main([f"++output_dirs=[{base}]", f"++plot={tmp_path / 'one.png'}"])
    assert (tmp_path / "one.png").read_bytes()[:4] == b"\x89PNG"
