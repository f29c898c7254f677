"""The GRPO stage as a user runs it: the real SmolLM2-135M weights, real trl, real tests run in the real sandbox.

Kept small (4 completions per prompt, 48 tokens each, LoRA rank 4, one CPU thread) but whole: the
preflight samples the starting policy through the trainer and grades it; on mlcode the 135M model
never passes, so the stage refuses to train; on smallcode it passes some tasks some of the time, so
the preflight lets it train, and three steps write their reward traces, log and checkpoints.
"""

import json
import re
from pathlib import Path

import pytest

from assay.core.config import compose_stage_config
from assay.training import grpo

pytestmark = pytest.mark.usefixtures("training_packages")

FAST = [
    "++num_generations=4",
    "++batch_size=4",
    "++gradient_accumulation_steps=1",
    "++max_completion_length=48",
    "++cpu_threads=1",
    "++lora.rank=4",
    "++lora.alpha=8",
]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """++cpu_threads sets torch's thread count for the process; give the other tests theirs back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_preflight_on_mlcode_refuses_to_train_and_says_why(tmp_path, smollm2_dir, sandbox_url, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as stopped:
        grpo.main(
            [
                "++benchmark=mlcode",
                f"++output_dir={out}",
                f"++sandbox_url={sandbox_url}",
                "++preflight.num_prompts=2",
                "++max_steps=3",
                *FAST,
            ]
        )
    assert stopped.value.code == 4
    console = capsys.readouterr()
    assert "preflight: 2 prompts x 4 completions = 8" in console.out
    assert "zero-variance groups   100%" in console.out
    assert "refusing to train" in console.err and "every advantage is zero" in console.err
    assert "no step would produce a gradient" in console.err and "++preflight.enabled=false" in console.err
    report = json.loads((out / "preflight.json").read_text())
    assert report["refused"] and report["mean_reward"] == 0 and report["zero_variance_fraction"] == 1.0
    assert report["num_completions"] == 8 and len(report["samples"]) == 8
    traced = read_lines(out / "rewards" / "preflight.jsonl")
    assert len(traced) == 8 and {line["phase"] for line in traced} == {"preflight"}
    assert len({line["id"] for line in traced}) == 2 and all("/" in line["id"] for line in traced)  # mlcode ids
    assert not list(out.glob("checkpoint-*")) and not (out / "train_log.jsonl").exists()


def test_smallcode_passes_the_preflight_and_three_steps_trace_their_rewards(tmp_path, smollm2_dir, sandbox_url, capsys):
    out = tmp_path / "run"
    argv = [
        "++benchmark=smallcode",
        f"++output_dir={out}",
        f"++sandbox_url={sandbox_url}",
        "++preflight.num_prompts=3",
        "++max_steps=3",
        "++save_steps=2",
        "++rewards.format_weight=0.2",
        *FAST,
    ]
    grpo.main(argv)
    console = capsys.readouterr().out
    assert "preflight: passed" in console
    for step in (1, 2, 3):
        assert f"step {step}/3 loss" in console
    assert "grad_norm" in console and "reward_std" in console and "frac_reward_zero_std" in console

    report = json.loads((out / "preflight.json").read_text())
    assert not report["refused"] and report["num_prompts"] == 3 and report["num_completions"] == 12
    assert report["mean_reward"] > 0 and report["zero_variance_fraction"] <= 0.9
    assert len({r for group in report["groups"] for r in group["rewards"]}) > 1  # the rewards really vary

    traces = out / "rewards"
    assert sorted(p.name for p in traces.iterdir()) == [
        "preflight.jsonl",
        "step_1.jsonl",
        "step_2.jsonl",
        "step_3.jsonl",
    ]
    assert len(read_lines(traces / "preflight.jsonl")) == 12
    log = read_lines(out / "train_log.jsonl")
    assert [entry["step"] for entry in log] == [1, 2, 3]
    for entry in log:
        lines = read_lines(traces / f"step_{entry['step']}.jsonl")
        assert len(lines) == 4 and len({line["row"] for line in lines}) == 1  # one prompt, its 4 completions
        for line in lines:
            assert line["step"] == entry["step"] and line["phase"] == "train"
            assert set(line["rewards"]) == {"execution", "format"}
            assert line["rewards"]["execution"] == pytest.approx(line["tests_passed"] / line["tests_total"])
            assert line["reward"] == pytest.approx(line["rewards"]["execution"] + 0.2 * line["rewards"]["format"])
            assert line["prompt"].startswith("Write a Python function") and isinstance(line["completion"], str)
            assert 0 < line["num_tokens"] <= 48 and isinstance(line["clipped"], bool)
        # the trace of step n is what trl trained step n on: the same mean reward as the step's log line
        assert entry["reward"] == pytest.approx(sum(line["reward"] for line in lines) / 4, abs=1e-5)
        assert {"grad_norm", "reward_std", "frac_reward_zero_std", "loss"} <= set(entry)

    for step in (2, 3):
        assert (out / f"checkpoint-{step}" / "adapter_model.safetensors").is_file()
        assert (out / "merged" / f"checkpoint-{step}" / "config.json").is_file()

    grpo.main(argv)  # a follow-up job of a finished run: nothing to do
    assert "already trained to step 3 of 3" in capsys.readouterr().out


def config(tmp_path, *overrides):
    return compose_stage_config(
        grpo.GRPOStageConfig, ["++benchmark=smallcode", f"++output_dir={tmp_path / 'run'}", *overrides]
    )


def test_a_resume_drops_the_traces_and_log_lines_of_the_steps_it_redoes(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
    (out / "checkpoint-4").mkdir()  # cut short: no trainer_state.json
    (out / "rewards").mkdir()
    for step in (1, 2, 3, 4):
        (out / "rewards" / f"step_{step}.jsonl").write_text("{}\n")
    (out / "rewards" / "step_3.rank1.jsonl").write_text("{}\n")
    (out / "train_log.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in (1, 2, 3, 4)))
    assert grpo.resume_point(config(tmp_path), main_process=True) == out / "checkpoint-2"
    assert sorted(p.name for p in (out / "rewards").iterdir()) == ["step_1.jsonl", "step_2.jsonl"]
    assert [entry["step"] for entry in read_lines(out / "train_log.jsonl")] == [1, 2]
    assert not (out / "checkpoint-4").exists()

    with pytest.raises(Exception, match="already has checkpoints"):
        grpo.resume_point(config(tmp_path, "++resume=false"), main_process=True)


def test_a_fresh_run_starts_without_old_traces(tmp_path):
    out = tmp_path / "run"
    (out / "rewards").mkdir(parents=True)
    (out / "rewards" / "step_9.jsonl").write_text("{}\n")
    (out / "train_log.jsonl").write_text('{"step": 9}\n')
    assert grpo.resume_point(config(tmp_path), main_process=True) is None
    assert not (out / "rewards").exists() and not (out / "train_log.jsonl").exists()


def test_bad_inputs_stop_the_stage_before_it_loads_a_model(tmp_path, capsys):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"prompt": "Write add.", "entry_point": "add"}) + "\n")
    for argv, expected in [
        ([f"++train_file={tasks}", "++benchmark=smallcode"], "exactly one of ++train_file"),
        ([f"++train_file={tasks}"], "tasks.jsonl:1: a code task needs tests"),
        (["++benchmark=smallmath"], "not a code benchmark"),
        (["++benchmark=smallcode", "++num_generations=1"], "num_generations must be at least 2"),
        (["++benchmark=smallcode", "++rewards.format_wieght=1"], "Did you mean 'rewards.format_weight'"),
    ]:
        with pytest.raises(SystemExit) as stopped:
            grpo.main([f"++output_dir={tmp_path / 'run'}", *argv])
        assert stopped.value.code == 2, argv
        assert expected in capsys.readouterr().err, argv


def test_a_missing_sandbox_is_named_before_the_model_loads(tmp_path):
    from assay.core.config import ConfigError
    from assay.pipeline.services import free_port

    cfg = config(tmp_path, f"++sandbox_url=http://127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError, match="no sandbox answers at .*assay grpo` starts one beside the job"):
        grpo.check_sandbox(cfg, wait_s=0.5)


def test_preflight_prompts_fill_whole_evaluation_batches(tmp_path):
    cfg = config(tmp_path, "++preflight.num_prompts=7")
    assert len(grpo.preflight_rows(cfg, num_rows=12, prompts_per_batch=1)) == 7
    assert len(grpo.preflight_rows(cfg, num_rows=12, prompts_per_batch=2)) == 6  # 2 processes: 3 prompts each
    assert len(grpo.preflight_rows(cfg, num_rows=5, prompts_per_batch=4)) == 4
    rows = grpo.preflight_rows(cfg, num_rows=12, prompts_per_batch=1)
    assert rows == sorted(set(rows)) == grpo.preflight_rows(cfg, num_rows=12, prompts_per_batch=1)  # seeded


@pytest.mark.usefixtures("smollm2_dir")
def test_trl_arguments_pass_through_and_are_checked_before_the_model_loads(tmp_path):
    from assay.core.config import ConfigError

    rows = grpo.load_tasks(config(tmp_path))
    for override, expected in [
        ("++trl_args.num_generations=4", "++trl_args.num_generations is set by the stage"),
        ("++trl_args.no_such_field=1", "no_such_field"),
        ("++trl_args.auto_find_batch_size=true", "auto_find_batch_size is not supported by GRPO"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(expected)):
            grpo.build_trainer(config(tmp_path, *override.split()), rows)
    trainer, _, _ = grpo.build_trainer(
        config(
            tmp_path,
            "++trl_args.loss_type=grpo",
            "++trl_args.num_iterations=2",
            "++batch_size=8",
            "++gradient_accumulation_steps=1",
        ),
        rows,
    )
    assert trainer.args.loss_type == "grpo" and trainer.args.num_iterations == 2
    assert trainer.args.num_generations == 8 and trainer.args.per_device_eval_batch_size == 8
