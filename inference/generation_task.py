"""One output file's share of a generation: what is done, what is left, and the final in-order file.

A task holds only small per-line arrays (a done flag and the byte offset of each line's latest answer
in `<output_file>.partial`), never the samples or their answers, so memory does not grow with the
input beyond a few bytes per line. Input lines are streamed from the file when they are sent, and the
in-order output is written by reading each answer back from the partial file at its offset.

Before any work, under the output's lock (core/output_lock.py): a complete output whose record says it
is the same work ends the task ("complete already"); a complete or partial output of different work
is an error naming what changed, unless `overwrite` (inference/output_record.py).
"""

from __future__ import annotations

import json
from array import array
from pathlib import Path
from typing import Iterator, Optional

from ..core.config import ConfigError
from ..core.jsonl import drop_incomplete_last_line, read_jsonl, write_jsonl_atomic
from ..core.output_lock import OutputLock
from .config import GenerateConfig
from .output_record import OutputRecord, digest_input, other_work_message, read_record, record_path, write_record

INDEX_KEY = "_input_index"
"""The input line a partial-file line answers (the partial file is in finishing order)."""

FINAL_ERRORS = ("context_length",)
"""Errors that belong to the sample, not to the run: recorded on its line, never retried, never counted as failed."""


def chunk_bounds(total: int, chunk_id: int, num_chunks: int) -> tuple[int, int]:
    """[start, end) of one chunk: contiguous, sizes differing by at most one."""
    base, extra = divmod(total, num_chunks)
    start = chunk_id * base + min(chunk_id, extra)
    return start, start + base + (1 if chunk_id < extra else 0)


def selected_range(cfg: GenerateConfig, total: int) -> tuple[int, int]:
    """[start, end) of the input lines this output answers (its chunk, then its first num_samples)."""
    start, end = 0, total
    if cfg.num_chunks:
        start, end = chunk_bounds(total, cfg.chunk_id, cfg.num_chunks)  # type: ignore[arg-type]
    if cfg.num_samples is not None:
        end = min(end, start + cfg.num_samples)
    return start, end


def is_final_error(error: Optional[str]) -> bool:
    return bool(error) and str(error).startswith(FINAL_ERRORS)


class MismatchError(ConfigError):
    """An existing output or partial file was produced by other work."""


class GenerationTask:
    """Prepare with `open()` (takes the lock, checks the record, reads the partial file); then `todo()`,
    `record_answer()` for each finished sample, and `finish()`; `close()` releases the lock."""

    def __init__(self, cfg: GenerateConfig):
        self.cfg = cfg
        self.output = Path(cfg.output_file)
        self.partial = Path(cfg.output_file + ".partial")
        self.lock = OutputLock(cfg.output_file)
        self.complete_already = False
        self.total = 0
        self.start = 0
        self.done = bytearray()
        self.offsets = array("q")
        self.done_before = 0

    # -------------------------------------------------------------- before any request

    def open(self) -> "GenerationTask":
        self.lock.__enter__()
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        self.lock.__exit__(None, None, None)

    def _prepare(self) -> None:
        cfg = self.cfg
        digest = digest_input(cfg.input_file)
        record = OutputRecord.of(cfg, digest)
        self.start, end = selected_range(cfg, digest.lines)
        self.total = end - self.start
        earlier = read_record(cfg.output_file)
        changed = record.differences(earlier) if earlier is not None else []
        if self.output.exists() and cfg.skip_filled:
            if earlier is None or not changed:
                self.complete_already = True
                return
            self._mismatch("is complete", changed)
        if self.partial.exists() and cfg.skip_filled:
            if earlier is None:
                self._mismatch("has a partial file", ["no record of what produced it"])
            elif changed:
                self._mismatch("has a partial file", changed)
        else:
            self.partial.unlink(missing_ok=True)
        if not cfg.skip_filled:
            self.output.unlink(missing_ok=True)
        write_record(cfg.output_file, record)  # before the first sample: the partial file always has one
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.done = bytearray(self.total)
        self.offsets = array("q", [-1]) * self.total
        self._scan_partial()

    def _mismatch(self, what: str, changed: list[str]) -> None:
        if not self.cfg.overwrite:
            raise MismatchError(
                other_work_message(
                    f"{self.output} {what}",
                    changed,
                    "rerun with ++overwrite=true to start over, or write to another output",
                )
            )
        self.output.unlink(missing_ok=True)
        self.partial.unlink(missing_ok=True)
        record_path(self.output).unlink(missing_ok=True)

    def _scan_partial(self) -> None:
        """Offsets of the answers already in the partial file; errors (other than final ones) are redone."""
        if not self.partial.exists():
            return
        drop_incomplete_last_line(self.partial)
        offset = 0
        with self.partial.open("rb") as f:
            for raw in f:
                here, offset = offset, offset + len(raw)
                if not raw.strip():
                    continue
                line = json.loads(raw)
                index = line.get(INDEX_KEY)
                if not isinstance(index, int) or not 0 <= index < self.total:
                    continue
                if line.get("error") is None or is_final_error(line.get("error")):
                    if not self.done[index]:
                        self.done_before += 1
                    self.done[index] = 1
                    self.offsets[index] = here
                elif not self.done[index]:
                    self.offsets[index] = here  # a failure, kept until it is redone

    # -------------------------------------------------------------- the work

    def todo(self) -> Iterator[tuple[int, dict]]:
        """(index, sample) of every selected line not done yet, streamed from the input file."""
        if self.complete_already:
            return
        end = self.start + self.total
        for number, sample in enumerate(read_jsonl(self.cfg.input_file)):
            if number >= end:
                return
            if number >= self.start and not self.done[number - self.start]:
                yield number - self.start, sample

    def record_answer(self, index: int, offset: int, ok: bool) -> None:
        if ok or not self.done[index]:
            self.offsets[index] = offset
        if ok:
            self.done[index] = 1

    # -------------------------------------------------------------- after the last answer

    def failures(self) -> tuple[int, Optional[str]]:
        """How many lines have no answer (a failed request or none at all), and the first error."""
        count, first = 0, None
        if self.complete_already:
            return 0, None
        with self.partial.open("rb") as f:
            for index in range(self.total):
                if self.done[index]:
                    continue
                count += 1
                if first is None and self.offsets[index] >= 0:
                    f.seek(self.offsets[index])
                    first = json.loads(f.readline()).get("error")
        return count, first

    def finish(self) -> int:
        """Write the in-order output from the partial file, then remove it; returns the lines written."""

        def ordered() -> Iterator[dict]:
            with self.partial.open("rb") as f:
                for index in range(self.total):
                    f.seek(self.offsets[index])
                    line = json.loads(f.readline())
                    line.pop(INDEX_KEY, None)
                    yield line

        if self.total:
            write_jsonl_atomic(self.output, ordered())
        else:
            write_jsonl_atomic(self.output, iter(()))
        self.partial.unlink(missing_ok=True)
        return self.total
