"""livecodebench: LiveCodeBench's code-generation problems (LeetCode, AtCoder, Codeforces), release v6.

`assay prepare_data livecodebench` downloads the upstream files of `livecodebench/code_generation_lite`
(test.jsonl ... test6.jsonl, i.e. release_v6) and keeps the problems of contests from 2024-08 to 2025-05,
the window NeMo-Skills evaluates by default (`test_v6_2408_2505`). Offline, `--data_file=` takes a file of
upstream lines as it is, without the date window.

Upstream lines carry `public_test_cases` (a JSON list) and `private_test_cases` (the same list, either as
JSON or as base64 of zlib of a pickled JSON string). The pickle is read by an unpickler that can build
nothing but plain values (no class or function is ever looked up), so a hostile data file cannot run code.

Two kinds of problems, graded as LiveCodeBench's own runner grades them, so that scores compare:
- stdin problems (AtCoder, Codeforces: no starter code): the answer is a program; each test case's input is
  its stdin and its output is compared line by line, numbers by value (sandbox/program_output.py). Field
  `cases`.
- functional problems (LeetCode: starter code, `metadata.func_name`): the answer completes `class Solution`;
  each case is one test calling the method with the case's JSON arguments (one per input line) and comparing
  the result with the JSON output (tuples as lists). Fields `tests`, `entry_point`.
Both run after `code_prefix`, the imports LiveCodeBench's runner gives every program (the standard library's
usual modules, typing's names, a recursion limit of 50000; builtins last, so `math.pow` does not hide `pow`).
Fields: id, question, platform, difficulty, contest_date, code_prefix, and `cases` or `tests`/`entry_point`.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import sys
import urllib.request
import zlib
from typing import Any, Iterator

from ..registry import BENCHMARKS, DOWNLOAD_TIMEOUT_S, Benchmark

SOURCE = "https://huggingface.co/datasets/livecodebench/code_generation_lite/resolve/main/{}"
RELEASE_FILES = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl")
"""release_v6: every file up to the sixth."""
WINDOW = ("2024-08-01", "2025-05-31")
"""Contest dates kept by the download (inclusive): NeMo-Skills' default split."""

PRELUDE = """\
from string import *
from re import *
from datetime import *
from collections import *
from heapq import *
from bisect import *
from copy import *
from math import *
from random import *
from statistics import *
from itertools import *
from functools import *
from operator import *
from io import *
from typing import *
from builtins import *
import string, re, datetime, collections, heapq, bisect, copy, math, random, statistics, itertools, functools
import operator, io, sys, json
sys.setrecursionlimit(50000)
"""
"""What LiveCodeBench's runner puts before every program; the graded program is this, then the answer."""

WITH_STARTER = (
    "Write the solution in Python by completing the starter code below. Answer with the whole class in a "
    "single ```python code block."
)
WITHOUT_STARTER = (
    "Write a Python program that reads the input from standard input, solves the problem and prints the "
    "answer to standard output. Do not hard-code or test on the sample inputs. Answer with the whole program "
    "in a single ```python code block."
)


class _PlainValues(pickle.Unpickler):
    """An unpickler that refuses every global: only strings, numbers, lists and dicts can come out."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"the test cases may hold plain values only, not {module}.{name}")


def decode_cases(field: Any) -> list[dict]:
    """Test cases from an upstream field: a list, a JSON string, or base64(zlib(pickle(JSON string)))."""
    if isinstance(field, list):
        return field
    if not isinstance(field, str):
        raise ValueError(f"test cases must be a list or a string, got {type(field).__name__}")
    try:
        return json.loads(field)
    except json.JSONDecodeError:
        pass
    try:
        raw = zlib.decompress(base64.b64decode(field.encode("ascii"), validate=True))
        text = _PlainValues(io.BytesIO(raw)).load()
    except (pickle.UnpicklingError, zlib.error, EOFError, UnicodeEncodeError) as exc:
        raise ValueError(f"the compressed test cases cannot be read: {exc}") from None
    if not isinstance(text, str):
        raise ValueError(f"the compressed test cases hold a {type(text).__name__}, not a JSON string")
    cases = json.loads(text)
    if not isinstance(cases, list):
        raise ValueError("the test cases are not a list")
    return cases


def question_text(row: dict) -> str:
    starter = (row.get("starter_code") or "").strip("\n")
    if starter:
        return f"{row['question_content'].strip()}\n\n{WITH_STARTER}\n\n```python\n{starter}\n```\n"
    return f"{row['question_content'].strip()}\n\n{WITHOUT_STARTER}\n"


def functional_tests(cases: list[dict], func_name: str) -> str:
    """One `def test_<n>()` per case: the method called with the case's JSON arguments, its result compared."""
    parts = [
        "import json\n\n\n"
        "def _expect(args_text, expected_text):\n"
        "    args = [json.loads(line) for line in args_text.split('\\n') if line.strip()]\n"
        f"    result = Solution().{func_name}(*args)\n"
        "    if isinstance(result, tuple):\n"
        "        result = list(result)\n"
        "    assert result == json.loads(expected_text)\n"
    ]
    for number, case in enumerate(cases):
        parts.append(f"def test_{number}():\n    _expect({case['input']!r}, {case['output']!r})\n")
    return "\n\n".join(parts)


def from_upstream(row: dict, index: int) -> dict:
    cases = decode_cases(row["public_test_cases"]) + decode_cases(row.get("private_test_cases") or [])
    if not cases:
        raise ValueError("the problem has no test cases")
    metadata = row.get("metadata") or {}
    if isinstance(metadata, str):
        metadata = json.loads(metadata or "{}")
    line = {
        "id": str(row.get("question_id", f"livecodebench-{index}")),
        "question": question_text(row),
        "platform": row.get("platform"),
        "difficulty": row.get("difficulty"),
        "contest_date": row.get("contest_date"),
    }
    functional = [case for case in cases if case.get("testtype") == "functional"]
    if functional:
        func_name = metadata.get("func_name")
        if not isinstance(func_name, str) or not func_name.isidentifier():
            raise ValueError("a functional problem needs metadata.func_name")
        line.update(tests=functional_tests(functional, func_name), entry_point="Solution", code_prefix=PRELUDE)
    else:
        line["cases"] = [{"input": str(case["input"]), "output": str(case["output"])} for case in cases]
        line["code_prefix"] = PRELUDE
    return line


def in_window(row: dict) -> bool:
    date = str(row.get("contest_date") or "")[:10]
    return WINDOW[0] <= date <= WINDOW[1]


def stream_rows(url: str) -> Iterator[dict]:
    """The JSON lines of `url` one at a time: the release files are large, and most rows fall outside the window."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        for raw in response:
            if raw.strip():
                yield json.loads(raw)


def download() -> list[dict]:
    rows = []
    for name in RELEASE_FILES:
        print(f"livecodebench: reading {SOURCE.format(name)}", file=sys.stderr, flush=True)
        rows += [row for row in stream_rows(SOURCE.format(name)) if in_window(row)]
    return rows


BENCHMARKS.add(
    "livecodebench",
    Benchmark(
        name="livecodebench",
        grader="code",
        prompt_config="eval/livecodebench/python_codegen",
        tokens_to_generate=None,
        required_fields=("question",),
        description="LiveCodeBench v6, contests 2024-08 to 2025-05: stdin programs and LeetCode classes (download, or --data_file)",
        download=download,
        from_upstream=from_upstream,
    ),
)
