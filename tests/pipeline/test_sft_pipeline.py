"""sft(), merge_lora(), prepare_sft_data() as jobs: checked before submitting, launched as one process,
torchrun or torchrun on every node, and run for real on the local cluster (and the test Slurm cluster)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from assay.core.config import ConfigError
from assay.pipeline import wrap_arguments
from assay.pipeline.cluster import load_cluster_config
from assay.pipeline.experiment import submit_experiment
from assay.pipeline.job import Job
from assay.pipeline.sft import merge_lora, multi_node_command, prepare_sft_data, sft

CHATS = [("What is 2+3?", "5."), ("Capital of France?", "Paris."), ("Say hi.", "Hi!"), ("What is 7*6?", "42.")]


def write_chats(path: Path) -> str:
    path.write_text(
        "".join(
            json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
            for q, a in CHATS
        )
    )
    return str(path)


def blocks(text: str) -> list[str]:
    return re.split(r"(?=^### )", text, flags=re.M)[1:]


def test_cli_dry_run_on_the_local_cluster_prints_one_training_process(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            "assay",
            "sft",
            f"--train_file={write_chats(tmp_path / 'train.jsonl')}",
            f"--output_dir={out}",
            "--dry_run",
            "++lora.rank=8",
            "++max_steps=10",
            "++save_steps=5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    command = proc.stdout.splitlines()[2]
    python, rest = command.split(" ", 1)
    assert os.path.realpath(python) == os.path.realpath(sys.executable)  # `assay` may be a shim naming python3.x
    assert rest == (
        f"-m assay.training.sft ++train_file={tmp_path / 'train.jsonl'} "
        f"++output_dir={out} ++model=smollm2 ++lora.rank=8 ++max_steps=10 ++save_steps=5"
    )
    assert "runs as a local child process" in proc.stdout
    assert not out.exists()


def test_dry_run_on_slurm_launches_torchrun_per_gpu_and_per_node(tmp_path, capsys):
    train = write_chats(tmp_path / "train.jsonl")
    sft(
        train_file=train,
        output_dir=str(tmp_path / "one"),
        cluster="test-slurm",
        num_gpus=2,
        dry_run=True,
        ctx=wrap_arguments("++lora.rank=8"),
    )
    single_node = blocks(capsys.readouterr().out)[0]
    assert (
        f"{sys.executable} -m torch.distributed.run --standalone --nproc_per_node=2 -m assay.training.sft "
        f"++train_file={train}"
    ) in single_node
    assert "#SBATCH --gpus-per-node=2" in single_node and "#SBATCH --nodes=1" in single_node

    sft(
        train_file=train,
        output_dir=str(tmp_path / "two"),
        cluster="test-slurm",
        num_gpus=2,
        num_nodes=2,
        time="01:00:00",
        dry_run=True,
        ctx=wrap_arguments("++lora.target_modules=[q_proj,v_proj]"),
    )
    two_nodes = blocks(capsys.readouterr().out)[0]
    for part in [
        'MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"',
        "srun --overlap --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c",
        "-m torch.distributed.run --nnodes=2 --nproc_per_node=2",
        '--node_rank="$SLURM_NODEID" --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT"',
        "-m assay.training.sft",
        "++lora.target_modules=[q_proj,v_proj]",
        "#SBATCH --nodes=2",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --time=60",
    ]:
        assert part in two_nodes, part


def test_the_multi_node_launch_survives_the_shell(tmp_path):
    """The node script, as bash runs it on a node, gives torchrun each argument intact (quotes included)."""
    fake_python = tmp_path / "python"
    fake_python.write_text('#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\n')
    fake_python.chmod(0o755)
    command = multi_node_command(
        str(fake_python), "assay.training.sft", ["++output_dir=/a b", "++lora.target_modules=[q_proj,v_proj]"], 8, 4
    )
    node_script = command[-1]
    env = {"SLURM_NODEID": "3", "MASTER_ADDR": "node-a", "MASTER_PORT": "23456", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["bash", "-c", node_script], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split("\n")[:-1] == [
        "[-m]",
        "[torch.distributed.run]",
        "[--nnodes=4]",
        "[--nproc_per_node=8]",
        "[--node_rank=3]",
        "[--master_addr=node-a]",
        "[--master_port=23456]",
        "[-m]",
        "[assay.training.sft]",
        "[++output_dir=/a b]",
        "[++lora.target_modules=[q_proj,v_proj]]",
    ]


def test_bad_overrides_and_settings_fail_before_anything_is_submitted(tmp_path):
    train = write_chats(tmp_path / "train.jsonl")
    out = tmp_path / "run"
    proc = subprocess.run(
        ["assay", "sft", f"--train_file={train}", f"--output_dir={out}", "++lora.rnak=8"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Did you mean 'lora.rank'?" in proc.stderr
    with pytest.raises(ConfigError, match="'save_steps=0'|save_steps"):
        sft(train_file=train, output_dir=str(out), ctx=wrap_arguments("++save_steps=0"))
    with pytest.raises(ConfigError, match="output_dir is set by the pipeline; use the --output_dir option"):
        sft(train_file=train, output_dir=str(out), ctx=wrap_arguments("++output_dir=/elsewhere"))
    with pytest.raises(ConfigError, match="needs a cluster whose jobs span nodes"):
        sft(train_file=train, output_dir=str(out), num_gpus=1, num_nodes=2)
    with pytest.raises(ConfigError, match="does not exist"):
        sft(train_file=str(tmp_path / "missing.jsonl"), output_dir=str(out))
    with pytest.raises(ConfigError, match="Did you mean 'dtype'"):
        merge_lora(adapter_dir=str(tmp_path), output_dir=str(out), ctx=wrap_arguments("++dtyp=float32"))
    with pytest.raises(ConfigError, match="pass --with_sandbox"):
        prepare_sft_data(
            input_file=train,
            output_file=str(out / "x.jsonl"),
            ctx=wrap_arguments("++code_targets=true ++sandbox_check=true"),
        )
    assert not out.exists()


def test_dry_runs_of_merge_and_data_preparation(tmp_path, capsys):
    merge_lora(
        adapter_dir=str(tmp_path / "run/checkpoint-5"),
        output_dir=str(tmp_path / "served"),
        base_model="smollm2",
        dry_run=True,
        ctx=wrap_arguments("++dtype=bfloat16"),
    )
    prepare_sft_data(
        input_file=str(tmp_path / "sdg.jsonl"),
        output_file=str(tmp_path / "sft/train.jsonl"),
        with_sandbox=True,
        run_after="merge_lora",
        dry_run=True,
        ctx=wrap_arguments("++code_targets=true ++sandbox_check=true"),
    )
    merge, prepare = blocks(capsys.readouterr().out)
    assert (
        f"-m assay.training.merge_lora ++adapter_dir={tmp_path / 'run/checkpoint-5'} "
        f"++output_dir={tmp_path / 'served'} ++base_model=smollm2 ++dtype=bfloat16"
    ) in merge
    assert f"# logs: {tmp_path / 'logs/merge_lora'}/" in merge  # beside the merged folder, never inside it
    assert "-m assay.training.prepare_data" in prepare and "++sandbox_check=true" in prepare
    assert "# service sandbox started first" in prepare and "ASSAY_SANDBOX_URL=" in prepare
    assert "starts after: afterok:" in prepare


def test_local_chain_prepares_data_then_trains(tmp_path, smollm2_dir, capsys):
    """The user's loop on the local cluster: SDG lines -> chat data -> 2 LoRA steps -> a merged, servable checkpoint."""
    import torch
    from safetensors.torch import load_file

    sdg = tmp_path / "sdg.jsonl"
    sdg.write_text(
        "".join(json.dumps({"prompt": q, "generation": a}) + "\n" for q, a in CHATS)
        + json.dumps({"prompt": "cut", "generation": "It was", "finish_reason": "length"})
        + "\n"
    )
    data, run = tmp_path / "sft" / "train.jsonl", tmp_path / "run"
    prepare_sft_data(input_file=str(sdg), output_file=str(data), expname="prep")
    assert [json.loads(line)["messages"][-1]["content"] for line in data.read_text().splitlines()] == [
        a for _, a in CHATS
    ]
    assert json.loads((tmp_path / "sft" / "train.report.json").read_text())["removed"]["failed_generation"] == 1
    sft(
        train_file=str(data),
        output_dir=str(run),
        run_after="prep",
        expname="train",
        ctx=wrap_arguments("++max_steps=2 ++save_steps=2 ++lora.rank=4 ++cpu_threads=1"),
    )
    console = capsys.readouterr().out
    assert "step 2/2 loss" in console and f"train: checkpoints in {run}" in console
    assert [json.loads(line)["step"] for line in (run / "train_log.jsonl").read_text().splitlines()] == [1, 2]
    assert list((run / "logs" / "train").glob("*_log.out"))
    q_proj = "model.layers.0.self_attn.q_proj.weight"
    merged = load_file(str(run / "merged" / "checkpoint-2" / "model.safetensors"))
    assert not torch.equal(merged[q_proj], load_file(str(Path(smollm2_dir) / "model.safetensors"))[q_proj])


@pytest.mark.slurm
def test_the_multi_node_launch_trains_through_nested_srun_on_slurm(slurm_cluster, tmp_path, smollm2_dir):
    """The multi-node command on the real test cluster (one node there): scontrol finds the head, srun --overlap
    starts a step inside the job's own, torchrun meets at MASTER_ADDR:MASTER_PORT and trains."""
    train = write_chats(tmp_path / "train.jsonl")
    out = tmp_path / "run"
    stage_args = [
        f"++train_file={train}",
        f"++output_dir={out}",
        "++max_steps=2",
        "++save_steps=2",
        "++lora.rank=4",
        "++cpu_threads=1",
        "++merge_checkpoints=false",
    ]
    job = Job(
        name="sft-srun",
        command=multi_node_command(sys.executable, "assay.training.sft", stage_args, 1, 1),
        output_dir=out,
        mem="4G",
    )
    experiment = submit_experiment(load_cluster_config(slurm_cluster), "sft-srun", [job])
    experiment.wait(timeout_s=540)
    assert [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()] == [1, 2]
    assert (out / "checkpoint-2" / "adapter_model.safetensors").is_file()


@pytest.mark.slurm
@pytest.mark.timeout(1500)
def test_a_run_cut_by_time_limits_finishes_through_dependent_jobs(slurm_cluster, tmp_path, smollm2_dir):
    """SFT under a 1-minute time limit on the real test cluster: Slurm warns each copy (USR2, signal_delay_s before
    the limit) or ends it (TERM, then KILL after KillWait), the stage saves at the end of its step and exits, the
    next `dependent_jobs` copy resumes from that checkpoint, and every optimizer step is in train_log.jsonl once."""
    story = "The model reads this sentence again and again, one token at a time, to make each step slow enough. " * 6
    chats = tmp_path / "train.jsonl"
    chats.write_text(
        "".join(
            json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a + story}]})
            + "\n"
            for q, a in CHATS
        )
    )
    out, steps = tmp_path / "run", 40  # more than two copies can train (each is warned 20-50 s after it starts)
    experiment = sft(
        train_file=str(chats),
        output_dir=str(out),
        cluster=slurm_cluster,
        expname="sft-time-limits",
        time="00:01:00",
        dependent_jobs=7,
        wait=False,
        ctx=wrap_arguments(f"++max_steps={steps} ++save_steps=1000 ++lora.rank=4 ++merge_checkpoints=false"),
    )
    assert len(experiment.handles) == 8
    experiment.wait(timeout_s=1200)  # the last copy completes; earlier ones ended at their limit
    logged = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert logged == list(range(1, steps + 1))
    logs = {
        h.job_id: h.stdout_path.read_text(errors="replace") + h.stderr_path.read_text(errors="replace")
        for h in experiment.handles
    }
    ends = ("the time limit is near", "stopped by a signal at step", "stopped by signal")
    cut = [job_id for job_id, text in logs.items() if any(end in text for end in ends)]
    assert len(cut) >= 2, logs
    resumed = [job_id for job_id, text in logs.items() if "sft: resuming from" in text]
    assert len(resumed) >= 2
    assert (out / f"checkpoint-{steps}" / "adapter_model.safetensors").is_file()
