"""Checkpoints of a training run: which are complete, which to resume from, and the per-step log.

A run's `output_dir` holds `checkpoint-<step>/` folders written by the HF Trainer, and
`train_log.jsonl`, one line per logged step. The Trainer writes `trainer_state.json` last into a
checkpoint, so a folder without it was cut short by a crash or a kill: it is removed before a
resume, never resumed from (and never evaluated).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Optional

from ..core.jsonl import drop_incomplete_last_line, read_jsonl, write_jsonl_atomic

LOG_NAME = "train_log.jsonl"
MERGED_DIR = "merged"
"""`<output_dir>/merged/checkpoint-<step>/`: servable folders of LoRA checkpoints (eval globs them)."""
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: Path) -> Optional[int]:
    match = _CHECKPOINT.match(Path(path).name)
    return int(match.group(1)) if match else None


def is_complete(checkpoint: Path) -> bool:
    return (checkpoint / "trainer_state.json").is_file()


def checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints, by step."""
    if not Path(output_dir).is_dir():
        return []
    steps = {p: step for p in Path(output_dir).iterdir() if p.is_dir() and (step := checkpoint_step(p)) is not None}
    return sorted((p for p in steps if is_complete(p)), key=steps.__getitem__)


def remove_incomplete(output_dir: Path) -> list[Path]:
    """Delete checkpoint folders a crash left half-written (and their merged copies); return them."""
    removed: list[Path] = []
    if not Path(output_dir).is_dir():
        return removed
    for path in Path(output_dir).iterdir():
        if path.is_dir() and checkpoint_step(path) is not None and not is_complete(path):
            shutil.rmtree(path)
            shutil.rmtree(Path(output_dir) / MERGED_DIR / path.name, ignore_errors=True)
            removed.append(path)
    return removed


def last_checkpoint(output_dir: Path) -> Optional[Path]:
    found = checkpoints(output_dir)
    return found[-1] if found else None


def truncate_log(output_dir: Path, last_step: int) -> None:
    """Keep log lines up to `last_step`: the steps after the resumed checkpoint are run again."""
    path = Path(output_dir) / LOG_NAME
    if not path.exists():
        return
    drop_incomplete_last_line(path)
    write_jsonl_atomic(path, [line for line in read_jsonl(path) if line.get("step", 0) <= last_step])


def read_log(output_dir: Path) -> list[dict]:
    path = Path(output_dir) / LOG_NAME
    return list(read_jsonl(path)) if path.exists() else []


def trainer_state(checkpoint: Path) -> dict:
    return json.loads((Path(checkpoint) / "trainer_state.json").read_text())


def make_readable(folder: Path) -> None:
    """Give the files of a saved model the usual permissions (0644 under the default umask).

    safetensors writes its files 0600, so a checkpoint or merged model would be unreadable to the
    rest of the group, or to a server running in a container as another user.
    """
    umask = os.umask(0)
    os.umask(umask)
    for path in Path(folder).iterdir():
        if path.is_file():
            os.chmod(path, 0o644 & ~umask)
