"""Code grading against a real sandbox server: every failure category on hand-written answers, a few
mlcode tasks (reference passes, null answer fails, reference without imports is missing_import),
the import diagnostic, and the evaluate_results stage grading a file in place."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys

import pytest

from assay.benchmarks.mlcode import build
from assay.evaluation.grade_code import DIAGNOSTIC_IMPORTS, collect_test_names, grade_code_lines

TESTS = """\
def test_small():
    assert solve(2) == 4


def _helper():
    return 3


def test_three():
    assert solve(_helper()) == 9


def test_negative():
    assert solve(-2) == 4
"""

ANSWERS = {
    "pass": ("passes", None, 3, "def solve(x):\n    return x * x\n"),
    "wrong": ("wrong", "wrong_answer", 1, "def solve(x):\n    return x + x\n"),
    "syntax": ("syntax", "syntax_error", 0, "def solve(x:\n    return x * x\n"),
    "indent": ("indentation", "syntax_error", 0, "def solve(x):\n    y = x\n      return y * y\n"),
    "import_at_definition": (
        "nn at class definition",
        "missing_import",
        0,
        "def solve(x):\n    return x * x\n\nclass Net(nn.Module):\n    pass\n",
    ),
    "import_in_call": (
        "math inside the function",
        "missing_import",
        0,
        "def solve(x):\n    return int(math.pow(x, 2))\n",
    ),
    "symbol": ("entry point missing", "missing_symbol", 0, "def square(x):\n    return x * x\n"),
    "crash_in_answer": (
        "example usage crashes",
        "runtime_error",
        0,
        "def solve(x):\n    return x * x\n\nprint(solve('a'))\n",
    ),
    "crash_in_test": (
        "one test raises TypeError, one fails its assert",
        "runtime_error",
        1,
        "def solve(x):\n    if x == 3:\n        return len(x)\n    return x * 2\n",
    ),
    "timeout": (
        "hangs on negatives after two passes",
        "timeout",
        2,
        "def solve(x):\n    while x < 0:\n        pass\n    return x * x\n",
    ),
    "own_tests": (
        "the answer's own test_* never run",
        None,
        3,
        "def solve(x):\n    return x * x\n\ndef test_bogus():\n    assert False\n\n"
        "def test_small():\n    assert False\n",
    ),
    "loud": (
        "lots of output does not hide the result",
        None,
        3,
        "print('x' * 200000)\nimport sys\nprint('y' * 50000, file=sys.stderr)\n\n"
        "def solve(x):\n    print('z' * 30000)\n    return x * x\n",
    ),
}


def fenced(code: str) -> str:
    return f"Here is my solution.\n\n```python\n{code}```\n\nIt squares x."


@pytest.fixture(scope="module")
def graded(sandbox):
    lines = [
        {"id": key, "generation": fenced(code), "entry_point": "solve", "tests": TESTS}
        for key, (_, _, _, code) in ANSWERS.items()
    ]
    lines.append({"id": "no_code", "generation": "I would square it.", "entry_point": "solve", "tests": TESTS})
    lines.append(
        {
            "id": "truncated",
            "generation": "```python\ndef solve(x):\n    return x *",
            "entry_point": "solve",
            "tests": TESTS,
        }
    )
    out = asyncio.run(grade_code_lines(lines, sandbox.url, time_limit=4.0, max_concurrent=2))
    return {line["id"]: line for line in out}


@pytest.mark.parametrize("key", list(ANSWERS))
def test_category(graded, key):
    why, category, passed, code = ANSWERS[key]
    line = graded[key]
    assert line["failure_category"] == category, f"{why}: {line['stderr_tail']}"
    assert line["passed"] is (category is None)
    assert (line["tests_passed"], line["tests_total"]) == (passed, 3), why
    assert line["extracted_code"] == code
    assert "diagnostics" not in line


@pytest.mark.parametrize("key", ["no_code", "truncated"])
def test_no_code(graded, key):
    line = graded[key]
    assert (line["passed"], line["failure_category"], line["extracted_code"]) == (False, "no_code", None)
    assert (line["tests_passed"], line["tests_total"]) == (0, 3)


def test_stderr_tail_names_the_failure(graded):
    assert "NameError: name 'math' is not defined" in graded["import_in_call"]["stderr_tail"]
    assert "SyntaxError" in graded["syntax"]["stderr_tail"]
    assert "test_three" in graded["wrong"]["stderr_tail"] and "AssertionError" in graded["wrong"]["stderr_tail"]
    assert "time limit of 4 s" in graded["timeout"]["stderr_tail"]
    assert "TypeError" in graded["crash_in_test"]["stderr_tail"]
    assert "does not define 'solve'" in graded["symbol"]["stderr_tail"]
    assert graded["pass"]["stderr_tail"] == ""
    assert len(graded["loud"]["stderr_tail"]) <= 2000


def test_grading_keeps_every_other_field(graded):
    assert graded["pass"]["tests"] == TESTS and graded["pass"]["entry_point"] == "solve"


def test_each_sample_gets_a_fresh_session(sandbox):
    polluter = "def solve(x):\n    return x * x\n\nleak = 1\n"
    reader = "def solve(x):\n    return x * x + leak - 1\n"  # NameError if the session were reused
    lines = [
        {"id": i, "generation": fenced(code), "entry_point": "solve", "tests": TESTS}
        for i, code in enumerate([polluter, reader])
    ]
    out = asyncio.run(grade_code_lines(lines, sandbox.url, time_limit=10.0, max_concurrent=1))
    assert out[0]["passed"] and out[1]["failure_category"] == "runtime_error"
    from assay.sandbox.client import SandboxClient

    with SandboxClient(sandbox.url, token="") as client:  # sessions are deleted after grading
        assert not [s for s in client.sessions() if s["session_id"].startswith("grade-")]


def test_test_names_come_from_the_ast_in_order():
    assert collect_test_names(TESTS) == ["test_small", "test_three", "test_negative"]
    assert collect_test_names("import os\nclass test_x:\n    pass\ntest_y = 1\nasync def test_z():\n    pass\n") == [
        "test_z"
    ]


def test_import_diagnostic_is_separate_from_the_official_fields(sandbox):
    missing = "def solve(x):\n    return int(math.pow(x, 2))\n"
    wrong = "def solve(x):\n    return x + x\n"
    lines = [
        {"id": i, "generation": fenced(code), "entry_point": "solve", "tests": TESTS}
        for i, code in enumerate([missing, wrong, "def solve(x):\n    return x * x\n"])
    ]
    out = asyncio.run(grade_code_lines(lines, sandbox.url, time_limit=10.0, max_concurrent=2, inject_imports=True))
    assert (out[0]["passed"], out[0]["failure_category"]) == (False, "missing_import")
    assert out[0]["diagnostics"]["inject_imports"]["passed"] is True
    assert out[1]["diagnostics"]["inject_imports"]["failure_category"] == "wrong_answer"
    assert "diagnostics" not in out[2]  # passed samples are not graded again
    assert out[0]["extracted_code"] == missing and "math" in DIAGNOSTIC_IMPORTS


# ----------------------------------------------------------------------------- mlcode tasks, through the stage

MLCODE_TASKS = ["tensor_ops/masked_mean", "modules/rms_norm", "distributed/all_reduce_mean"]


def _without_imports(code: str) -> str:
    return "".join(line for line in code.splitlines(True) if not re.match(r"(import|from)\s", line))


def test_mlcode_tasks_through_the_evaluate_results_stage(sandbox, tmp_path):
    records = {r["id"]: r for r in build.build_records()}
    lines = []
    for task in MLCODE_TASKS:
        record = records[task]
        null = f"def {record['entry_point']}(*args, **kwargs):\n    raise NotImplementedError\n"
        for variant, code in [
            ("reference", record["reference_solution"]),
            ("null", null),
            ("no_imports", _without_imports(record["reference_solution"])),
        ]:
            lines.append(
                {
                    **record,
                    "variant": variant,
                    "generation": fenced(code),
                    "num_generated_tokens": 10,
                    "generation_time": 1.5,
                }
            )
    # only `dist` missing: the NameError happens inside a forked rank and reaches the grader as the
    # text of the harness's AssertionError
    dist_task = records["distributed/all_reduce_mean"]
    no_dist = dist_task["reference_solution"].replace("import torch.distributed as dist\n", "")
    assert no_dist != dist_task["reference_solution"]
    lines.append({**dist_task, "variant": "no_dist_import", "generation": fenced(no_dist), "generation_time": 1.5})
    folder = tmp_path / "eval-results" / "mlcode"
    folder.mkdir(parents=True)
    path = folder / "output-rs0.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "assay.evaluation.evaluate_results",
            f"++input_files={folder}/output-rs*.jsonl",
            "++grader=code",
            f"++sandbox_url={sandbox.url}",
            "++code.max_concurrent=2",
            "++diagnostics.inject_imports=true",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    graded = [json.loads(line) for line in path.read_text().splitlines()]
    by = {(g["id"], g["variant"]): g for g in graded}
    for task in MLCODE_TASKS:
        ref, null, stripped = by[(task, "reference")], by[(task, "null")], by[(task, "no_imports")]
        assert ref["passed"] and ref["tests_passed"] == ref["tests_total"] >= 2, ref["stderr_tail"]
        assert not null["passed"] and null["failure_category"] == "runtime_error" and null["tests_passed"] == 0
        assert stripped["failure_category"] == "missing_import", stripped["stderr_tail"]
        assert stripped["diagnostics"]["inject_imports"]["passed"] is True, task
        assert ref["prompt"] == records[task]["prompt"] and ref["generation_time"] == 1.5
    no_dist = by[("distributed/all_reduce_mean", "no_dist_import")]
    assert no_dist["failure_category"] == "missing_import"
    assert (
        "AssertionError" in no_dist["stderr_tail"] and "NameError: name 'dist' is not defined" in no_dist["stderr_tail"]
    )
    assert "3/10 passed" in proc.stdout and "4 missing_import" in proc.stdout

    from assay.evaluation.compute_metrics import main as compute_metrics_main

    compute_metrics_main([f"++input_dir={folder}"])
    doc = json.loads((folder / "metrics.json").read_text())
    assert doc["metrics"]["pass@1"]["passed"] == pytest.approx(30.0)
    assert doc["failure_categories"]["missing_import"] == 4 and doc["failure_categories"]["runtime_error"] == 3
    assert doc["diagnostics"]["inject_imports"]["would_pass"] == 4
    assert set(doc["per_category"]) == {"tensor_ops", "modules", "distributed"}
