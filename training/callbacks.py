"""Trainer callbacks shared by SFT and GRPO: the per-step log, a final checkpoint, a clean stop on a signal.

- StepLog writes every logged step to `<output_dir>/train_log.jsonl` (all numeric values the
  trainer logs: loss, learning_rate, grad_norm, and for GRPO the reward statistics) and prints one
  short line per step, instead of the Trainer's dict printing or progress bar, which are unreadable
  in a job's log file.
- FinalCheckpoint saves at the last step even when save_steps does not divide max_steps, so the
  end of training is always a checkpoint that a sweep evaluates.
- ScheduleOnResume: a resumed run that trains longer than the one that wrote the checkpoint follows
  its own learning rate schedule from the first step on.
- StopOnSignal: SIGTERM, SIGUSR1 or SIGUSR2 (what Slurm sends before a time limit, with `--signal`) makes
  the run save a checkpoint at the end of the current step and stop; the stage then exits non-zero,
  so `afterok` jobs (an evaluation) do not start on an unfinished run while a follow-up copy
  (`dependent_jobs`, `afterany`) resumes it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Callable, Optional

from transformers import TrainerCallback

from .checkpoints import LOG_NAME

TIME_LIMIT_FILE_ENV = "ASSAY_TIME_LIMIT_FILE"
"""Set by the job runner (pipeline/job_runner.py): a file that exists once the time-limit warning came."""

CONSOLE_KEYS = ("loss", "learning_rate", "grad_norm", "reward", "reward_std", "frac_reward_zero_std")
"""What the console line shows, when logged (the JSONL has every numeric value)."""


def _number(value) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


class StepLog(TrainerCallback):
    """One JSON line per logged step (with the step number) in train_log.jsonl, and one console line."""

    def __init__(self, output_dir: str, extra_console_keys: tuple[str, ...] = ()):
        self.path = Path(output_dir) / LOG_NAME
        self.keys = CONSOLE_KEYS + tuple(k for k in extra_console_keys if k not in CONSOLE_KEYS)
        self.started = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "train_runtime" in logs:
            return
        record = {"step": state.global_step}
        record.update({k: v for k, v in ((k, _number(v)) for k, v in logs.items()) if v is not None})
        record["elapsed_s"] = round(time.monotonic() - self.started, 2)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        shown = " ".join(f"{k} {record[k]:.4g}" for k in self.keys if k in record)
        print(f"step {state.global_step}/{state.max_steps} {shown}", flush=True)


class FinalCheckpoint(TrainerCallback):
    """Save at the last step, whatever save_steps is."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            control.should_save = True
        return control


class StopOnSignal(TrainerCallback):
    """Save and stop at the end of the step during which SIGTERM, SIGUSR1 or SIGUSR2 arrived, or after which the job
    runner's time-limit file exists (a warning that came while the model was still loading)."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self.stopped_at: Optional[int] = None
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}

    def close(self) -> None:
        """Give the signals back to their previous handlers (training from Python must not keep them)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, _frame) -> None:
        if self.received is None:
            print(
                f"[assay] got signal {signal.Signals(signum).name}: saving a checkpoint at the end of this step",
                flush=True,
            )
        self.received = signum

    def on_step_end(self, args, state, control, **kwargs):
        warned = os.environ.get(TIME_LIMIT_FILE_ENV)
        if self.received is None and warned and os.path.exists(warned):  # warned before the handler was set
            print("[assay] the time limit is near: saving a checkpoint at the end of this step", flush=True)
            self.received = signal.SIGUSR2
        if _on_any_rank(self.received is not None, args.device):
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control


class ScheduleOnResume(TrainerCallback):
    """On a resume, give the optimizer the learning rate this run's schedule has at the resumed step.

    The Trainer restores the optimizer's learning rate from the checkpoint, as the schedule of the run that
    wrote it left it. When the rerun is longer (max_steps raised to train on), the first step would use
    the old schedule's last rate (0 at the end of a cosine) and only the next ones the new schedule.
    """

    def on_train_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        from torch.optim.lr_scheduler import LambdaLR

        scheduler = getattr(lr_scheduler, "scheduler", lr_scheduler)  # accelerate wraps it
        if not state.global_step or optimizer is None or not isinstance(scheduler, LambdaLR):
            return
        rates = [base * fn(scheduler.last_epoch) for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
        for group, rate in zip(optimizer.param_groups, rates):
            group["lr"] = rate
        scheduler._last_lr = rates


def _on_any_rank(flag: bool, device) -> bool:
    """Whether `flag` is set on any rank: under DDP every rank must stop after the same step (a signal reaches
    the ranks at slightly different times), or the ones still training wait forever for the stopped ones."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    import torch

    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


class OnSave(TrainerCallback):
    """Run `action(checkpoint_dir)` on the main process after each checkpoint is written (e.g. a LoRA merge)."""

    def __init__(self, action: Callable[[Path], None]):
        self.action = action

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.action(Path(args.output_dir) / f"checkpoint-{state.global_step}")


def thread_setup(cpu_threads: Optional[int]) -> None:
    """Pin torch's CPU threads: on a shared or busy machine, spin-waiting OpenMP threads slow steps 10x."""
    if cpu_threads:
        import torch

        os.environ.setdefault("OMP_NUM_THREADS", str(cpu_threads))
        torch.set_num_threads(cpu_threads)
