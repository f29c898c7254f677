"""Merging chunk files: complete chunks become one file in order; anything incomplete changes nothing."""

import json

import pytest

from assay.core.config import ConfigError
from assay.inference.config import GenerateConfig, ServerConfig
from assay.inference.generate import chunk_bounds
from assay.inference.merge_chunks import MergeChunksConfig, chunk_file, merge_chunks
from assay.inference.output_record import OutputRecord, digest_input, read_record, write_record


def write_lines(path, lines):
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


@pytest.mark.parametrize("total, chunks", [(10, 3), (2, 4), (7, 7), (0, 2)])
def test_chunk_bounds_cover_the_input_once(total, chunks):
    covered = []
    for i in range(chunks):
        start, end = chunk_bounds(total, i, chunks)
        covered.extend(range(start, end))
    assert covered == list(range(total))


def write_chunk_record(inp, out, chunk, chunks, temperature=0.0):
    """The record the generation stage writes beside each chunk (inference/output_record.py)."""
    cfg = GenerateConfig(
        input_file=str(inp),
        output_file=str(chunk_file(out, chunk)),
        chunk_id=chunk,
        num_chunks=chunks,
        server=ServerConfig(model="m"),
    )
    cfg.inference.temperature = temperature
    write_record(cfg.output_file, OutputRecord.of(cfg, digest_input(inp)))


def setup_chunks(tmp_path, total=7, chunks=3, skip=None):
    inp = tmp_path / "in.jsonl"
    write_lines(inp, [{"i": i} for i in range(total)])
    out = tmp_path / "output-rs0.jsonl"
    for c in range(chunks):
        if c == skip:
            continue
        start, end = chunk_bounds(total, c, chunks)
        write_lines(chunk_file(out, c), [{"i": i, "generation": f"g{i}"} for i in range(start, end)])
        write_chunk_record(inp, out, c, chunks)
    return MergeChunksConfig(input_file=str(inp), output_file=str(out), num_chunks=chunks)


def test_merge_writes_all_lines_in_order_and_removes_chunks(tmp_path):
    cfg = setup_chunks(tmp_path)
    merge_chunks(cfg)
    lines = [json.loads(x) for x in open(cfg.output_file)]
    assert [x["i"] for x in lines] == list(range(7))
    assert not any(chunk_file(cfg.output_file, c).exists() for c in range(3))


def test_a_missing_chunk_stops_the_merge_and_keeps_the_others(tmp_path):
    cfg = setup_chunks(tmp_path, skip=1)
    with pytest.raises(ConfigError, match="chunk 1: .* is missing"):
        merge_chunks(cfg)
    assert chunk_file(cfg.output_file, 0).exists() and chunk_file(cfg.output_file, 2).exists()
    assert not (tmp_path / "output-rs0.jsonl").exists()


def test_a_short_chunk_stops_the_merge(tmp_path):
    cfg = setup_chunks(tmp_path)
    path = chunk_file(cfg.output_file, 2)
    path.write_text(path.read_text().splitlines(keepends=True)[0])
    with pytest.raises(ConfigError, match="chunk 2: .* has 1 lines, expected 2"):
        merge_chunks(cfg)


def test_a_rerun_after_success_is_a_no_op(tmp_path, capsys):
    cfg = setup_chunks(tmp_path)
    merge_chunks(cfg)
    before = open(cfg.output_file).read()
    merge_chunks(cfg)
    assert "merged already; nothing to do" in capsys.readouterr().out
    assert open(cfg.output_file).read() == before and read_record(cfg.output_file).chunk_id is None


def test_a_merge_killed_after_writing_the_whole_file_recovers(tmp_path, capsys):
    cfg = setup_chunks(tmp_path)
    merge_chunks(cfg)
    # what a merge killed midway through deleting its chunks leaves: the whole file and some chunks
    inp, out = cfg.input_file, cfg.output_file
    start, end = chunk_bounds(7, 2, 3)
    write_lines(chunk_file(out, 2), [{"i": i, "generation": f"g{i}"} for i in range(start, end)])
    write_chunk_record(inp, out, 2, 3)
    merge_chunks(cfg)
    assert "removed 1 chunk files and 0 records" in capsys.readouterr().out
    assert not chunk_file(out, 2).exists() and len(open(out).readlines()) == 7


def test_chunks_of_different_work_are_not_merged(tmp_path):
    cfg = setup_chunks(tmp_path)
    write_chunk_record(cfg.input_file, cfg.output_file, 1, 3, temperature=0.7)
    with pytest.raises(ConfigError, match="different work"):
        merge_chunks(cfg)
    assert chunk_file(cfg.output_file, 0).exists()
