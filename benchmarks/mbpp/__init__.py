"""mbpp: the 500 test problems of MBPP (Austin et al.), each a one-sentence task and three `assert` tests.

Upstream rows come in MBPP's two formats: the full one (`task_id`, `text`, `code`, `test_list`,
`test_setup_code`, `challenge_test_list`; the Hub's `google-research-datasets/mbpp`, config `full`, which
the download reads) and the sanitized one (`prompt`, `test_list`, `test_imports`). As in MBPP's own protocol,
the model sees the task and the first test (which names the function and shows its signature); every test of
`test_list` grades it, each as one `def test_<n>()` of the tests the sandbox runs. These are MBPP's original
tests, not MBPP+'s extended ones.

The entry point is the first function the first test calls that is not a builtin. The tests start with
`import math` (several MBPP tests call `math.isclose` without importing it), the task's own imports and
setup code; they run in their own namespace, so none of that reaches the answer.
Fields: id, problem, example_test, entry_point, tests.
"""

from __future__ import annotations

import ast
import builtins
import textwrap
from functools import partial

from ..hub import hub_rows
from ..registry import BENCHMARKS, Benchmark


def entry_point_of(test: str) -> str:
    """The first non-builtin function a test calls: `assert set(f(1)) == {2}` -> `f`."""
    for node in ast.walk(ast.parse(test)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not hasattr(builtins, node.func.id):
            return node.func.id
    raise ValueError(f"the test calls no function of the answer: {test!r}")


def tests_source(test_list: list[str], header: str) -> str:
    """The tests as the code grader runs them: the header, then one function per assert."""
    functions = [f"def test_{n}():\n{textwrap.indent(test.strip(), '    ')}\n" for n, test in enumerate(test_list)]
    return "\n\n".join(["import math\n" + header.strip() + "\n", *functions])


def from_upstream(row: dict, index: int) -> dict:
    test_list = [str(test) for test in row["test_list"]]
    if not test_list:
        raise ValueError("the problem has no tests")
    header = "\n".join([*row.get("test_imports", []), row.get("test_setup_code", "")])
    return {
        "id": f"mbpp-{row.get('task_id', index)}",
        "problem": (row["text"] if "text" in row else row["prompt"]).strip(),
        "example_test": test_list[0].strip(),
        "entry_point": entry_point_of(test_list[0]),
        "tests": tests_source(test_list, header),
    }


BENCHMARKS.add(
    "mbpp",
    Benchmark(
        name="mbpp",
        grader="code",
        prompt_config="generic/code_task",
        tokens_to_generate=1024,
        required_fields=("problem", "example_test", "entry_point", "tests"),
        description="MBPP test split, 500 Python tasks with 3 assert tests each (Hub, or --data_file)",
        download=partial(hub_rows, "google-research-datasets/mbpp", "test", "full"),
        from_upstream=from_upstream,
    ),
)
