"""Merge the chunk files of one generation into the whole file, then remove the chunks.

    python -m assay.inference.merge_chunks ++input_file=in.jsonl ++output_file=out/output-rs0.jsonl ++num_chunks=4

Chunk i of `output-rs0.jsonl` is `output-rs0_chunk_<i>.jsonl`. The merge checks that every chunk is
complete (exactly the lines its slice of the input should give) before writing anything, writes the
whole file atomically, re-reads it, and only then deletes the chunks: a failed check loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..core.config import MISSING, ConfigError, register_stage_config, run_stage
from ..core.jsonl import read_jsonl, write_jsonl_atomic


@register_stage_config
@dataclass
class MergeChunksConfig:
    """Merge `num_chunks` chunk files into `output_file`."""

    input_file: str = MISSING
    """The generation's input, to know how many lines each chunk must have."""
    output_file: str = MISSING
    """The whole file to write; chunk i is `<stem>_chunk_<i>.jsonl` beside it."""
    num_chunks: int = MISSING
    """How many chunks the input was split into."""
    num_samples: Optional[int] = None
    """The generation's num_samples, if it limited each chunk."""


def chunk_file(output_file: str | Path, chunk_id: int) -> Path:
    path = Path(output_file)
    return path.with_name(f"{path.stem}_chunk_{chunk_id}{path.suffix}")


def merge_chunks(cfg: MergeChunksConfig) -> None:
    from .generate import chunk_bounds

    total = sum(1 for _ in read_jsonl(cfg.input_file))
    merged: list[dict] = []
    problems = []
    for i in range(cfg.num_chunks):
        start, end = chunk_bounds(total, i, cfg.num_chunks)
        expected = end - start if cfg.num_samples is None else min(end - start, cfg.num_samples)
        path = chunk_file(cfg.output_file, i)
        if not path.exists():
            problems.append(f"chunk {i}: {path} is missing (its job did not finish)")
            continue
        lines = list(read_jsonl(path))
        if len(lines) != expected:
            problems.append(f"chunk {i}: {path} has {len(lines)} lines, expected {expected}")
        merged.extend(lines)
    if problems:
        raise ConfigError("cannot merge, nothing was changed:\n  " + "\n  ".join(problems))
    write_jsonl_atomic(cfg.output_file, merged)
    written = sum(1 for _ in read_jsonl(cfg.output_file))
    if written != len(merged):
        raise RuntimeError(f"{cfg.output_file} has {written} lines after the merge, expected {len(merged)}")
    for i in range(cfg.num_chunks):
        chunk_file(cfg.output_file, i).unlink()
    print(f"merged {cfg.num_chunks} chunks ({written} lines) into {cfg.output_file}")


def main(argv=None) -> None:
    run_stage(MergeChunksConfig, merge_chunks, argv=argv, prog="python -m assay.inference.merge_chunks")


if __name__ == "__main__":
    main()
