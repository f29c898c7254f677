"""smallcode: 12 one-line Python function tasks (add, double, is_even, reverse_string, ...), written for assay.

The code counterpart of smallmath: small enough for the embedded 135M model on a CPU, and easy enough
that it passes some of them some of the time (about one completion in five at 48 tokens), so the
code path (extraction, sandbox grading, GRPO's rewards and its preflight) runs with real, varying
outcomes. Each task has two or three tests, so a half-right function earns partial credit.
Fields: id, prompt, entry_point, tests (the same as mlcode, so the mlcode/default prompt config fits).
"""

from __future__ import annotations

from ..registry import BENCHMARKS, Benchmark

BENCHMARKS.add(
    "smallcode",
    Benchmark(
        name="smallcode",
        grader="code",
        prompt_config="mlcode/default",
        tokens_to_generate=256,
        required_fields=("prompt", "entry_point", "tests"),
        description="12 one-line Python function tasks (shipped; for CPU runs and GRPO tests)",
        shipped_file="smallcode/smallcode.jsonl",
    ),
)
