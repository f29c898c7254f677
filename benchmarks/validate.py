"""`assay benchmark validate <name>`: check a benchmark against its own reference solutions.

Only benchmarks that ship reference solutions can be validated; each has its own validator module,
named here, imported only when asked for (mlcode's needs the sandbox and torch, the others not).
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional

# benchmark name -> module with `run(sandbox_url, tasks, jobs) -> exit status`
VALIDATORS = {
    "mlcode": "assay.benchmarks.mlcode.validate",
}


def validate_command(name: str, sandbox_url: Optional[str] = None, tasks: Optional[str] = None, jobs: int = 4) -> int:
    """Validate benchmark `name` and return the exit status: 0 when every check holds, 1 on any
    violation, 2 when the request is wrong (a benchmark without a validator, an unknown task).

    Args:
        name: the benchmark, e.g. mlcode.
        sandbox_url: a running sandbox service; by default the validator starts its own.
        tasks: comma-separated task ids or categories to validate; by default all.
        jobs: samples graded at once.
    """
    module_name = VALIDATORS.get(name)
    if module_name is None:
        print(
            f"error: benchmark '{name}' has no validator; benchmarks with one: {', '.join(sorted(VALIDATORS))}",
            file=sys.stderr,
        )
        return 2
    return importlib.import_module(module_name).run(sandbox_url=sandbox_url, tasks=tasks, jobs=jobs)
