"""`grpo()` / `assay grpo`: checked before submission, a sandbox beside the job, and a real local run of the preflight."""

import json
import re

import pytest

from assay.core.config import ConfigError
from assay.pipeline import JobFailedError, wrap_arguments
from assay.pipeline.grpo import grpo

TINY = "++num_generations=4 ++batch_size=4 ++gradient_accumulation_steps=1 ++max_completion_length=48 ++cpu_threads=1"


def slurm_config(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text("executor: slurm\naccount: acct\npartition: gpu\ntime: '02:00:00'\ngpus_per_node: 8\n")
    return str(path)


def test_dry_run_shows_the_stage_and_the_sandbox_beside_it(tmp_path, capsys):
    grpo(
        benchmark="smallcode", output_dir=str(tmp_path / "run"), preflight=True, dry_run=True, ctx=wrap_arguments(TINY)
    )
    text = capsys.readouterr().out
    assert "-m assay.training.grpo ++benchmark=smallcode" in text and "++preflight_only=true" in text
    assert f"++output_dir={tmp_path / 'run'}" in text and "++model=smollm2" in text and "++num_generations=4" in text
    assert "assay.sandbox.server" in text and "ASSAY_SANDBOX_URL" in text
    assert not (tmp_path / "run").exists()


def test_several_gpus_run_torchrun_and_a_given_sandbox_starts_none(tmp_path, capsys):
    grpo(
        train_file=str(tmp_path / "tasks.jsonl"),
        output_dir=str(tmp_path / "run"),
        cluster=slurm_config(tmp_path),
        num_gpus=4,
        run_after=None,
        dry_run=True,
        ctx=wrap_arguments("++batch_size=2 ++num_generations=8 ++sandbox_url=http://sandbox:6000"),
    )
    text = capsys.readouterr().out
    assert "#SBATCH --gpus-per-node=4" in text
    assert "torch.distributed.run --standalone --nproc_per_node=4 -m assay.training.grpo" in text
    assert "assay.sandbox.server" not in text and "++preflight_only" not in text


@pytest.mark.parametrize(
    "kwargs, ctx, expected",
    [
        ({"benchmark": "smallcode"}, "++num_generation=4", "Did you mean 'num_generations'"),
        (
            {"benchmark": "smallcode"},
            "++batch_size=2 ++gradient_accumulation_steps=1 ++num_generations=4",
            "2 x 1 x 1 = 2 completions is not a multiple of num_generations=4",
        ),
        ({"benchmark": "smallcode"}, "++preflight_only=true", "use the --preflight option of grpo"),
        ({"benchmark": "smallcode"}, "++benchmark=mlcode", "use the --benchmark option"),
        ({"benchmark": "smallmath"}, "", "not a code benchmark"),
        ({"benchmark": "smallcod"}, "", "Did you mean 'smallcode'"),
        ({}, "", "exactly one of --train_file and --benchmark"),
        ({"train_file": "/nonexistent/tasks.jsonl"}, "", "does not exist"),
    ],
)
def test_mistakes_fail_before_anything_is_submitted(tmp_path, kwargs, ctx, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        grpo(output_dir=str(tmp_path / "run"), dry_run=False, ctx=wrap_arguments(ctx), **kwargs)
    assert not (tmp_path / "run").exists()


def test_the_batch_shape_counts_every_gpu(tmp_path, capsys):
    grpo(
        benchmark="smallcode",
        output_dir=str(tmp_path / "run"),
        cluster=slurm_config(tmp_path),
        num_gpus=2,
        dry_run=True,
        ctx=wrap_arguments("++batch_size=2 ++gradient_accumulation_steps=1 ++num_generations=4"),
    )
    assert "--nproc_per_node=2" in capsys.readouterr().out


@pytest.mark.usefixtures("smollm2_dir")
def test_local_preflight_run_passes_on_smallcode_and_saves_its_report(tmp_path, capsys):
    out = tmp_path / "run"
    grpo(
        benchmark="smallcode",
        output_dir=str(out),
        preflight=True,
        ctx=wrap_arguments(
            f"{TINY} ++preflight.num_prompts=2 ++preflight.max_zero_variance_fraction=1.0 ++rewards.format_weight=0.2"
        ),
    )
    assert "preflight passed; report in" in capsys.readouterr().out
    report = json.loads((out / "preflight.json").read_text())
    assert not report["refused"] and report["num_completions"] == 8 and report["mean_reward"] > 0
    assert len((out / "rewards" / "preflight.jsonl").read_text().splitlines()) == 8
    assert not list(out.glob("checkpoint-*"))
    assert list((out / "logs" / "grpo").glob("*_sandbox.log"))  # the job started its own sandbox


@pytest.mark.usefixtures("smollm2_dir")
def test_a_refused_preflight_fails_the_job_with_its_reasons(tmp_path):
    tasks = tmp_path / "secret.jsonl"  # nobody can pass it: the number is not in the prompt
    tasks.write_text(
        json.dumps(
            {
                "id": "secret",
                "entry_point": "secret",
                "prompt": "Write a Python function `secret()` that returns the number I am thinking "
                "of. Answer with a Python code block.",
                "tests": "def test_secret():\n    assert secret() == 918273645\n",
            }
        )
        + "\n"
    )
    with pytest.raises(JobFailedError, match="refusing to train") as failed:
        grpo(
            train_file=str(tasks),
            output_dir=str(tmp_path / "run"),
            preflight=True,
            ctx=wrap_arguments(
                "++num_generations=2 ++batch_size=2 ++gradient_accumulation_steps=1 "
                "++max_completion_length=24 ++cpu_threads=1 ++preflight.num_prompts=1"
            ),
        )
    assert "mean reward is 0" in str(failed.value)
    assert json.loads((tmp_path / "run" / "preflight.json").read_text())["refused"] is True
