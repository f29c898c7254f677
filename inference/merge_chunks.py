"""Merge the chunk files of one generation into the whole file, then remove the chunks.

    python -m assay.inference.merge_chunks ++input_file=in.jsonl ++output_file=out/output-rs0.jsonl ++num_chunks=4

Chunk i of `output-rs0.jsonl` is `output-rs0_chunk_<i>.jsonl`. The merge checks that every chunk is
complete (exactly the lines its slice of the input should give, and a record of the same work) before
writing anything, streams them into the whole file atomically, re-counts it, and only then deletes the
chunks: a failed check loses nothing.

It can run again at any point: once the whole file exists with the chunks' record, a rerun only
removes chunk files a killed merge left behind, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..core.config import MISSING, ConfigError, register_stage_config, run_stage
from ..core.jsonl import count_jsonl, read_jsonl, write_jsonl_atomic
from ..core.output_lock import OutputLock
from .generation_task import chunk_bounds
from .output_record import OutputRecord, read_record, record_path, write_record


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

    def __post_init__(self) -> None:
        if self.num_chunks < 1:
            raise ValueError(f"num_chunks={self.num_chunks} must be at least 1")


def chunk_file(output_file: str | Path, chunk_id: int) -> Path:
    path = Path(output_file)
    return path.with_name(f"{path.stem}_chunk_{chunk_id}{path.suffix}")


def _same_work(records: list[Optional[OutputRecord]]) -> Optional[OutputRecord]:
    """The whole file's record, when every chunk has one and they differ only in their chunk id."""
    wholes = [r.whole() if r is not None else None for r in records]
    first = wholes[0]
    return first if first is not None and all(w == first for w in wholes) else None


def _is_part_of(chunk: Path, merged: OutputRecord) -> bool:
    record = read_record(chunk)
    return record is not None and record.whole() == merged


def _remove_chunk(path: Path) -> None:
    path.unlink()
    record_path(path).unlink(missing_ok=True)


def merge_chunks(cfg: MergeChunksConfig) -> None:
    with OutputLock(cfg.output_file):
        _merge(cfg)


def _merge(cfg: MergeChunksConfig) -> None:
    output = Path(cfg.output_file)
    chunks = [chunk_file(output, i) for i in range(cfg.num_chunks)]
    merged = read_record(output) if output.exists() else None
    leftovers = [p for p in chunks if p.exists()]
    if merged is not None and all(_is_part_of(p, merged) for p in leftovers):
        # a merge killed between removing a chunk and its record leaves the record alone
        orphans = [record_path(p) for p in chunks if not p.exists() and record_path(p).exists()]
        for path in leftovers:
            _remove_chunk(path)
        for orphan in orphans:
            orphan.unlink(missing_ok=True)
        print(
            f"{output} is merged already; "
            + (
                f"removed {len(leftovers)} chunk files and {len(orphans)} records an earlier merge left behind"
                if leftovers or orphans
                else "nothing to do"
            )
        )
        return
    total = count_jsonl(cfg.input_file)
    problems = []
    expected_total = 0
    for i, path in enumerate(chunks):
        start, end = chunk_bounds(total, i, cfg.num_chunks)
        expected = end - start if cfg.num_samples is None else min(end - start, cfg.num_samples)
        expected_total += expected
        if not path.exists():
            problems.append(f"chunk {i}: {path} is missing (its job did not finish)")
            continue
        found = count_jsonl(path)
        if found != expected:
            problems.append(f"chunk {i}: {path} has {found} lines, expected {expected}")
    records = [read_record(p) for p in chunks] if not problems else []
    record = _same_work(records) if records else None
    if records and record is None:
        problems.append("the chunks' records (.meta.json) are missing or say they come from different work")
    if problems:
        raise ConfigError("cannot merge, nothing was changed:\n  " + "\n  ".join(problems))

    def lines() -> Iterator[dict]:
        for path in chunks:
            yield from read_jsonl(path)

    write_jsonl_atomic(output, lines())
    written = count_jsonl(output)
    if written != expected_total:
        output.unlink()
        raise RuntimeError(f"{output} had {written} lines after the merge, expected {expected_total}; removed it")
    assert record is not None
    write_record(output, record)  # from here on the merge is done: a rerun only cleans up
    for path in chunks:
        _remove_chunk(path)
    print(f"merged {cfg.num_chunks} chunks ({written} lines) into {output}")


def main(argv=None) -> None:
    run_stage(MergeChunksConfig, merge_chunks, argv=argv, prog="python -m assay.inference.merge_chunks")


if __name__ == "__main__":
    main()
