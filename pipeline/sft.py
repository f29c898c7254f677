"""`sft`, `merge_lora`, `prepare_sft_data`: the training stages as jobs, on one CPU, GPUs, or several nodes.

    prepare_sft_data(input_file="sdg/output.jsonl", output_file="sft/train.jsonl", cluster="slurm",
                     run_after="sdg", ctx=wrap_arguments("++code_targets=true ++max_length=4096"))
    sft(train_file="sft/train.jsonl", output_dir="runs/sft", model="/models/Qwen3-8B", cluster="slurm",
        num_gpus=8, num_nodes=2, run_after="prepare_sft_data", dependent_jobs=3,
        ctx=wrap_arguments("++lora.rank=32 ++max_steps=2000 ++save_steps=200"))
    eval(model="runs/sft/merged/checkpoint-*", run_after="sft", ...)

Every `++key=value` is checked against the stage's config before anything is submitted. How the
stage is started depends on the GPUs asked for:
- at most one GPU: `python -m assay.training.sft ++...`;
- several GPUs on one node: `torchrun --standalone --nproc_per_node=G` (as `python -m
  torch.distributed.run`, so the interpreter of the job runs it whatever PATH says);
- several nodes (Slurm): the job's head node runs `srun --overlap` over all nodes of the allocation
  (the job wrapper runs a job's command on the head node only), and each node starts torchrun with
  its own rank (`$SLURM_NODEID`), the head node (first host of `$SLURM_JOB_NODELIST`, found by
  `scontrol`) as the rendezvous address and a port derived from the job id, so two jobs that share
  a head node do not collide. srun and scontrol must be where the job's command runs: on a cluster
  that runs jobs in a container, the image needs Slurm's client tools for a multi-node run.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

from ..core.config import ConfigError, compose_stage_config
from .cluster import ClusterConfig, load_cluster_config, node_python
from .executors import get_executor
from .experiment import Experiment, submit, wait_for
from .job import Job
from .job_options import JOB_DEFAULTS, JobOptions, RunAfter, takes_job_options
from .server_options import add_sandbox
from .wrap import extra_args, refuse_pipeline_keys

TORCHRUN = "torch.distributed.run"
"""torchrun's module: `python -m torch.distributed.run` is the `torchrun` command."""

RENDEZVOUS_SETUP = (
    'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)" '
    'MASTER_PORT="$((20000 + SLURM_JOB_ID % 20000))"; exec "$@"'
)
"""Run on the head node before srun: the rendezvous address and port every node's torchrun gets (srun
passes the environment on to the nodes)."""


def check_stage_overrides(config_class, overrides: list[str], keys: dict[str, str], function: str) -> None:
    """Fail now, on the user's machine, for any key or value the stage would reject on the node.

    `keys` maps the stage keys the pipeline fills in to the function's parameter that sets them.
    """
    refuse_pipeline_keys(overrides, keys, function)
    # the config's own cross-field checks (__post_init__), with placeholders for what the pipeline fills in
    compose_stage_config(config_class, [f"++{key}=-" for key in keys] + list(overrides))


def training_command(
    python: str,
    module: str,
    stage_args: list[str],
    num_gpus: int = 0,
    num_nodes: int = 1,
    srun_args: tuple[str, ...] = (),
) -> list[str]:
    """The command of a training job: one process, torchrun on one node, or torchrun on every node via srun."""
    if num_nodes > 1:
        if num_gpus < 1:
            raise ConfigError("a multi-node run needs GPUs: set num_gpus (per node) to at least 1")
        return multi_node_command(python, module, stage_args, num_gpus, num_nodes, srun_args)
    if num_gpus > 1:
        return [python, "-m", TORCHRUN, "--standalone", f"--nproc_per_node={num_gpus}", "-m", module, *stage_args]
    return [python, "-m", module, *stage_args]


def multi_node_command(
    python: str,
    module: str,
    stage_args: list[str],
    procs_per_node: int,
    num_nodes: int,
    srun_args: tuple[str, ...] = (),
) -> list[str]:
    """Run on the head node of a Slurm job: one torchrun per node, all meeting at the head node."""
    per_node = [python, "-m", TORCHRUN, f"--nnodes={num_nodes}", f"--nproc_per_node={procs_per_node}"]
    node_script = (
        f'exec {shlex.join(per_node)} --node_rank="$SLURM_NODEID" --master_addr="$MASTER_ADDR" '
        f'--master_port="$MASTER_PORT" {shlex.join(["-m", module, *stage_args])}'
    )
    return [
        "bash",
        "-c",
        RENDEZVOUS_SETUP,
        "bash",
        "srun",
        "--overlap",
        f"--nodes={num_nodes}",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        *srun_args,
        "bash",
        "-c",
        node_script,
    ]


def submit_and_report(
    cluster_cfg: ClusterConfig, options: JobOptions, jobs: list[Job], done_message: str
) -> Experiment:
    """Submit; wait (by default on local clusters) and then print `done_message`."""
    experiment = submit(cluster_cfg, options, jobs)
    if wait_for([experiment], cluster_cfg, options.wait, options.dry_run):
        print(f"{options.expname}: {done_message}", flush=True)
    return experiment


def check_input(path: str, what: str, run_after: RunAfter, dry_run: bool) -> None:
    """An input must exist now, unless an upstream job (run_after) writes it or nothing runs."""
    if not run_after and not dry_run and not Path(path).exists():
        raise ConfigError(f"{what} {path} does not exist (if an earlier job writes it, pass --run_after)")


@takes_job_options(expname="sft")
def sft(
    train_file: str,
    output_dir: str,
    model: str = "smollm2",
    num_gpus: int = 0,
    num_nodes: int = 1,
    ctx=None,
    options: JobOptions = JOB_DEFAULTS,
) -> Experiment:
    """Fine-tune a model on chat data (LoRA by default, or full with ++lora.enabled=false), on a cluster.

    Args:
        train_file: JSONL of chat examples ({"messages": [...]} per line; prepare_sft_data writes them).
        output_dir: Checkpoints (`checkpoint-<step>/`), merged LoRA checkpoints (`merged/checkpoint-<step>/`), `train_log.jsonl`; logs in `<output_dir>/logs/`. A rerun with the same folder resumes.
        model: The starting model: a path or the alias smollm2 (the embedded default).
        num_gpus: GPUs per node; 0 or 1 runs one process, more run torchrun with one process per GPU.
        num_nodes: Nodes (Slurm only); each runs torchrun with num_gpus processes.
        ctx: `++key=value` overrides of the training stage (python -m assay.training.sft --help lists them), e.g. ++lora.rank=16 ++max_steps=1000 ++save_steps=100.
    """
    from ..training.sft import SFTStageConfig

    overrides = extra_args(ctx)
    check_stage_overrides(
        SFTStageConfig, overrides, {"train_file": "train_file", "output_dir": "output_dir", "model": "model"}, "sft"
    )
    if num_gpus < 0 or num_nodes < 1:
        raise ConfigError(f"num_gpus must be >= 0 and num_nodes >= 1, got {num_gpus} and {num_nodes}")
    cluster_cfg = load_cluster_config(options.cluster)
    if num_nodes > 1 and not get_executor(cluster_cfg.executor).multi_node:
        raise ConfigError(
            f"num_nodes={num_nodes} needs a cluster whose jobs span nodes; '{cluster_cfg.name}' runs "
            f"{cluster_cfg.executor} jobs on one node"
        )
    check_input(train_file, "train_file", options.run_after, options.dry_run)
    out_dir = Path(output_dir).absolute()
    python = node_python(cluster_cfg)
    stage_args = [
        f"++train_file={Path(train_file).absolute()}",
        f"++output_dir={out_dir}",
        f"++model={model}",
        *overrides,
    ]
    command = training_command(
        python, "assay.training.sft", stage_args, num_gpus, num_nodes, tuple(cluster_cfg.container_args("assay"))
    )
    job = Job(
        name=options.expname,
        command=command,
        output_dir=out_dir,
        nodes=num_nodes,
        gpus_per_node=num_gpus,
        time=options.time,
        container="assay",
    )
    return submit_and_report(
        cluster_cfg,
        options,
        [job],
        f"checkpoints in {out_dir} (LoRA runs: servable copies in {out_dir / 'merged'})",
    )


@takes_job_options(expname="merge_lora", without=("dependent_jobs",))
def merge_lora(
    adapter_dir: str,
    output_dir: str,
    base_model: Optional[str] = None,
    ctx=None,
    options: JobOptions = JOB_DEFAULTS,
) -> Experiment:
    """Merge a LoRA checkpoint into its base model: a Hugging Face folder that vLLM or SGLang serves.

    Args:
        adapter_dir: A LoRA checkpoint of sft, e.g. runs/sft/checkpoint-100.
        output_dir: Where the merged model goes (must not exist, unless ++overwrite=true); logs go beside it, in `<parent>/logs/`.
        base_model: The base model (path or alias); default: the one recorded in the adapter's adapter_config.json.
        ctx: `++key=value` overrides of the merge stage: ++dtype=bfloat16|float16|float32, ++overwrite=true.
    """
    from ..training.merge_lora import MergeLoraConfig

    overrides = extra_args(ctx)
    check_stage_overrides(
        MergeLoraConfig,
        overrides,
        {"adapter_dir": "adapter_dir", "output_dir": "output_dir", "base_model": "base_model"},
        "merge_lora",
    )
    cluster_cfg = load_cluster_config(options.cluster)
    check_input(adapter_dir, "adapter_dir", options.run_after, options.dry_run)
    out_dir = Path(output_dir).absolute()
    stage_cfg = compose_stage_config(MergeLoraConfig, ["++adapter_dir=-", "++output_dir=-", *overrides])
    if out_dir.exists() and not stage_cfg.overwrite and not options.dry_run:
        raise ConfigError(f"output_dir {out_dir} exists; pass ++overwrite=true to replace it")
    command = [
        node_python(cluster_cfg),
        "-m",
        "assay.training.merge_lora",
        f"++adapter_dir={Path(adapter_dir).absolute()}",
        f"++output_dir={out_dir}",
        *([f"++base_model={base_model}"] if base_model else []),
        *overrides,
    ]
    # the logs cannot go inside output_dir: the merged folder is created whole, at the end
    job = Job(name=options.expname, command=command, output_dir=out_dir.parent, time=options.time, container="assay")
    return submit_and_report(cluster_cfg, options, [job], f"wrote {out_dir}")


@takes_job_options(expname="prepare_sft_data", without=("dependent_jobs",))
def prepare_sft_data(
    input_file: str,
    output_file: str,
    model: str = "smollm2",
    with_sandbox: bool = False,
    ctx=None,
    options: JobOptions = JOB_DEFAULTS,
) -> Experiment:
    """Filter generations (or any prompt/response JSONL) into clean chat SFT data, with a report of what was removed.

    Args:
        input_file: JSONL of generations (the generate stage's output) or lines with prompt and response fields.
        output_file: The chat data for sft ({"messages": [...]} per line); the report goes beside it (`<stem>.report.json`); logs in `<its folder>/logs/`.
        model: The model to be trained (path or alias): its tokenizer and chat template measure lengths.
        with_sandbox: Start the code-execution sandbox beside the job, for ++sandbox_check=true.
        ctx: `++key=value` overrides of the stage (python -m assay.training.prepare_data --help), e.g. ++max_length=4096 ++code_targets=true ++decontaminate=[mlcode].
    """
    from ..training.prepare_data import PrepareDataConfig, report_file

    overrides = extra_args(ctx)
    keys = {"input_file": "input_file", "output_file": "output_file", "model": "model"}
    check_stage_overrides(PrepareDataConfig, overrides, keys, "prepare_sft_data")
    placeholders = [f"++{key}=-" for key in keys]
    stage_cfg = compose_stage_config(PrepareDataConfig, placeholders + overrides)
    if stage_cfg.sandbox_check and not with_sandbox and not stage_cfg.sandbox_url:
        raise ConfigError(
            "++sandbox_check=true runs the code in a sandbox: pass --with_sandbox "
            "(or ++sandbox_url=<a running sandbox>)"
        )
    cluster_cfg = load_cluster_config(options.cluster)
    check_input(input_file, "input_file", options.run_after, options.dry_run)
    out_file = Path(output_file).absolute()
    python = node_python(cluster_cfg)
    command = [
        python,
        "-m",
        "assay.training.prepare_data",
        f"++input_file={Path(input_file).absolute()}",
        f"++output_file={out_file}",
        f"++model={model}",
        *overrides,
    ]
    job = Job(
        name=options.expname,
        command=command,
        output_dir=out_file.parent,
        time=options.time,
        container="assay",
    )
    if with_sandbox:
        add_sandbox(job, python)
    return submit_and_report(
        cluster_cfg,
        options,
        [job],
        f"wrote {out_file} (report: {report_file(str(out_file))})",
    )
