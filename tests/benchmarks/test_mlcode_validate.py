"""`assay benchmark validate mlcode`, against a real sandbox server it starts itself.

The whole validation runs over every shipped task, as CI runs it, and must find no violation. Then
hand-made tasks, each broken in one way (a wrong reference, tests a null answer passes, a reference
that needs no import, tests that pass only once, tests past the time limit), must each be caught by
exactly the check that is about that flaw, while a sound hand-made task passes every check. They are
plain Python (no torch), so they cost a sandbox start and a few seconds.
"""

from __future__ import annotations

import sys

import pytest

from assay.benchmarks.mlcode.validate import (
    CHECKS,
    DEFAULT_JOBS,
    _marks,
    format_report,
    load_tasks,
    null_answer,
    validate_mlcode,
    without_imports,
)
from assay.benchmarks.validate import validate_command
from assay.sandbox.isolation import probe

TESTS = """\
import math as _math


def test_unit_circle():
    assert abs(area(1.0) - _math.pi) < 1e-9


def test_radius_two():
    assert abs(area(2.0) - 4 * _math.pi) < 1e-9
"""

REFERENCE = "import math\n\n\ndef area(r):\n    return math.pi * r * r\n"


SANDBOX_HAS_NAMESPACES = probe(allow_network=False)[0]


def _task(name: str, reference: str = REFERENCE, tests: str = TESTS) -> dict:
    return {
        "id": f"broken/{name}",
        "category": "broken",
        "difficulty": "easy",
        "prompt": "Write `area(r)`.",
        "entry_point": "area",
        "tests": tests,
        "reference_solution": reference,
    }


def _broken_tasks(marker_path: str) -> dict[str, tuple[dict, set[str]]]:
    """name -> (task, the checks that must fail for it)."""
    once = (
        TESTS
        + f"""

def test_first_grading_only():
    assert area(1.0) > 0  # a null answer or a missing import stops here, before the marker
    import os as _os
    _os.close(_os.open({marker_path!r}, _os.O_CREAT | _os.O_EXCL | _os.O_WRONLY))
"""
    )
    slow = TESTS + "\n\ndef test_slow():\n    assert area(1.0) > 0\n    import time as _time\n    _time.sleep(8)\n"
    return {
        "sound": (_task("sound"), set()),
        "wrong_reference": (_task("wrong_reference", REFERENCE.replace("r * r", "r * 2")), {"fenced", "direct"}),
        "null_passes_a_test": (
            _task("null_passes_a_test", tests=TESTS + "\n\ndef test_defined():\n    area\n"),
            {"null"},
        ),
        "needs_no_import": (
            _task("needs_no_import", "def area(r):\n    return 3.141592653589793 * r * r\n"),
            {"no_import"},
        ),
        "passes_only_once": (_task("passes_only_once", tests=once), {"determ"}),
        "past_time_limit": (_task("past_time_limit", tests=slow), {"fenced", "direct", "time"}),
    }


@pytest.mark.timeout(1800)
def test_every_task_passes_validation(capsys):
    """The CI check: all shipped tasks through the hook the CLI calls, which prints one row per task."""
    code = validate_command("mlcode", sandbox_url=None, tasks=None, jobs=DEFAULT_JOBS)
    out = capsys.readouterr().out
    print(out)  # the table in the test log
    assert code == 0, out
    yes, no = _marks(sys.stdout)
    rows = {line.split()[0]: line for line in out.splitlines() if line and "/" in line.split()[0]}
    ids = [task["id"] for task in load_tasks()]
    assert sorted(rows) == sorted(ids)
    for row in rows.values():
        assert row.count(yes) == len(CHECKS) and no not in row.split()[2:], row
    assert "no violations" in out


def test_each_flaw_is_caught_by_its_own_check(tmp_path):
    broken = _broken_tasks(str(tmp_path / "graded-once"))
    report = validate_mlcode(tasks=[task for task, _ in broken.values()], time_limit=5.0, jobs=2)
    table = format_report(report)
    by_id = {result.task_id: result for result in report.tasks}
    assert sorted(by_id) == sorted(task["id"] for task, _ in broken.values())
    for name, (task, must_fail) in broken.items():
        result = by_id[task["id"]]
        failed = {check for check in CHECKS if not result.checks[check]}
        if name == "passes_only_once" and SANDBOX_HAS_NAMESPACES:
            # nothing a grading run writes outlives it (read-only system, private tmpfs): the marker
            # cannot be written at all, so the reference fails every time, and determinism holds
            assert failed == {"fenced", "direct"}, (name, result.problems, table)
        elif name == "passes_only_once":  # whichever reference grading came second fails too
            assert failed in ({"determ", "fenced"}, {"determ", "direct"}), (name, result.problems, table)
        else:
            assert failed == must_fail, (name, result.problems, table)
        assert result.ok == (not must_fail)
    assert report.exit_code == 1
    assert all(f"broken/{name}" in table for name in broken if name != "sound")
    assert "broken/sound:" not in "\n".join(report.violations)


def test_request_errors_exit_2_before_any_sandbox(capsys):
    assert validate_command("smallmath") == 2
    assert "has no validator; benchmarks with one: mlcode" in capsys.readouterr().err
    assert validate_command("mlcode", tasks="tensor_ops/topk_mask,tensor_ops/topk_mask2") == 2
    assert "no mlcode task or category 'tensor_ops/topk_mask2'" in capsys.readouterr().err
    assert validate_command("mlcode", jobs=0) == 2


def test_null_answer_and_stripped_reference_follow_the_reference():
    reference = (
        "import torch\nfrom torch import nn\n\n\nclass Helper:\n    pass\n\n\n"
        "class Net(nn.Module):\n    scale = 2\n\n    def __init__(self, dim: Helper, eps=1e-6, *, bias=True):\n"
        "        super().__init__()\n\n    @torch.no_grad()\n    def forward(self, x, *rest, **extra) -> Helper:\n"
        "        return x\n"
    )
    assert null_answer(reference, "Net") == (
        "import torch\nfrom torch import nn\n\nclass Net(nn.Module):\n\n"
        "    def __init__(self, dim, eps=1e-06, *, bias=True):\n        raise NotImplementedError\n\n"
        "    @torch.no_grad()\n    def forward(self, x, *rest, **extra):\n        raise NotImplementedError\n"
    )
    assert null_answer("import math\n\ndef f(a, /, b=math.pi):\n    return a\n", "f") == (
        "import math\n\ndef f(a, /, b=math.pi):\n    raise NotImplementedError\n"
    )
    assert without_imports(reference).startswith("\n\nclass Helper:")
    with pytest.raises(ValueError, match="does not define 'g'"):
        null_answer(REFERENCE, "g")
