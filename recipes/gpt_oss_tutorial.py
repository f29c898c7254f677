"""NeMo-Skills' gpt-oss tutorial, as written: two evals (with and without the python tool) and an SDG run.

The three calls below are the tutorial's own (`eval`, `eval`, `generate`), with its overrides unchanged;
only what a machine decides is a parameter: the cluster, the model, the GPUs, and `++max_samples`.

On this machine, with the embedded model on CPU (4 problems per benchmark):

    python recipes/gpt_oss_tutorial.py --output_dir=/tmp/gpt-oss --data_dir=../shared/data

On a Slurm cluster of 8-GPU nodes, as the tutorial runs it:

    python recipes/gpt_oss_tutorial.py --cluster=slurm --model=openai/gpt-oss-120b --server_gpus=8 \\
        --max_samples=-1 --output_dir=/workspace/gpt-oss --sdg_input=/workspace/math-problems.jsonl

`--data_dir` holds aime24.jsonl and aime25.jsonl for machines that cannot download them (`assay
prepare_data aime24 --data_file=...`); without it the data is downloaded. The SDG input defaults to the
aime25 problems. A small model is not gpt-oss: its scores mean nothing; the run shows the path works.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from assay.benchmarks.registry import prepare_data
from assay.pipeline import eval, generate, wrap_arguments  # noqa: A004 - the tutorial's own names

WITH_PYTHON = (
    "++inference.tokens_to_generate=120000 "
    "++inference.temperature=1.0 "
    "++inference.top_p=1.0 "
    "++prompt_config=gpt-oss/math "
    "++inference.endpoint_type=text "
    "++code_tags=gpt-oss "
    "++code_execution=true "
    "++server.code_execution.max_code_executions=100 "
    "++chat_template_kwargs.reasoning_effort=high "
    "++chat_template_kwargs.builtin_tools=[python] "
)
"""The tutorial's overrides for gpt-oss with its built-in python tool (its eval with python and its SDG)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster", default="local")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--server_gpus", type=int, default=0)
    parser.add_argument("--max_samples", type=int, default=4, help="problems per benchmark; -1 for all")
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--sdg_input", default=None)
    parser.add_argument("--dry_run", action="store_true")
    args = parser.parse_args()

    for name in ("aime24", "aime25"):
        data_file = Path(args.data_dir) / f"{name}.jsonl" if args.data_dir else None
        prepare_data(name, str(data_file) if data_file else None)
    out = Path(args.output_dir).absolute()
    limit = f"++max_samples={args.max_samples} "
    benchmarks = f"aime24:{args.seeds},aime25:{args.seeds}"

    # with python
    eval(
        ctx=wrap_arguments(WITH_PYTHON + limit),
        cluster=args.cluster,
        expname="gpt-oss-eval-with-python",
        model=args.model,
        server_type="vllm",
        server_gpus=args.server_gpus,
        benchmarks=benchmarks,
        output_dir=str(out / "gpt-oss-eval" / "with-python"),
        server_args="--async-scheduling",
        with_sandbox=True,
        num_jobs=1,
        dry_run=args.dry_run,
    )

    # without python
    eval(
        ctx=wrap_arguments(
            "++inference.temperature=1.0 "
            "++inference.top_p=1.0 "
            "++prompt_config=gpt-oss/math "
            "++inference.extra_body.reasoning_effort=high " + limit
        ),
        cluster=args.cluster,
        expname="gpt-oss-eval-no-python",
        model=args.model,
        server_type="vllm",
        server_gpus=args.server_gpus,
        benchmarks=benchmarks,
        output_dir=str(out / "gpt-oss-eval" / "no-python"),
        server_args="--async-scheduling",
        num_jobs=1,
        dry_run=args.dry_run,
    )

    # synthetic data generation, with python
    sdg_input = args.sdg_input or str(out / "gpt-oss-eval" / "with-python" / "eval-results" / "aime25" / "test.jsonl")
    generate(
        ctx=wrap_arguments(WITH_PYTHON + limit),
        cluster=args.cluster,
        expname="gpt-oss-sdg-with-python",
        model=args.model,
        server_type="vllm",
        server_gpus=args.server_gpus,
        input_file=sdg_input,
        output_dir=str(out / "gpt-oss-sdg" / "with-python" / "open-math-reasoning"),
        server_args="--async-scheduling",
        with_sandbox=True,
        dry_run=args.dry_run,
    )


if __name__ == "__main__":
    main()
