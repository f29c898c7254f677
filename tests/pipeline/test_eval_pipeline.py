"""eval(): benchmarks parsed and checked at submit, generation -> grading -> metrics chained, models compared."""

import json
import re

import pytest

from assay.core.config import ConfigError
from assay.pipeline.evaluate import eval as run_eval
from assay.pipeline.evaluate import expand_models, parse_benchmarks


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))


def test_benchmarks_string_is_parsed_and_checked():
    assert parse_benchmarks("smallmath:4, mlcode") == [("smallmath", 4), ("mlcode", 1)]
    with pytest.raises(Exception, match="Did you mean 'smallmath'"):
        parse_benchmarks("smalmath:4")
    with pytest.raises(ConfigError, match="positive integer"):
        parse_benchmarks("smallmath:x")


def test_checkpoint_globs_expand_in_step_order(tmp_path):
    for step in (100, 50, 150):
        (tmp_path / f"checkpoint-{step}").mkdir()
    models = expand_models(f"base_model,{tmp_path}/checkpoint-*")
    assert models == ["base_model"] + [str(tmp_path / f"checkpoint-{s}") for s in (50, 100, 150)]
    with pytest.raises(ConfigError, match="matches nothing"):
        expand_models(f"{tmp_path}/nothing-*")


def test_unprepared_downloaded_benchmark_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="assay prepare_data aime24"):
        run_eval(benchmarks="aime24:1", output_dir=str(tmp_path / "e"), model="m")


def test_dry_run_chains_grading_after_generation_with_a_sandbox_for_code(tmp_path, capsys):
    run_eval(
        benchmarks="smallmath:2,mlcode:1",
        output_dir=str(tmp_path / "e"),
        model="smollm2",
        cluster="test-slurm",
        server_gpus=1,
        dry_run=True,
        ctx=["++inference.temperature=0.7"],
    )
    blocks = re.split(r"(?=^### )", capsys.readouterr().out, flags=re.M)[1:]
    ids = [re.match(r"### \S+ \[(\S+)\]", b)[1] for b in blocks]
    assert len(blocks) == 3  # one generation job (one server) for both benchmarks' 3 seeds, a grading job each
    gen = blocks[0]
    assert gen.count("--task") == 3 and "++inference.temperature=0.7" in gen
    assert "++prompt_config=generic/math" in gen and "++prompt_config=mlcode/default" in gen
    assert "smallmath/output-rs1.jsonl" in gen and "mlcode/output-rs0.jsonl" in gen
    assert f"--dependency=afterok:{ids[0]}" in blocks[1] and "++grader=math" in blocks[1]
    assert "assay.evaluation.compute_metrics" in blocks[1] and "assay.sandbox.server" not in blocks[1]
    assert "++grader=code" in blocks[2] and "assay.sandbox.server" in blocks[2]
    assert f"--dependency=afterok:{ids[0]}" in blocks[2]
    for block in blocks:
        assert f"logs: {tmp_path / 'e' / 'logs' / 'eval'}/" in block


def test_num_jobs_counts_server_copies_across_all_benchmarks_and_seeds(tmp_path, capsys):
    run_eval(
        benchmarks="smallmath:3,mlcode:1",
        output_dir=str(tmp_path / "e"),
        model="smollm2",
        cluster="test-slurm",
        server_gpus=1,
        num_jobs=2,
        dry_run=True,
        ctx=["++inference.temperature=0.7"],
    )
    blocks = re.split(r"(?=^### )", capsys.readouterr().out, flags=re.M)[1:]
    gen = [b for b in blocks if "assay.inference.generate" in b]
    assert len(gen) == 2 and sum(b.count("--task") for b in gen) == 4
    assert all("assay.inference.serve" in b for b in gen)


def test_a_benchmarks_default_never_overrides_the_users_value(tmp_path, capsys):
    run_eval(
        benchmarks="smallmath:1",
        output_dir=str(tmp_path / "e"),
        model="smollm2",
        cluster="test-slurm",
        server_gpus=1,
        dry_run=True,
        ctx=["++inference.tokens_to_generate=77", "++prompt_config=generic/default"],
    )
    gen = capsys.readouterr().out
    assert "tokens_to_generate=512" not in gen and "prompt_config=generic/math" not in gen
    assert "++inference.tokens_to_generate=77" in gen


def test_several_seeds_sample_by_default_and_explicit_greedy_is_warned_about(tmp_path, capsys):
    run_eval(
        benchmarks="smallmath:4,mlcode:1",
        output_dir=str(tmp_path / "e"),
        model="smollm2",
        cluster="test-slurm",
        server_gpus=1,
        dry_run=True,
    )
    captured = capsys.readouterr()
    assert "smallmath:4: 4 seeds sample with ++inference.temperature=0.7 ++inference.top_p=0.95" in captured.out
    assert "--task ++prompt_config" in captured.out and "'++inference.temperature=0.7'" not in captured.err
    assert "++inference.temperature=0.7" in captured.out.split("### ")[1]
    run_eval(
        benchmarks="smallmath:4",
        output_dir=str(tmp_path / "e2"),
        model="smollm2",
        cluster="test-slurm",
        server_gpus=1,
        dry_run=True,
        ctx=["++inference.temperature=0"],
    )
    assert "warning: smallmath:4: 4 seeds with inference.temperature=0 (greedy)" in capsys.readouterr().err


def test_an_eval_rerun_after_success_submits_nothing_and_prints_the_table(standin_url, tmp_path, capsys):
    out = tmp_path / "e"
    args = dict(benchmarks="smallmath:1", output_dir=str(out), model="standin", server_type="openai")
    run_eval(**args, server_address=standin_url)
    capsys.readouterr()
    [again] = run_eval(**args, server_address=standin_url)
    text = capsys.readouterr().out
    assert again.handles == [] and "smallmath: graded already" in text and "symbolic_correct" in text


def test_local_eval_writes_graded_files_metrics_and_prints_the_table(standin_url, tmp_path, capsys):
    out = tmp_path / "e"
    run_eval(
        benchmarks="smallmath:2", output_dir=str(out), model="standin", server_type="openai", server_address=standin_url
    )
    bench = out / "eval-results" / "smallmath"
    lines = [json.loads(x) for x in (bench / "output-rs0.jsonl").read_text().splitlines()]
    assert len(lines) == 24 and all("symbolic_correct" in x and "predicted_answer" in x for x in lines)
    metrics = json.loads((bench / "metrics.json").read_text())
    assert metrics  # the table below is printed from it
    text = capsys.readouterr().out
    assert "pass@1[avg-of-2]" in text and "majority@2" in text and "symbolic_correct" in text


def test_several_models_get_one_folder_each_and_one_comparison_table(standin_url, tmp_path, capsys):
    out = tmp_path / "cmp"
    run_eval(
        benchmarks="smallmath:1",
        output_dir=str(out),
        model="base,step-50",
        server_type="openai",
        server_address=standin_url,
    )
    assert (out / "base" / "eval-results" / "smallmath" / "metrics.json").exists()
    assert (out / "step-50" / "eval-results" / "smallmath" / "metrics.json").exists()
    text = capsys.readouterr().out
    table = text[text.rindex("evaluation_mode") :]
    header = table.splitlines()[0]
    assert "base" in header and "step-50" in header, table  # one column per run


def write_user_benchmark(root, name="capitals", grader="math", extra=""):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "benchmark.yaml").write_text(
        f"grader: {grader}\nprompt_config: generic/math\ntokens_to_generate: 64\n{extra}"
    )
    lines = [{"id": i, "problem": f"}}{i}{{dexob\\\\", "expected_answer": str(i)} for i in range(3)]
    (folder / "test.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder


def test_a_users_own_benchmark_and_group_need_no_change_to_assay(standin_url, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ASSAY_EXTRA_DATASETS", raising=False)
    root = tmp_path / "mine"
    write_user_benchmark(root)
    write_user_benchmark(root, "capitals2")
    (root / "both").mkdir()
    (root / "both" / "group.yaml").write_text("benchmarks: [capitals, capitals2]\n")
    out = tmp_path / "e"
    run_eval(
        benchmarks="both:2",
        output_dir=str(out),
        model="standin",
        server_type="openai",
        server_address=standin_url,
        extra_datasets=str(root),
    )
    text = capsys.readouterr().out
    for name in ("capitals", "capitals2"):
        lines = [json.loads(x) for x in (out / "eval-results" / name / "output-rs1.jsonl").read_text().splitlines()]
        # the stand-in answers with the prompt reversed: \boxed{i}, so every problem is right
        assert len(lines) == 3 and all(x["symbolic_correct"] for x in lines)
        assert json.loads((out / "eval-results" / name / "metrics.json").read_text())["benchmark"] == name
        assert f" {name} " in text  # its own table
    assert "pass@1[avg-of-2]" in text and "100.00%" in text


@pytest.mark.parametrize(
    "extra, message",
    [
        ("grader: math\nprompt: x\n", "unknown key 'prompt'"),
        ("", "grader must be one of"),
        ("grader: math\ntokens_to_generate: -4\n", "tokens_to_generate must be a positive integer"),
    ],
)
def test_a_bad_benchmark_yaml_is_an_error_naming_file_and_key(tmp_path, monkeypatch, extra, message):
    from assay.benchmarks.registry import BenchmarkError, get_benchmark

    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "benchmark.yaml").write_text(extra)
    (folder / "test.jsonl").write_text("{}\n")
    monkeypatch.setenv("ASSAY_EXTRA_DATASETS", str(tmp_path))
    with pytest.raises(BenchmarkError, match=message) as exc:
        get_benchmark("bad")
    assert "benchmark.yaml" in str(exc.value)


def test_an_unknown_benchmark_names_the_way_to_add_ones_own():
    with pytest.raises(ConfigError, match=r"unknown benchmark 'smallmth'.*smallmath.*benchmark.yaml"):
        run_eval(benchmarks="smallmth", output_dir="/tmp/x", model="m", dry_run=True)
