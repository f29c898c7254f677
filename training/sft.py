"""Supervised fine-tuning: LoRA or full, assistant tokens only, a checkpoint every save_steps, resumable.

    python -m assay.training.sft ++train_file=sft/train.jsonl ++output_dir=runs/sft ++model=smollm2 \\
        ++lora.rank=8 ++lora.alpha=16 ++lora.target_modules=[q_proj,v_proj] ++max_steps=100 ++save_steps=20

The data is chat `messages` lines (prepare_data.py writes them). Each is tokenized through the model's
chat template piece by piece (chat_tokens.py): the loss counts only the assistant turns, up to their
end-of-turn token, and the prompt tokens are exactly those a server feeds the model at inference.
An example longer than max_length is dropped, never truncated.

Training is transformers + peft + trl's SFTTrainer on the already tokenized examples (trl pads and
batches them and keeps our labels). Outputs in `output_dir`:
- `checkpoint-<step>/` every save_steps and at the last step (LoRA: a PEFT adapter folder);
- `merged/checkpoint-<step>/` for LoRA runs (merge_checkpoints): a servable HF folder per checkpoint,
  so `eval(model="<output_dir>/merged/checkpoint-*")` evaluates every checkpoint;
- `train_log.jsonl`: loss, learning rate, grad norm per step (also printed).

Resume (the default): a rerun with the same output_dir continues from its last complete checkpoint
(weights, optimizer, scheduler, data position, RNG), so a job killed by a time limit loses at most
save_steps steps. Multi-GPU and multi-node: launch with torchrun (pipeline/sft.py does); the Trainer uses DDP.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ..core.config import MISSING, ConfigError, register_stage_config, run_stage

if TYPE_CHECKING:
    from trl import SFTTrainer


@dataclass
class LoraSettings:
    """LoRA adapters (peft). Set enabled=false for full fine-tuning."""

    enabled: bool = True
    """Train LoRA adapters (true) or every weight of the model (false)."""
    rank: int = 16
    """Rank r of the low-rank update."""
    alpha: int = 32
    """Scaling numerator: the update is scaled by alpha / rank."""
    dropout: float = 0.0
    """Dropout on the adapter's input."""
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """Module names (suffixes) that get adapters; [all-linear] for every linear layer but the output head."""
    target_parameters: list[str] = field(default_factory=list)
    """Parameter names that get adapters directly, for MoE experts stored as 3-D tensors rather than
    Linear modules, e.g. [mlp.experts.gate_up_proj,mlp.experts.down_proj] for gpt-oss (peft >= 0.17)."""


@register_stage_config
@dataclass
class SFTStageConfig:
    """Fine-tune a causal LM on chat data, on the assistant tokens only."""

    train_file: str = MISSING
    """JSONL of chat examples: {"messages": [{"role": ..., "content": ...}, ...]} per line."""
    output_dir: str = MISSING
    """Checkpoints, merged checkpoints, train_log.jsonl. Rerunning with the same folder resumes."""
    model: str = "smollm2"
    """The starting model: a path or an alias (smollm2). Training starts from it, not from a checkpoint."""
    tokenizer: Optional[str] = None
    """A different tokenizer folder than the model's."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    messages_key: str = "messages"
    """The field holding the chat messages."""
    chat_template_kwargs: dict = field(default_factory=dict)
    """Extra arguments of the chat template, as at inference."""
    max_length: int = 4096
    """Longest example in tokens; longer ones are dropped (and counted), never truncated."""
    max_steps: int = -1
    """Optimizer steps to run; -1: num_epochs over the data."""
    num_epochs: float = 1.0
    """Passes over the data when max_steps is -1."""
    batch_size: int = 1
    """Examples per device per micro-step (padded to the longest in the batch)."""
    gradient_accumulation_steps: int = 1
    """Micro-steps per optimizer step (global batch = batch_size x this x number of GPUs)."""
    learning_rate: float = 1e-4
    """Peak learning rate (LoRA typically 1e-4 to 2e-4; full fine-tuning 1e-5 to 2e-5)."""
    lr_scheduler: str = "cosine"
    """transformers scheduler name: cosine, linear, constant, constant_with_warmup, ..."""
    warmup_steps: int = 0
    """Linear warmup steps."""
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    dtype: str = "auto"
    """Weights' dtype: auto (bfloat16 on a GPU that supports it, float32 on CPU), bfloat16, float32."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, about 30% slower (off for small models and CPU)."""
    save_steps: int = 100
    """Save a checkpoint every this many steps (and at the last step)."""
    save_total_limit: Optional[int] = None
    """Keep only the newest N checkpoints; default all (every checkpoint is evaluated: the best can be early)."""
    merge_checkpoints: bool = True
    """LoRA: also write a merged, servable copy of each checkpoint to merged/checkpoint-<step> (loads the base
    model again on the main process for each save: set false for very large models and merge_lora later)."""
    logging_steps: int = 1
    """Log (console and train_log.jsonl) every this many steps."""
    seed: int = 42
    resume: bool = True
    """Continue from the last complete checkpoint in output_dir when there is one."""
    ddp_find_unused_parameters: bool = False
    """Multi-GPU: let DDP look for parameters a forward pass did not use. Off: every weight of a decoder LM (and
    of fused MoE experts) is used in each step, and the search costs an extra pass; turn it on for models whose
    forward skips some parameters (e.g. MoE experts as separate Linear modules under full fine-tuning)."""
    cpu_threads: Optional[int] = None
    """torch CPU threads; set 1 on a shared, busy machine, where spinning OpenMP threads slow steps by 10x."""
    report_to: list[str] = field(default_factory=list)
    """Extra loggers of the HF Trainer: tensorboard, wandb (installed separately)."""

    def __post_init__(self) -> None:
        if self.max_steps == 0 or self.save_steps < 1 or self.logging_steps < 1:
            raise ValueError("max_steps must be -1 or positive, save_steps and logging_steps positive")
        if self.dtype not in ("auto", "bfloat16", "float32", "float16"):
            raise ValueError(f"dtype must be auto, bfloat16, float16 or float32, got '{self.dtype}'")


def load_examples(cfg: SFTStageConfig, tokenizer) -> tuple[list[dict], int]:
    """Tokenized examples ({input_ids, labels}) that fit max_length, and how many did not."""
    from ..core.jsonl import read_jsonl
    from .chat_tokens import tokenize_conversation

    rows, too_long = [], 0
    for number, line in enumerate(read_jsonl(cfg.train_file), start=1):
        messages = line.get(cfg.messages_key)
        if not isinstance(messages, list):
            raise ConfigError(
                f"{cfg.train_file}:{number}: no '{cfg.messages_key}' list (++messages_key); "
                "assay.training.prepare_data writes this format"
            )
        conv = tokenize_conversation(tokenizer, messages, cfg.chat_template_kwargs)
        if len(conv) > cfg.max_length:
            too_long += 1
            continue
        rows.append({"input_ids": conv.input_ids, "labels": conv.labels})
    if not rows:
        raise ConfigError(f"no example of {cfg.train_file} fits max_length={cfg.max_length}")
    return rows, too_long


def peft_config(lora: LoraSettings):
    from peft import LoraConfig

    targets = lora.target_modules
    kwargs: dict[str, Any] = {}
    if lora.target_parameters:
        kwargs["target_parameters"] = list(lora.target_parameters)
    return LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        task_type="CAUSAL_LM",
        target_modules="all-linear" if targets == ["all-linear"] else (list(targets) or None),
        **kwargs,
    )


def resolve_dtype(name: str):
    """(torch dtype of the weights, bf16 autocast on) for a dtype setting on this machine."""
    import torch

    on_gpu = torch.cuda.is_available()
    if name == "auto":
        name = "bfloat16" if on_gpu and torch.cuda.is_bf16_supported() else "float32"
    return getattr(torch, name), on_gpu and name == "bfloat16"


def checkpointing_arg(config_class, enabled: bool) -> dict:
    """transformers 5 renamed gradient_checkpointing to activation_checkpointing (the old name warns)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_class)}
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": enabled}


def quiet_library_output() -> None:
    """Progress bars of weight loading and dataset maps fill a job's log file with carriage returns, and
    transformers warns about its own deprecated call on every save; neither tells the user anything."""
    import warnings

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch (or a single process), before torch.distributed is set up."""
    return int(os.environ.get("RANK", "0")) == 0


def resume_point(cfg: SFTStageConfig) -> Optional[Path]:
    """The checkpoint to continue from (after removing half-written ones), or None to start fresh.

    Only the main process changes files (every rank of a torchrun launch gets here at once); the others
    see the same complete checkpoints, since a checkpoint counts only once its trainer_state.json exists.
    """
    from . import checkpoints

    output_dir = Path(cfg.output_dir)
    main = is_main_process()
    if main:
        for path in checkpoints.remove_incomplete(output_dir):
            print(f"sft: removed incomplete checkpoint {path}", flush=True)
    last = checkpoints.last_checkpoint(output_dir)
    if last is None:
        if main:
            (output_dir / checkpoints.LOG_NAME).unlink(missing_ok=True)
        return None
    if not cfg.resume:
        raise ConfigError(
            f"{output_dir} already has checkpoints (last: {last.name}); pass ++resume=true to "
            "continue that run, or choose a new output_dir"
        )
    step = checkpoints.checkpoint_step(last)
    assert step is not None  # last_checkpoint finds checkpoint-<step> folders only
    if main:
        checkpoints.truncate_log(output_dir, step)
        print(f"sft: resuming from {last} (step {step})", flush=True)
    return last


def planned_steps(trainer, cfg: SFTStageConfig) -> int:
    """The step training ends at: max_steps, or num_epochs over the batches this process sees.

    The Trainer runs one step past its end when resumed from a checkpoint at that end, so the stage
    must not call it then.
    """
    if cfg.max_steps > 0:
        return cfg.max_steps
    batches = len(trainer.get_train_dataloader())
    per_epoch = max(math.ceil(batches / cfg.gradient_accumulation_steps), 1)
    return math.ceil(cfg.num_epochs * per_epoch)


@dataclass
class Run:
    """A trainer ready to start, and what train() needs around it."""

    trainer: SFTTrainer
    model_path: str
    resume_from: Optional[Path]


def build(cfg: SFTStageConfig) -> Run:
    """Load the model and data and set up the trainer, its callbacks and the resume point; train nothing."""
    from .callbacks import thread_setup

    thread_setup(cfg.cpu_threads)
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    from ..inference.embedded_model import resolve_model
    from . import callbacks
    from .chat_tokens import load_tokenizer

    quiet_library_output()
    if not Path(cfg.train_file).is_file():
        raise ConfigError(f"train_file {cfg.train_file} does not exist")
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_path = resolve_model(cfg.model)
    tokenizer = load_tokenizer(model_path, cfg.tokenizer)
    rows, too_long = load_examples(cfg, tokenizer)
    if is_main_process():
        print(
            f"sft: {len(rows)} examples"
            + (f" ({too_long} longer than max_length={cfg.max_length} dropped)" if too_long else ""),
            flush=True,
        )
    resume_from = resume_point(cfg)
    dtype, bf16 = resolve_dtype(cfg.dtype)
    # full fine-tuning keeps float32 master weights under bf16 autocast; frozen LoRA bases can live in bf16
    load_dtype = torch.float32 if not cfg.lora.enabled and bf16 else dtype
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=load_dtype)
    args = SFTConfig(
        output_dir=str(output_dir),
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.num_epochs,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        bf16=bf16,
        **checkpointing_arg(SFTConfig, cfg.gradient_checkpointing),
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        report_to=list(cfg.report_to) or "none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        max_length=cfg.max_length,
        packing=False,
        dataset_num_proc=None,
        remove_unused_columns=False,
        ddp_find_unused_parameters=cfg.ddp_find_unused_parameters,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config(cfg.lora) if cfg.lora.enabled else None,
    )
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    trainer.add_callback(callbacks.StepLog(str(output_dir)))
    trainer.add_callback(callbacks.FinalCheckpoint())
    trainer.add_callback(callbacks.ScheduleOnResume())
    return Run(trainer, model_path, resume_from)


def train(cfg: SFTStageConfig) -> Optional[Path]:
    """Train (or resume) the run; return its last complete checkpoint (None only if it saved none)."""
    from . import callbacks, checkpoints
    from .merge_lora import merge_lora

    run = build(cfg)
    trainer, output_dir = run.trainer, Path(cfg.output_dir)
    merged_root = output_dir / checkpoints.MERGED_DIR
    merging = cfg.lora.enabled and cfg.merge_checkpoints

    def merge(checkpoint: Path) -> None:
        target = merged_root / checkpoint.name
        merge_lora(checkpoint, target, base_model=run.model_path, overwrite=True)
        print(f"sft: merged {checkpoint.name} -> {target}", flush=True)

    def saved(checkpoint: Path) -> None:
        checkpoints.make_readable(checkpoint)
        if merging:
            merge(checkpoint)

    trainer.add_callback(callbacks.OnSave(saved))
    stopper = callbacks.StopOnSignal()
    trainer.add_callback(stopper)
    main = trainer.is_world_process_zero()
    done_at = checkpoints.trainer_state(run.resume_from)["global_step"] if run.resume_from else 0
    if done_at >= planned_steps(trainer, cfg):  # a rerun of a finished run (a follow-up job): nothing to train
        stopper.close()
        if main:
            print(f"sft: already trained to step {done_at} of {planned_steps(trainer, cfg)}", flush=True)
    else:
        try:
            trainer.train(resume_from_checkpoint=str(run.resume_from) if run.resume_from else None)
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
                f"sft: stopped by a signal at step {stopper.stopped_at}; {last} saved; rerun to resume",
                file=sys.stderr,
                flush=True,
            )
        raise SystemExit(3)
    if main:
        print(f"sft: done at step {max(done_at, trainer.state.global_step)}; last checkpoint {last}", flush=True)
    return last


def main(argv=None) -> None:
    run_stage(SFTStageConfig, train, argv=argv, prog="python -m assay.training.sft")


if __name__ == "__main__":
    main()
