"""`grpo`: GRPO on code tasks as a job, with the sandbox that grades the completions started beside it.

    grpo(benchmark="smallcode", output_dir="runs/grpo", model="smollm2", cluster="local", preflight=True)
    grpo(train_file="tasks.jsonl", output_dir="runs/grpo", model="runs/sft/merged/checkpoint-500",
         cluster="slurm", num_gpus=8, run_after="sft", dependent_jobs=2,
         ctx=wrap_arguments("++num_generations=16 ++max_completion_length=2048 ++max_steps=500"))
    eval(model="runs/grpo/merged/checkpoint-*", run_after="grpo", ...)

Every `++key=value` is checked against the stage's config (python -m assay.training.grpo --help)
before anything is submitted, and so is the batch shape (each step must hold whole groups of
num_generations completions). `preflight=True` (`assay grpo --preflight`) runs only the signal
preflight; the job fails with its reasons when the starting policy would get no gradient. Without it
the preflight runs first anyway, unless `++preflight.enabled=false`.

One node: the sandbox runs on the job's node and every training process reaches it on loopback, so
several GPUs are one torchrun on one node.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

from ..core.config import ConfigError, compose_stage_config
from .cluster import load_cluster_config, node_python
from .experiment import Experiment
from .job import Job
from .job_options import JOB_DEFAULTS, JobOptions, takes_job_options
from .server_options import add_sandbox
from .sft import check_input, submit_and_report, training_command
from .wrap import extra_args, refuse_pipeline_keys

PIPELINE_KEYS = {
    "train_file": "train_file",
    "benchmark": "benchmark",
    "output_dir": "output_dir",
    "model": "model",
    "preflight_only": "preflight",
}
"""Stage keys the function sets, and the parameter to use instead."""


def check_grpo_overrides(overrides: list[str], source: list[str], num_gpus: int):
    """Fail now for what the stage would reject on the node, including the batch shape for num_gpus GPUs."""
    from ..training.grpo import GRPOStageConfig

    refuse_pipeline_keys(overrides, PIPELINE_KEYS, "grpo")
    cfg = compose_stage_config(GRPOStageConfig, ["++output_dir=-", *source, *overrides])
    completions = cfg.batch_size * max(num_gpus, 1) * cfg.gradient_accumulation_steps
    if completions % cfg.num_generations:
        raise ConfigError(
            f"a step's batch_size x GPUs x gradient_accumulation_steps = {cfg.batch_size} x {max(num_gpus, 1)} x "
            f"{cfg.gradient_accumulation_steps} = {completions} completions is not a multiple of num_generations="
            f"{cfg.num_generations}: every prompt's group must be whole"
        )
    return cfg


@takes_job_options(expname="grpo")
def grpo(
    output_dir: str,
    train_file: Optional[str] = None,
    benchmark: Optional[str] = None,
    model: str = "smollm2",
    num_gpus: int = 0,
    preflight: bool = False,
    ctx=None,
    options: JobOptions = JOB_DEFAULTS,
) -> Experiment:
    """Train a model with GRPO on code tasks, rewarded by running each task's tests on its completions in a sandbox.

    Args:
        output_dir: Checkpoints (`checkpoint-<step>/`, LoRA: `merged/checkpoint-<step>/`), `preflight.json`, `rewards/step_<n>.jsonl`, `train_log.jsonl`; logs in `<output_dir>/logs/`. A rerun with the same folder resumes.
        train_file: JSONL of code tasks ({prompt, entry_point, tests} per line, as mlcode's).
        benchmark: A shipped code benchmark to train on instead of train_file: smallcode (tiny tasks the embedded model passes sometimes) or mlcode.
        model: The starting policy: a path (e.g. an sft checkpoint, merged) or the alias smollm2.
        num_gpus: GPUs of the node; 0 or 1 runs one process, more run torchrun with one process per GPU.
        preflight: Only run the signal preflight: sample the starting policy, grade, save preflight.json; the job fails when training would get no gradient.
        ctx: `++key=value` overrides of the GRPO stage (python -m assay.training.grpo --help lists them), e.g. ++num_generations=8 ++max_completion_length=512 ++max_steps=200 ++rewards.format_weight=0.1.
    """
    if (train_file is None) == (benchmark is None):
        raise ConfigError("give exactly one of --train_file and --benchmark")
    if num_gpus < 0:
        raise ConfigError(f"num_gpus must be >= 0, got {num_gpus}")
    if train_file is not None:
        check_input(train_file, "train_file", options.run_after, options.dry_run)
        source = [f"++train_file={Path(train_file).absolute()}"]
    else:
        from ..benchmarks.registry import BenchmarkError, get_benchmark

        try:
            bench = get_benchmark(str(benchmark))
        except BenchmarkError as exc:
            raise ConfigError(str(exc)) from None
        if not bench.needs_sandbox:
            raise ConfigError(f"benchmark {benchmark} is not a code benchmark: GRPO here rewards passing tests")
        source = [f"++benchmark={benchmark}"]
    overrides = extra_args(ctx)
    stage_cfg = check_grpo_overrides(overrides, source, num_gpus)
    cluster_cfg = load_cluster_config(options.cluster)
    out_dir = Path(output_dir).absolute()
    python = node_python(cluster_cfg)
    stage_args = [*source, f"++output_dir={out_dir}", f"++model={model}", *overrides]
    if preflight:
        stage_args.append("++preflight_only=true")
    command = training_command(python, "assay.training.grpo", stage_args, num_gpus)
    job = Job(
        name=options.expname,
        command=command,
        output_dir=out_dir,
        gpus_per_node=num_gpus,
        time=options.time,
        container="assay",
    )
    if not stage_cfg.sandbox_url:  # the rewards run the tests in a sandbox on this node
        add_sandbox(job, python)
    done = (
        f"preflight passed; report in {out_dir / 'preflight.json'}"
        if preflight
        else f"checkpoints in {out_dir}; reward traces in {out_dir / 'rewards'}; preflight report in "
        f"{out_dir / 'preflight.json'}"
    )
    # a preflight is one short check: no follow-up copies
    return submit_and_report(cluster_cfg, replace(options, dependent_jobs=0) if preflight else options, [job], done)
