"""mlcode: executable ML research coding tasks, each validated by its own reference solution.

Layout (the folders are the source of truth; `mlcode.jsonl` is built from them):

    tasks/<category>/<name>/task.yaml    id (= "<category>/<name>"), category, difficulty, entry_point,
                                         prompt, optional `harness` (names of files in harness/)
    tasks/<category>/<name>/reference.py the reference solution: defines the entry point, imports at top
    tasks/<category>/<name>/tests.py     hidden tests: top-level `test_*` functions with plain asserts
    harness/<name>.py                    shared test helpers prepended to `tests`: common.py to every
                                         task (one intra-op thread), others to the tasks naming them
    mlcode.jsonl                         one line per task, sorted by id; rebuild with
                                         `python -m assay.benchmarks.mlcode.build` (`--check` verifies)

Categories: tensor_ops, modules, training, distributed, debugging, performance.

Grading contract (what a grader does with one line): in ONE fresh IPython kernel, run the extracted
answer, then `tests`, then a runner that calls every top-level `test_*` function of `tests` in
definition order; tests_passed / tests_total is the count of those that return without raising.
The tests bind only private names (`_torch`, `_mlc_*`, ...) and `test_*` at top level, so they never
supply an import the answer forgot: an answer without `import torch` fails with NameError.
Tests are deterministic, CPU only, write only under tempfile directories, and run in seconds.
Distributed tests fork 2 ranks (`multiprocessing.get_context("fork")`, gloo on 127.0.0.1 over `lo`),
because spawn cannot pickle functions defined in a kernel's `__main__`; Linux only.
Performance tests time the answer against the slow loop given in the prompt in the same process
and require the speedup stated in the prompt.
"""

from __future__ import annotations

from ..registry import BENCHMARKS, Benchmark

BENCHMARKS.add(
    "mlcode",
    Benchmark(
        name="mlcode",
        grader="code",
        prompt_config="mlcode/default",
        tokens_to_generate=2048,
        required_fields=("prompt", "entry_point", "tests"),
        description="87 executable ML research coding tasks in six categories (shipped)",
        shipped_file="mlcode/mlcode.jsonl",
    ),
)
