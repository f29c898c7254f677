"""GRPO on code tasks with an execution reward: LoRA or full, a signal preflight first, every reward traced.

    python -m assay.training.grpo ++benchmark=smallcode ++output_dir=runs/grpo ++model=smollm2 \\
        ++num_generations=8 ++max_completion_length=256 ++max_steps=100 ++save_steps=20
    python -m assay.training.grpo ++train_file=tasks.jsonl ++output_dir=runs/grpo ++preflight_only=true

The tasks are code lines ({prompt, entry_point, tests}, as mlcode's): each prompt is rendered with a
prompt config (as eval renders it), the policy samples num_generations completions per prompt, and
each completion is rewarded with the fraction of the task's tests its code passes in the sandbox
(rewards.py; plus an optional format reward). Training is trl's GRPOTrainer; generation is plain
transformers, or vLLM in the trainer's process (trl's colocate mode) on a GPU where vllm is installed.

Before the first step the signal preflight (preflight.py) samples the starting policy and refuses to
train (exit status 4, with the reasons) when the rewards cannot give a gradient.

Outputs in `output_dir`:
- `preflight.json`, and `rewards/preflight.jsonl`: the preflight's report and every graded sample;
- `rewards/step_<n>.jsonl`: each step's prompts, completions, per-function rewards and test outcomes;
- `train_log.jsonl`: loss, grad norm, reward mean/std, zero-std fraction, clipped ratio, ... per step
  (the console shows one line per step);
- `checkpoint-<step>/` every save_steps and at the end, and for LoRA `merged/checkpoint-<step>/`, so
  `eval(model="<output_dir>/merged/checkpoint-*")` evaluates every checkpoint.

A rerun with the same output_dir resumes from its last complete checkpoint (and skips the preflight).
Multi-GPU: launch with torchrun (pipeline/grpo.py does).
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..core.config import MISSING, ConfigError, register_stage_config, run_stage
from .preflight import REFUSED_EXIT_CODE, PreflightRefused, PreflightSettings
from .sft import LoraSettings

TASK_FIELDS = ("entry_point", "tests")


@dataclass
class RewardSettings:
    """How completions are rewarded."""

    format_weight: float = 0.0
    """Weight of the format reward (1 when the answer holds a complete code block that parses and defines the
    entry point); 0 leaves it out. The execution reward (fraction of tests passed) has weight 1."""
    time_limit: float = 20.0
    """Seconds a completion's code and the task's tests may run in the sandbox, all cells together."""
    max_concurrent: int = 8
    """Completions graded at once (one sandbox session each)."""


@register_stage_config
@dataclass
class GRPOStageConfig:
    """Train a causal LM with GRPO on code tasks, rewarded by running their tests in the sandbox."""

    output_dir: str = MISSING
    """Checkpoints, merged checkpoints, preflight.json, rewards/, train_log.jsonl. Rerunning resumes."""
    train_file: Optional[str] = None
    """JSONL of code tasks: the prompt config's fields (mlcode/default: `prompt`), `entry_point`, `tests`."""
    benchmark: Optional[str] = None
    """A shipped code benchmark to train on instead of train_file (smallcode, mlcode)."""
    prompt_config: str = "mlcode/default"
    """Prompt config rendering each task into chat messages (the same as eval uses for the benchmark)."""
    model: str = "smollm2"
    """The starting policy: a path or an alias (smollm2)."""
    tokenizer: Optional[str] = None
    """A different tokenizer folder than the model's."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    rewards: RewardSettings = field(default_factory=RewardSettings)
    preflight: PreflightSettings = field(default_factory=PreflightSettings)
    preflight_only: bool = False
    """Run the signal preflight, save its report and exit (status 0 when training could start, 4 when not)."""
    sandbox_url: Optional[str] = None
    """The sandbox that runs the tests; default $ASSAY_SANDBOX_URL (the pipeline starts one beside the job)."""
    num_generations: int = 8
    """G: completions sampled per prompt; their rewards are compared within this group."""
    max_completion_length: int = 1024
    """Longest completion in tokens; a completion cut here usually has no closed code block (reward 0)."""
    temperature: float = 1.0
    """Sampling temperature of the completions."""
    top_p: float = 1.0
    """Nucleus sampling: sample from the smallest set of tokens whose probabilities add up to top_p."""
    chat_template_kwargs: dict = field(default_factory=dict)
    """Extra arguments of the chat template, as at inference."""
    beta: float = 0.0
    """KL penalty towards the starting model; 0 (trl's default) loads no reference model."""
    max_steps: int = -1
    """Optimizer steps to run; -1: num_epochs over the tasks."""
    num_epochs: float = 1.0
    """Passes over the tasks when max_steps is -1."""
    batch_size: int = 8
    """Completions per device per micro-step. batch_size x gradient_accumulation_steps x GPUs completions make
    one step, and must be a multiple of num_generations (whole groups): that many / G prompts per step."""
    gradient_accumulation_steps: int = 4
    """Micro-steps per optimizer step (the step's completions are generated at once)."""
    learning_rate: float = 1e-5
    """Peak learning rate (LoRA typically 1e-5 to 5e-5; full fine-tuning about 1e-6)."""
    lr_scheduler: str = "constant"
    """transformers scheduler name: constant, cosine, linear, constant_with_warmup, ..."""
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    dtype: str = "auto"
    """Weights' dtype: auto (bfloat16 on a GPU that supports it, float32 on CPU), bfloat16, float32."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, slower."""
    use_vllm: Optional[bool] = None
    """Generate with vLLM inside the trainer (trl's colocate mode); null: when a GPU and the vllm package are there."""
    vllm_gpu_memory_utilization: float = 0.3
    """Share of GPU memory vLLM may take beside the training model."""
    trl_args: dict = field(default_factory=dict)
    """Further trl GRPOConfig arguments, passed as they are (e.g. ++trl_args.loss_type=grpo, ++trl_args.num_iterations=2)."""
    save_steps: int = 50
    """Save a checkpoint every this many steps (and at the last step)."""
    save_total_limit: Optional[int] = None
    """Keep only the newest N checkpoints; default all."""
    merge_checkpoints: bool = True
    """LoRA: also write a merged, servable copy of each checkpoint to merged/checkpoint-<step>."""
    logging_steps: int = 1
    """Log (console and train_log.jsonl) every this many steps."""
    seed: int = 42
    resume: bool = True
    """Continue from the last complete checkpoint in output_dir when there is one."""
    cpu_threads: Optional[int] = None
    """torch CPU threads; set 1 on a shared, busy machine, where spinning OpenMP threads slow steps by 10x."""
    report_to: list[str] = field(default_factory=list)
    """Extra loggers of the HF Trainer: tensorboard, wandb (installed separately)."""

    def __post_init__(self) -> None:
        if (self.train_file is None) == (self.benchmark is None):
            raise ValueError("give exactly one of ++train_file=<tasks.jsonl> and ++benchmark=<name> (e.g. smallcode)")
        if self.num_generations < 2:
            raise ValueError("num_generations must be at least 2: GRPO compares completions of the same prompt")
        if self.max_steps == 0 or self.save_steps < 1 or self.logging_steps < 1 or self.max_completion_length < 1:
            raise ValueError(
                "max_steps must be -1 or positive; save_steps, logging_steps, max_completion_length positive"
            )
        if self.dtype not in ("auto", "bfloat16", "float32", "float16"):
            raise ValueError(f"dtype must be auto, bfloat16, float16 or float32, got '{self.dtype}'")
        if self.rewards.format_weight < 0:
            raise ValueError("rewards.format_weight must be >= 0")


def task_file(cfg: GRPOStageConfig) -> Path:
    if cfg.train_file is not None:
        if not Path(cfg.train_file).exists():
            raise ConfigError(f"train_file {cfg.train_file} does not exist")
        return Path(cfg.train_file)
    assert cfg.benchmark is not None  # __post_init__: exactly one of train_file and benchmark
    from ..benchmarks.registry import BenchmarkError, get_benchmark, prepared_test_file

    try:
        if not get_benchmark(cfg.benchmark).needs_sandbox:
            raise ConfigError(f"benchmark {cfg.benchmark} is not a code benchmark: GRPO here rewards passing tests")
        return prepared_test_file(cfg.benchmark)
    except BenchmarkError as exc:
        raise ConfigError(str(exc)) from None


def load_tasks(cfg: GRPOStageConfig) -> list[dict]:
    """Dataset rows: `prompt` (chat messages), `entry_point`, `tests`, `id`, `row` (the line's index)."""
    from ..core.jsonl import read_jsonl
    from ..inference.prompt import load_prompt_config

    path = task_file(cfg)
    prompt = load_prompt_config(cfg.prompt_config)
    rows = []
    for number, line in enumerate(read_jsonl(path), start=1):
        missing = [k for k in TASK_FIELDS if not line.get(k)]
        if missing:
            raise ConfigError(f"{path}:{number}: a code task needs {', '.join(missing)} (and the prompt's fields)")
        rows.append(
            {
                "prompt": prompt.messages(line),
                "entry_point": line["entry_point"],
                "tests": line["tests"],
                "id": str(line.get("id", number)),
                "row": number - 1,
            }
        )
    if not rows:
        raise ConfigError(f"{path} has no tasks")
    return rows


def want_vllm(cfg: GRPOStageConfig) -> bool:
    import torch

    available = torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None
    if cfg.use_vllm and not available:
        raise ConfigError(
            "++use_vllm=true needs a GPU and the vllm package (pip install 'assay[vllm]'); "
            "without them generation uses transformers (leave use_vllm unset)"
        )
    return available if cfg.use_vllm is None else cfg.use_vllm


def resume_point(cfg: GRPOStageConfig, main_process: bool) -> Optional[Path]:
    """The checkpoint to continue from, or None for a fresh run (whose old logs and traces are removed)."""
    from . import checkpoints
    from .rewards import TRACE_DIR

    output_dir = Path(cfg.output_dir)
    for path in checkpoints.remove_incomplete(output_dir) if main_process else []:
        print(f"grpo: removed incomplete checkpoint {path}", flush=True)
    last = checkpoints.last_checkpoint(output_dir)
    if last is None:
        if main_process:
            (output_dir / checkpoints.LOG_NAME).unlink(missing_ok=True)
            shutil.rmtree(output_dir / TRACE_DIR, ignore_errors=True)
        return None
    if not cfg.resume:
        raise ConfigError(
            f"{output_dir} already has checkpoints (last: {last.name}); pass ++resume=true to "
            "continue that run, or choose a new output_dir"
        )
    step = checkpoints.checkpoint_step(last)
    assert step is not None  # last_checkpoint finds checkpoint-<step> folders only
    if main_process:
        checkpoints.truncate_log(output_dir, step)
        for trace in (output_dir / TRACE_DIR).glob("step_*.jsonl"):
            if int(trace.name.split(".")[0].removeprefix("step_")) > step:
                trace.unlink()  # those steps run again
        print(f"grpo: resuming from {last} (step {step})", flush=True)
    return last


def build_trainer(cfg: GRPOStageConfig, rows: list[dict]):
    """The GRPOTrainer with the execution (and format) rewards, and the reward trace they write."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import GRPOConfig, GRPOTrainer

    from ..inference.embedded_model import resolve_model
    from . import callbacks
    from .chat_tokens import load_tokenizer
    from .rewards import ExecutionReward, FormatReward, RewardTrace
    from .sft import checkpointing_arg, peft_config, resolve_dtype

    model_path = resolve_model(cfg.model)
    tokenizer = load_tokenizer(model_path, cfg.tokenizer)
    dtype, bf16 = resolve_dtype(cfg.dtype)
    names, weights = ["execution"], [1.0]
    if cfg.rewards.format_weight > 0:
        names, weights = names + ["format"], weights + [cfg.rewards.format_weight]
    use_vllm = want_vllm(cfg)
    vllm = {"vllm_mode": "colocate", "vllm_gpu_memory_utilization": cfg.vllm_gpu_memory_utilization} if use_vllm else {}
    eval_batch = cfg.num_generations * max(1, cfg.batch_size // cfg.num_generations)  # whole groups per batch
    settings = dict(
        output_dir=cfg.output_dir,
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.num_epochs,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        per_device_eval_batch_size=eval_batch,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        bf16=bf16,
        **checkpointing_arg(GRPOConfig, cfg.gradient_checkpointing),
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        report_to=list(cfg.report_to) or "none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        beta=cfg.beta,
        reward_weights=weights,
        chat_template_kwargs=dict(cfg.chat_template_kwargs) or None,
        use_vllm=use_vllm,
        log_completions=False,
        remove_unused_columns=False,
        **vllm,
    )
    owned = sorted(set(settings) & set(cfg.trl_args))
    if owned:
        raise ConfigError(
            f"++trl_args.{owned[0]} is set by the stage from its own settings (see --help); set that instead"
        )
    try:  # before loading the model: trl's own checks (batch sizes vs num_generations, unknown trl_args)
        args = GRPOConfig(**settings, **dict(cfg.trl_args))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"GRPO settings: {exc}") from None
    # full fine-tuning keeps float32 master weights under bf16 autocast; frozen LoRA bases can live in bf16
    model = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=torch.float32 if not cfg.lora.enabled and bf16 else dtype
    )
    stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id, *_as_list(model.generation_config.eos_token_id)}
    trace = RewardTrace(cfg.output_dir, names, weights, {i for i in stop_ids if i is not None}, rank=args.process_index)
    funcs: list[Callable[..., list[float]]] = [
        ExecutionReward(trace, cfg.sandbox_url, cfg.rewards.time_limit, cfg.rewards.max_concurrent)
    ]
    if "format" in names:
        funcs.append(FormatReward(trace))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,  # type: ignore[arg-type]  # trl wants list[float | None] back; list is invariant, so list[float] fails
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config(cfg.lora) if cfg.lora.enabled else None,
    )
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    trainer.add_callback(callbacks.FinalCheckpoint())
    return trainer, trace, model_path


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def preflight_rows(cfg: GRPOStageConfig, num_rows: int, prompts_per_batch: int) -> list[int]:
    """M rows drawn with the run's seed, rounded to whole evaluation batches (of all processes together), so
    no process pads its last batch with repeated prompts that would count twice."""
    count = min(cfg.preflight.num_prompts, num_rows)
    if num_rows >= prompts_per_batch:
        count = max(prompts_per_batch, count // prompts_per_batch * prompts_per_batch)
    return sorted(random.Random(cfg.seed).sample(range(num_rows), count))


def run_preflight(cfg: GRPOStageConfig, trainer, trace):
    """Sample G completions for M prompts with the current policy, grade, report; raise PreflightRefused."""
    import json
    import time

    from . import preflight
    from .rewards import PREFLIGHT_TRACE

    dataset = trainer.train_dataset
    per_batch = trainer.args.per_device_eval_batch_size // cfg.num_generations * trainer.args.world_size
    rows = preflight_rows(cfg, len(dataset), per_batch)
    if trainer.is_world_process_zero():
        for old in trace.dir.glob(f"{PREFLIGHT_TRACE}*.jsonl"):
            old.unlink()
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        print(
            f"preflight: sampling {len(rows)} prompts x {cfg.num_generations} completions with the starting policy",
            flush=True,
        )
    started = time.monotonic()
    trace.phase = PREFLIGHT_TRACE
    try:
        trainer.evaluate(eval_dataset=dataset.select(rows), metric_key_prefix="preflight")
    finally:
        trace.phase = "train"
    trainer.accelerator.wait_for_everyone()
    lines = [
        json.loads(text)
        for path in sorted(trace.dir.glob(f"{PREFLIGHT_TRACE}*.jsonl"))
        for text in path.read_text().splitlines()
        if text.strip()
    ]
    report = preflight.summarize(lines, cfg.preflight.max_zero_variance_fraction, cfg.preflight.num_samples_shown)
    report.seconds = round(time.monotonic() - started, 1)
    if trainer.is_world_process_zero():
        path = preflight.write_report(report, cfg.output_dir)
        print(preflight.format_report(report) + f"\n  report: {path}", flush=True)
    if report.refused:
        raise PreflightRefused(preflight.refusal_message(report), report)
    if trainer.is_world_process_zero():
        print("preflight: passed: the rewards vary within groups, so training gets a gradient", flush=True)
    return report


def check_sandbox(cfg: GRPOStageConfig, wait_s: float = 15.0) -> None:
    """Fail before loading the model when no sandbox answers (every reward runs code in it)."""
    from ..sandbox.client import SandboxClient

    with SandboxClient(cfg.sandbox_url) as client:
        try:
            client.wait_until_healthy(wait_s)
        except TimeoutError:
            raise ConfigError(
                f"no sandbox answers at {client.url}: the rewards run each completion's code there. Start one "
                "(python -m assay.sandbox.server --port 6000) and pass ++sandbox_url=http://127.0.0.1:6000 or set "
                "ASSAY_SANDBOX_URL; `assay grpo` starts one beside the job"
            ) from None


def train(cfg: GRPOStageConfig) -> Optional[Path]:
    """Run the preflight, then train; return the last checkpoint (None with preflight_only)."""
    from .callbacks import thread_setup

    thread_setup(cfg.cpu_threads)
    from . import callbacks, checkpoints
    from .merge_lora import merge_lora
    from .sft import is_main_process, quiet_library_output

    quiet_library_output()
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = load_tasks(cfg)
    resume_from = None if cfg.preflight_only else resume_point(cfg, is_main_process())
    done_at = checkpoints.trainer_state(resume_from)["global_step"] if resume_from else 0
    if cfg.max_steps > 0 and done_at >= cfg.max_steps:  # a rerun of a finished run (a follow-up job)
        print(f"grpo: already trained to step {done_at} of {cfg.max_steps}", flush=True)
        return resume_from
    check_sandbox(cfg)
    print(
        f"grpo: {len(rows)} tasks; {cfg.num_generations} completions per prompt, at most "
        f"{cfg.max_completion_length} tokens each",
        flush=True,
    )
    trainer, trace, model_path = build_trainer(cfg, rows)
    if cfg.preflight_only or (cfg.preflight.enabled and resume_from is None):
        run_preflight(cfg, trainer, trace)
        if cfg.preflight_only:
            return None
    elif resume_from is not None:
        print("grpo: preflight skipped (resuming: it ran before this run's first step)", flush=True)
    main = trainer.is_world_process_zero()
    merged_root = output_dir / checkpoints.MERGED_DIR
    merging = cfg.lora.enabled and cfg.merge_checkpoints

    def merge(checkpoint: Path) -> None:
        merge_lora(checkpoint, merged_root / checkpoint.name, base_model=model_path, overwrite=True)
        print(f"grpo: merged {checkpoint.name} -> {merged_root / checkpoint.name}", flush=True)

    def saved(checkpoint: Path) -> None:
        checkpoints.make_readable(checkpoint)
        if merging:
            merge(checkpoint)

    # added after the preflight, whose evaluation logs would otherwise land in train_log.jsonl as step 0
    trainer.add_callback(callbacks.StepLog(str(output_dir), extra_console_keys=("completions/clipped_ratio",)))
    trainer.add_callback(callbacks.OnSave(saved))
    trainer.add_callback(callbacks.ScheduleOnResume())
    stopper = callbacks.StopOnSignal()
    trainer.add_callback(stopper)
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    finally:
        stopper.close()
    if main and merging:
        for checkpoint in checkpoints.checkpoints(output_dir):  # ones a crash left unmerged
            if not (merged_root / checkpoint.name).is_dir():
                merge(checkpoint)
    last = checkpoints.last_checkpoint(output_dir)
    if stopper.stopped_at is not None:  # every rank exits non-zero, so torchrun and the job fail too
        if main:
            print(
                f"grpo: stopped by a signal at step {stopper.stopped_at}; {last} saved; rerun to resume",
                file=sys.stderr,
                flush=True,
            )
        raise SystemExit(3)
    if main:
        print(
            f"grpo: done at step {trainer.state.global_step}; last checkpoint {last}; reward traces in {trace.dir}",
            flush=True,
        )
    return last


def main(argv=None) -> None:
    try:
        run_stage(GRPOStageConfig, train, argv=argv, prog="python -m assay.training.grpo")
    except PreflightRefused as refused:  # every rank refuses (they read the same report); one says why
        from .sft import is_main_process

        if is_main_process():
            print(str(refused), file=sys.stderr, flush=True)
        raise SystemExit(REFUSED_EXIT_CODE) from None


if __name__ == "__main__":
    main()
