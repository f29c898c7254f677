"""livecodebench: upstream lines in LiveCodeBench's exact format, prepared offline and graded in the real sandbox.

The two problems below are written for these tests in the upstream layout (`public_test_cases` as a JSON
string, `private_test_cases` as base64 of zlib of a pickled JSON string, `metadata` as a JSON string): a
stdin problem (AtCoder/Codeforces style) and a functional one (LeetCode style, with starter code).
"""

from __future__ import annotations

import asyncio
import base64
import json
import pickle
import zlib

import pytest

from assay.benchmarks.livecodebench import decode_cases
from assay.benchmarks.registry import BenchmarkError, prepare_data
from assay.evaluation.grade_code import grade_code_lines


def compressed(cases: list[dict]) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


STDIN_ROW = {
    "question_title": "Sum of the list",
    "question_content": "You are given N and N integers. Print their sum.",
    "platform": "atcoder",
    "question_id": "abc900_a",
    "contest_id": "abc900",
    "contest_date": "2024-09-14T00:00:00",
    "starter_code": "",
    "difficulty": "easy",
    "public_test_cases": json.dumps([{"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"}]),
    "private_test_cases": compressed(
        [
            {"input": "1\n-5\n", "output": "-5\n", "testtype": "stdin"},
            {"input": "4\n10 20 30 40\n", "output": "100\n", "testtype": "stdin"},
        ]
    ),
    "metadata": "{}",
}
FUNCTIONAL_ROW = {
    "question_title": "largest-pair-sum",
    "question_content": "Given an integer array nums, return the largest sum of two different elements.",
    "platform": "leetcode",
    "question_id": "9001",
    "contest_id": "weekly-contest-900",
    "contest_date": "2024-10-05T00:00:00",
    "starter_code": "class Solution:\n    def largestPairSum(self, nums: List[int]) -> int:\n        ",
    "difficulty": "medium",
    "public_test_cases": json.dumps([{"input": "[1, 5, 3]", "output": "8", "testtype": "functional"}]),
    "private_test_cases": compressed([{"input": "[-1, -2]", "output": "-3", "testtype": "functional"}]),
    "metadata": json.dumps({"func_name": "largestPairSum"}),
}


def fenced(code: str) -> str:
    return f"Here is my solution.\n\n```python\n{code}```\n"


@pytest.fixture
def prepared(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "livecodebench.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in (STDIN_ROW, FUNCTIONAL_ROW)))
    path = prepare_data("livecodebench", str(source))
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_prepare_decodes_both_kinds_of_problem(prepared):
    stdin, functional = prepared
    assert stdin["id"] == "abc900_a" and "standard input" in stdin["question"] and "tests" not in stdin
    assert stdin["cases"] == [
        {"input": "3\n1 2 3\n", "output": "6\n"},
        {"input": "1\n-5\n", "output": "-5\n"},
        {"input": "4\n10 20 30 40\n", "output": "100\n"},
    ]
    assert functional["entry_point"] == "Solution" and "cases" not in functional
    assert "def largestPairSum(self, nums: List[int])" in functional["question"]
    assert functional["tests"].count("def test_") == 2 and "from typing import *" in functional["code_prefix"]
    assert stdin["code_prefix"] == functional["code_prefix"]


def test_a_pickle_that_names_a_global_is_refused_without_running_it(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    hostile = base64.b64encode(zlib.compress(pickle.dumps(Boom()))).decode()
    with pytest.raises(ValueError, match="plain values only, not builtins.print"):
        decode_cases(hostile)
    row = dict(STDIN_ROW, private_test_cases=hostile)
    source = tmp_path / "hostile.jsonl"
    source.write_text(json.dumps(row) + "\n")
    with pytest.raises(BenchmarkError, match="line 1 is neither.*plain values only"):
        prepare_data("livecodebench", str(source))


STDIN_ANSWERS = {
    "input()": ("n = int(input())\nprint(sum(map(int, input().split())))\n", True, None),
    "main guard, sys.stdin": (
        "import sys\n\ndef main():\n    data = sys.stdin.read().split()\n    print(sum(map(int, data[1:])))\n\n\n"
        "if __name__ == '__main__':\n    main()\n",
        True,
        None,
    ),
    "fast-I/O wrapper replacing sys.stdout": (
        "import os, sys\nfrom io import BytesIO, IOBase\n\nclass Out(IOBase):\n    def __init__(self, f):\n"
        "        self.fd, self.buf = f.fileno(), BytesIO()\n    def write(self, s):\n        self.buf.write(s.encode())\n"
        "    def flush(self):\n        os.write(self.fd, self.buf.getvalue())\n        self.buf = BytesIO()\n\n"
        "sys.stdout = Out(sys.stdout)\nn = int(input())\nprint(sum(map(int, input().split())))\n",
        True,
        None,
    ),
    "deep recursion in a thread, sys.exit(0)": (
        "import sys, threading\nsys.setrecursionlimit(10**6)\nthreading.stack_size(2**26)\n\ndef main():\n"
        "    input()\n    print(sum(map(int, input().split())))\n    sys.stdout.flush()\n\n"
        "t = threading.Thread(target=main)\nt.start()\nt.join()\nsys.exit(0)\n",
        True,
        None,
    ),
    "wrong output": ("n = int(input())\nprint(n)\n", False, "wrong_answer"),
    "right on the public case only": ("print(6)\n", False, "wrong_answer"),
    "sys from the runner's prelude": ("data = sys.stdin.read().split()\nprint(sum(map(int, data[1:])))\n", True, None),
    "forgotten import": ("print(numpy.sum([int(x) for x in open(0).read().split()[1:]]))\n", False, "missing_import"),
    "pow is the builtin": ("input()\nprint(sum(map(int, input().split())) + pow(2, 10, 7) - 2)\n", True, None),
    "atexit writes the buffer": (
        "import atexit, io, sys\nbuf = io.StringIO()\natexit.register(lambda: sys.__stdout__.write(buf.getvalue()))\n"
        "input()\nbuf.write(str(sum(map(int, input().split()))) + '\\n')\n",
        True,
        None,
    ),
    "closes stdout at the end": ("input()\nprint(sum(map(int, input().split())))\nsys.stdout.close()\n", True, None),
    "crash": ("n = int(input())\nprint(1 // (n - n))\n", False, "runtime_error"),
    "sys.exit(1)": ("import sys\nprint(6)\nsys.exit(1)\n", False, "runtime_error"),
    "endless loop": ("while True:\n    pass\n", False, "timeout"),
    "process left running with the right output": (
        "import subprocess\nsubprocess.Popen(['sleep', '30'])\nn = int(input())\nprint(sum(map(int, input().split())))\n",
        False,
        "tampering",
    ),
}


@pytest.mark.timeout(300)
def test_stdin_programs_are_graded_case_by_case(prepared, sandbox):
    stdin_line = prepared[0]
    lines = [dict(stdin_line, id=name, generation=fenced(code)) for name, (code, _, _) in STDIN_ANSWERS.items()]
    graded = asyncio.run(grade_code_lines(lines, sandbox.url, time_limit=3.0, max_concurrent=2))
    got = {g["id"]: (g["passed"], g["failure_category"]) for g in graded}
    assert got == {name: (passed, category) for name, (_, passed, category) in STDIN_ANSWERS.items()}
    by_name = {g["id"]: g for g in graded}
    assert by_name["input()"]["tests_passed"] == by_name["input()"]["tests_total"] == 3
    public_only = by_name["right on the public case only"]
    assert public_only["tests_passed"] == 1 and "case 1: line 1: expected '-5', got '6'" in public_only["stderr_tail"]


@pytest.mark.timeout(300)
def test_leetcode_problems_complete_the_starter_class(prepared, sandbox):
    line = prepared[1]
    right = "class Solution:\n    def largestPairSum(self, nums: List[int]) -> int:\n        a, b = nlargest(2, nums)\n        return a + b\n"
    wrong = "class Solution:\n    def largestPairSum(self, nums: List[int]) -> int:\n        return max(nums)\n"
    other_name = "class Answer:\n    def largestPairSum(self, nums):\n        return 0\n"
    lines = [
        dict(line, id=n, generation=fenced(code))
        for n, code in (("right", right), ("wrong", wrong), ("other", other_name))
    ]
    graded = {g["id"]: g for g in asyncio.run(grade_code_lines(lines, sandbox.url, time_limit=20.0))}
    assert graded["right"]["passed"] and graded["right"]["tests_passed"] == 2
    assert (graded["wrong"]["passed"], graded["wrong"]["failure_category"]) == (False, "wrong_answer")
    assert graded["other"]["failure_category"] == "missing_symbol"
