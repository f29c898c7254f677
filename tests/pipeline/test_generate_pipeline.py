"""generate(): overrides checked at submit, seeds x chunks planned into jobs, merges after their chunks."""

import json
import re
import subprocess

import pytest

from assay.core.config import ConfigError
from assay.pipeline import generate, wrap_arguments


def write_input(tmp_path, n=5):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": i, "question": f"q{i}"}) + "\n" for i in range(n)))
    return str(path)


def test_a_misspelt_override_fails_before_anything_is_submitted(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="Did you mean 'inference.temperature'"):
        generate(
            input_file=write_input(tmp_path),
            output_dir=str(out),
            model="m",
            ctx=wrap_arguments("++inference.temprature=0.7"),
        )
    assert not out.exists()


def test_keys_the_pipeline_sets_are_refused_in_overrides(tmp_path):
    with pytest.raises(ConfigError, match="output_file is set by the pipeline"):
        generate(
            input_file=write_input(tmp_path),
            output_dir=str(tmp_path),
            model="m",
            ctx=wrap_arguments("++output_file=x.jsonl"),
        )


def test_cli_reports_a_bad_override_with_exit_2(tmp_path):
    proc = subprocess.run(
        [
            "assay",
            "generate",
            f"--input_file={write_input(tmp_path)}",
            f"--output_dir={tmp_path}",
            "--model=m",
            "++inference.temperature=hot",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "'inference.temperature' expects float, got 'hot'" in proc.stderr


def test_dry_run_plans_seeds_times_chunks_and_a_merge_per_seed(tmp_path, capsys):
    generate(
        input_file=write_input(tmp_path),
        output_dir=str(tmp_path),
        model="smollm2",
        cluster="test-slurm",
        num_random_seeds=2,
        num_chunks=2,
        server_gpus=1,
        server_args="--async-scheduling",
        dry_run=True,
        ctx=wrap_arguments("++inference.temperature=0.7"),
    )
    text = capsys.readouterr().out
    blocks = re.split(r"(?=^### )", text, flags=re.M)[1:]
    assert len(blocks) == 4  # on Slurm, one job per chunk (each running both seeds of it at once) + a merge per seed
    ids = [re.match(r"### \S+ \[(\S+)\]", b)[1] for b in blocks]
    gen, merges = blocks[:2], blocks[2:]
    for block in gen:
        assert "assay.inference.serve --server_type=vllm --model=smollm2 --served_model_name=smollm2 --port=" in block
        assert "--job-name=assay_test_generate-server" in block  # the server's own step
        assert "--server_args=--async-scheduling" in block
        assert "'++server.port={server_port}'" in block and "++inference.temperature=0.7" in block
        assert "#SBATCH --gpus-per-node=1" in block
        assert block.count("--task") == 2
    assert "output-rs0_chunk_0.jsonl" in gen[0] and "output-rs1_chunk_0.jsonl" in gen[0] and "++chunk_id=0" in gen[0]
    assert "output-rs1_chunk_1.jsonl" in gen[1] and "++inference.random_seed=1" in gen[1]
    assert f"--dependency=afterok:{ids[0]}:{ids[1]}" in merges[0] and "output-rs0.jsonl" in merges[0]
    assert f"--dependency=afterok:{ids[0]}:{ids[1]}" in merges[1] and "assay.inference.merge_chunks" in merges[1]


def test_num_jobs_groups_tasks_into_that_many_jobs(tmp_path, capsys):
    generate(
        input_file=write_input(tmp_path),
        output_dir=str(tmp_path),
        model="m",
        num_random_seeds=4,
        num_jobs=2,
        dry_run=True,
    )
    blocks = re.split(r"(?=^### )", capsys.readouterr().out, flags=re.M)[1:]
    assert len(blocks) == 2
    assert "output-rs0.jsonl" in blocks[0] and "output-rs2.jsonl" in blocks[0]
    assert "output-rs1.jsonl" in blocks[1] and "output-rs3.jsonl" in blocks[1]


def test_local_run_with_seeds_and_chunks_writes_whole_files(standin_url, tmp_path):
    out = tmp_path / "gen"
    generate(
        input_file=write_input(tmp_path, n=5),
        output_dir=str(out),
        model="standin",
        server_type="openai",
        server_address=standin_url,
        num_random_seeds=2,
        num_chunks=2,
    )
    for seed in (0, 1):
        lines = [json.loads(x) for x in (out / f"output-rs{seed}.jsonl").read_text().splitlines()]
        assert [x["id"] for x in lines] == list(range(5))
        assert all(x["generation"] == x["question"][::-1] for x in lines)
    assert not list(out.glob("*_chunk_*"))


def test_postprocess_filter_keeps_only_matching_samples(standin_url, tmp_path):
    out = tmp_path / "sdg"
    inp = tmp_path / "in.jsonl"
    inp.write_text(
        "".join(json.dumps({"question": q}) + "\n" for q in ["}1{dexob\\ si rewsna", "no answer here", "}2{dexob\\"])
    )
    cmd = (
        "python -m assay.inference.filter_output ++input_file={output_file} ++output_file={output_file} "
        "++keep_if_matches=boxed"
    )
    generate(
        input_file=str(inp),
        output_dir=str(out),
        model="standin",
        server_type="openai",
        server_address=standin_url,
        num_chunks=2,
        postprocess_cmd=cmd,
    )
    lines = [json.loads(x) for x in (out / "output.jsonl").read_text().splitlines()]
    assert [x["generation"] for x in lines] == ["answer is \\boxed{1}", "\\boxed{2}"]


def test_num_jobs_beyond_the_seeds_splits_the_input(tmp_path, capsys):
    generate(input_file=write_input(tmp_path), output_dir=str(tmp_path), model="m", num_jobs=3, dry_run=True)
    blocks = re.split(r"(?=^### )", capsys.readouterr().out, flags=re.M)[1:]
    assert len(blocks) == 4  # three chunk jobs, each with its own server, and the merge
    for i in range(3):
        assert f"output_chunk_{i}.jsonl" in blocks[i] and "assay.inference.serve" in blocks[i]
    assert "assay.inference.merge_chunks" in blocks[3] and "++num_chunks=3" in blocks[3]


def test_code_execution_is_checked_at_submit(tmp_path):
    with pytest.raises(ConfigError, match="needs \\+\\+code_tags"):
        generate(
            input_file=write_input(tmp_path),
            output_dir=str(tmp_path),
            model="m",
            with_sandbox=True,
            ctx=wrap_arguments("++code_execution=true"),
            dry_run=True,
        )
    with pytest.raises(ConfigError, match="--with_sandbox"):
        generate(
            input_file=write_input(tmp_path),
            output_dir=str(tmp_path),
            model="m",
            ctx=wrap_arguments("++code_execution=true ++code_tags=generic"),
            dry_run=True,
        )


def test_a_rerun_after_success_submits_nothing_and_changed_work_is_refused_at_submission(standin_url, tmp_path, capsys):
    out = tmp_path / "gen"
    args = dict(
        input_file=write_input(tmp_path, n=5),
        output_dir=str(out),
        model="standin",
        server_type="openai",
        server_address=standin_url,
        num_random_seeds=2,
        num_chunks=2,
    )
    generate(**args)
    capsys.readouterr()
    again = generate(**args)
    assert again.handles == []
    text = capsys.readouterr().out
    assert "skipped 4 generation task(s)" in text and str(out / "output-rs0.jsonl") in text
    with pytest.raises(ConfigError, match=r"top_p: 0.95 -> 0.5"):
        generate(**args, ctx=wrap_arguments("++inference.top_p=0.5"))
    redo = generate(**args, ctx=wrap_arguments("++inference.top_p=0.5 ++overwrite=true"))
    assert len(redo.handles) == 3  # one generation job (local: one server) + a merge per seed


def test_finished_chunks_are_not_submitted_again(standin_url, tmp_path, capsys):
    from assay.inference.merge_chunks import chunk_file

    out = tmp_path / "gen"
    inp = write_input(tmp_path, n=4)
    # chunk 0 was generated by an earlier (killed) run; chunk 1 was not
    subprocess.run(
        [
            "python",
            "-m",
            "assay.inference.generate",
            f"++input_file={inp}",
            f"++output_file={chunk_file(out / 'output.jsonl', 0)}",
            "++chunk_id=0",
            "++num_chunks=2",
            "++server.server_type=openai",
            f"++server.base_url={standin_url}",
            "++server.model=standin",
        ],
        check=True,
        capture_output=True,
    )
    experiment = generate(
        input_file=inp,
        output_dir=str(out),
        model="standin",
        server_type="openai",
        server_address=standin_url,
        num_chunks=2,
    )
    text = capsys.readouterr().out
    assert "skipped 1 generation task(s)" in text and "output_chunk_0.jsonl" in text
    assert len(experiment.handles) == 2  # chunk 1 and the merge
    assert [json.loads(x)["id"] for x in (out / "output.jsonl").read_text().splitlines()] == [0, 1, 2, 3]
