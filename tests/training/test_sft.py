"""The SFT stage as a user runs it: the real SmolLM2-135M weights, real peft and trl, on CPU.

Runs are kept tiny (12 short chats, LoRA rank 4, batch 1, one CPU thread, which is faster than two on a
busy machine) but go through everything a real run does: the chat template, assistant-only labels,
checkpoints, merges, the step log, a kill and a resume.
"""

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from assay.core.config import compose_stage_config
from assay.training import sft
from assay.training.chat_tokens import IGNORE_INDEX

pytestmark = pytest.mark.usefixtures("training_packages")

QA = [
    ("What is 2+3?", "2+3 = 5."),
    ("Capital of France?", "Paris."),
    ("Say hi.", "Hi!"),
    ("What is 7*6?", "42."),
    ("Name a color.", "Blue."),
    ("Opposite of hot?", "Cold."),
    ("What is 10-4?", "6."),
    ("Spell cat.", "C-A-T."),
    ("Largest planet?", "Jupiter."),
    ("Is water wet?", "Yes."),
    ("What is 9/3?", "3."),
    ("First letter of the alphabet?", "A."),
]
FAST = [
    "++model=smollm2",
    "++max_length=256",
    "++cpu_threads=1",
    "++lora.rank=4",
    "++lora.alpha=8",
    "++learning_rate=2e-4",
]


def write_chats(path: Path, extra: list[dict] = ()) -> Path:
    """The 12 Q/A chats (every other one with a system message), plus `extra` lines."""
    lines = []
    for i, (question, answer) in enumerate(QA):
        system = [{"role": "system", "content": "Answer briefly."}] if i % 2 else []
        lines.append(
            {"messages": system + [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}
        )
    path.write_text("".join(json.dumps(line) + "\n" for line in [*lines, *extra]))
    return path


def config(tmp_path, *overrides):
    train_file = tmp_path / "train.jsonl"
    if not train_file.exists():
        write_chats(train_file)
    return compose_stage_config(
        sft.SFTStageConfig, [f"++train_file={train_file}", f"++output_dir={tmp_path / 'out'}", *FAST, *overrides]
    )


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """++cpu_threads sets torch's thread count for the process; give the other tests theirs back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def log_steps(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def weights(folder):
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))


def test_lora_run_saves_merges_and_logs_every_step(tmp_path, smollm2_dir, capsys):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    last = sft.train(config(tmp_path, "++max_steps=10", "++save_steps=5", "++learning_rate=1e-3"))
    out = tmp_path / "out"
    assert last == out / "checkpoint-10"
    console = capsys.readouterr().out
    assert "step 1/10 loss" in console and "step 10/10 loss" in console and "learning_rate" in console

    log = log_steps(out)
    assert [line["step"] for line in log] == list(range(1, 11))
    assert all(line["loss"] > 0 and line["learning_rate"] > 0 for line in log)
    rates = [line["learning_rate"] for line in log]
    assert rates == sorted(rates, reverse=True) and rates[0] > 5 * rates[-1]  # cosine decay to near zero

    base = weights(smollm2_dir)
    q_proj = "model.layers.0.self_attn.q_proj.weight"
    merged = {}
    for step in (5, 10):
        checkpoint = out / f"checkpoint-{step}"
        assert (checkpoint / "adapter_config.json").is_file() and not (checkpoint / "model.safetensors").exists()
        assert oct((checkpoint / "adapter_model.safetensors").stat().st_mode)[-3:] == "644"
        folder = out / "merged" / f"checkpoint-{step}"
        model = AutoModelForCausalLM.from_pretrained(folder)  # a normal, servable HF folder
        assert model.config.dtype == torch.bfloat16  # the base model's own dtype
        merged[step] = weights(folder)
        assert set(merged[step]) == set(base)
        assert not torch.equal(merged[step][q_proj], base[q_proj])
        assert torch.equal(
            merged[step]["model.layers.0.mlp.up_proj.weight"],  # not a LoRA target
            base["model.layers.0.mlp.up_proj.weight"],
        )
        assert AutoTokenizer.from_pretrained(folder).chat_template
    assert not torch.equal(merged[5][q_proj], merged[10][q_proj])
    # what was learnt survives the merge: the served model fits the training answers better than the base
    assert answer_loss(out / "merged" / "checkpoint-10") < answer_loss(smollm2_dir) - 0.5


def answer_loss(model_dir) -> float:
    """Mean loss of a model on the assistant tokens of the 12 training chats."""
    import torch
    from transformers import AutoModelForCausalLM

    from assay.training.chat_tokens import load_tokenizer, tokenize_conversation

    tokenizer = load_tokenizer(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    losses = []
    with torch.no_grad():
        for question, answer in QA:
            conv = tokenize_conversation(
                tokenizer, [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            )
            out = model(input_ids=torch.tensor([conv.input_ids]), labels=torch.tensor([conv.labels]))
            losses.append(out.loss.item())
    return sum(losses) / len(losses)


def test_training_labels_are_the_assistant_turns_only(tmp_path, smollm2_dir):
    """What the trainer feeds the model: -100 everywhere but the assistant answers and their end token."""
    multi_turn = {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Pick a number."},
            {"role": "assistant", "content": "Seven."},
            {"role": "user", "content": "Another one?"},
            {"role": "assistant", "content": "Three."},
        ]
    }
    write_chats(tmp_path / "train.jsonl", [multi_turn])
    run = sft.build(config(tmp_path, "++max_steps=1"))
    tokenizer = run.trainer.processing_class
    dataset = run.trainer.train_dataset
    assert len(dataset) == 13
    batch = run.trainer.data_collator([dataset[i] for i in (0, 1, 12)])
    for row, labels in zip(batch["input_ids"], batch["labels"]):
        trained = [int(t) for t, lab in zip(row, labels) if lab != IGNORE_INDEX]
        assert all(int(lab) in (int(t), IGNORE_INDEX) for t, lab in zip(row, labels))
        assert len(trained) < len([t for t in row if t != tokenizer.pad_token_id])
    eos = tokenizer.eos_token

    def trained_text(labels):
        return tokenizer.decode([t for t in labels if t != IGNORE_INDEX])

    assert trained_text(dataset[0]["labels"]) == f"2+3 = 5.{eos}"
    assert trained_text(dataset[1]["labels"]) == f"Paris.{eos}"  # the system message is not trained
    assert trained_text(dataset[12]["labels"]) == f"Seven.{eos}Three.{eos}"
    whole = tokenizer.decode(dataset[12]["input_ids"])
    assert "Pick a number." in whole and "Another one?" in whole and "Be terse." in whole


def run_until(argv: list[str], line_start: str, sig: int) -> tuple[int, str]:
    """Run the stage in a child process, send it `sig` as soon as it prints a line starting with `line_start`,
    and return its exit status and output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "assay.training.sft", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith(line_start):
                os.kill(proc.pid, sig)
                break
        seen += proc.stdout.readlines()
        proc.wait(timeout=300)
    finally:
        proc.kill()
        proc.wait()
    assert any(line.startswith(line_start) for line in seen), "".join(seen)
    return proc.returncode, "".join(seen)


def checkpoint_names(out: Path) -> list[str]:
    return [p.name for p in sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))]


def test_killed_and_stopped_runs_resume_from_their_last_checkpoint(tmp_path, smollm2_dir, capsys):
    write_chats(tmp_path / "train.jsonl")
    out = tmp_path / "out"
    argv = [
        f"++train_file={tmp_path / 'train.jsonl'}",
        f"++output_dir={out}",
        *FAST,
        "++merge_checkpoints=false",
        "++save_steps=3",
    ]
    # a crash (SIGKILL) after checkpoint-3, before checkpoint-6
    code, _ = run_until([*argv, "++max_steps=6"], "step 5/6", signal.SIGKILL)
    assert code == -signal.SIGKILL
    killed_log = log_steps(out)
    assert [line["step"] for line in killed_log] == [1, 2, 3, 4, 5]
    assert checkpoint_names(out) == ["checkpoint-3"]

    sft.train(config(tmp_path, "++merge_checkpoints=false", "++save_steps=3", "++max_steps=6"))
    assert f"sft: resuming from {out / 'checkpoint-3'} (step 3)" in capsys.readouterr().out
    resumed = log_steps(out)
    assert [line["step"] for line in resumed] == [1, 2, 3, 4, 5, 6]
    for before, after in zip(killed_log[3:], resumed[3:5]):  # same data, weights and optimizer state as before
        assert after["loss"] == pytest.approx(before["loss"], rel=1e-3)
        assert after["learning_rate"] == pytest.approx(before["learning_rate"])

    # a longer rerun, warned of its time limit (SIGUSR2, as Slurm sends it): it saves where it is and exits 3
    code, output = run_until([*argv, "++max_steps=10"], "step 7/10", signal.SIGUSR2)
    assert f"sft: resuming from {out / 'checkpoint-6'} (step 6)" in output
    stopped_at = log_steps(out)[-1]["step"]
    assert code == 3 and f"stopped by a signal at step {stopped_at}" in output
    assert f"checkpoint-{stopped_at}" in checkpoint_names(out)

    sft.train(config(tmp_path, "++merge_checkpoints=false", "++save_steps=3", "++max_steps=10"))
    assert f"(step {stopped_at})" in capsys.readouterr().out
    log = log_steps(out)
    assert [line["step"] for line in log] == list(range(1, 11))
    # from step 7 on, the 10-step cosine schedule of the longer run (not the 6-step one that ended at 0)
    expected = [2e-4 * 0.5 * (1 + math.cos(math.pi * step / 10)) for step in range(6, 10)]
    assert [line["learning_rate"] for line in log[6:]] == pytest.approx(expected)
    assert (
        checkpoint_names(out)[:2] == ["checkpoint-3", "checkpoint-6"] and checkpoint_names(out)[-1] == "checkpoint-10"
    )

    sft.train(config(tmp_path, "++merge_checkpoints=false", "++save_steps=3", "++max_steps=10"))  # already done
    console = capsys.readouterr().out
    assert "sft: already trained to step 10 of 10" in console and "loss" not in console
    assert len(log_steps(out)) == 10

    with pytest.raises(sft.ConfigError, match="already has checkpoints"):
        sft.train(config(tmp_path, "++resume=false", "++max_steps=10"))


def test_full_fine_tuning_saves_whole_models(tmp_path, smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM

    sft.train(config(tmp_path, "++lora.enabled=false", "++learning_rate=1e-5", "++max_steps=2", "++save_steps=2"))
    out = tmp_path / "out"
    checkpoint = out / "checkpoint-2"
    assert not (checkpoint / "adapter_config.json").exists() and not (out / "merged").exists()
    AutoModelForCausalLM.from_pretrained(checkpoint)
    trained, base = weights(checkpoint), weights(smollm2_dir)
    for name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight"):
        assert not torch.equal(trained[name].float(), base[name].float()), name
    assert [line["step"] for line in log_steps(out)] == [1, 2]


def tiny_moe(folder: Path, tokenizer_dir: str) -> Path:
    """A 2-layer gpt-oss (MoE experts as 3-D parameters) with random weights, and SmolLM2's tokenizer."""
    import torch
    from transformers import AutoTokenizer, GptOssConfig, GptOssForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = GptOssConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        num_local_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=512,
        sliding_window=128,
        layer_types=["sliding_attention", "full_attention"],
    )
    torch.manual_seed(0)
    GptOssForCausalLM(cfg).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_lora_on_moe_expert_parameters(tmp_path, smollm2_dir):
    """++lora.target_parameters puts adapters on experts stored as 3-D tensors (gpt-oss), and they merge."""
    import torch

    model = tiny_moe(tmp_path / "tiny-moe", smollm2_dir)
    sft.train(
        config(
            tmp_path,
            f"++model={model}",
            "++lora.target_modules=[q_proj]",
            "++lora.target_parameters=[mlp.experts.gate_up_proj,mlp.experts.down_proj]",
            "++learning_rate=1e-2",
            "++max_steps=2",
            "++save_steps=2",
        )
    )
    adapter = json.loads((tmp_path / "out" / "checkpoint-2" / "adapter_config.json").read_text())
    assert sorted(adapter["target_parameters"]) == ["mlp.experts.down_proj", "mlp.experts.gate_up_proj"]
    merged, base = weights(tmp_path / "out" / "merged" / "checkpoint-2"), weights(model)
    assert set(merged) == set(base)
    for name in (
        "model.layers.0.mlp.experts.gate_up_proj",
        "model.layers.1.mlp.experts.down_proj",
        "model.layers.0.self_attn.q_proj.weight",
    ):
        assert not torch.equal(merged[name], base[name]), name
    assert torch.equal(merged["model.layers.0.self_attn.k_proj.weight"], base["model.layers.0.self_attn.k_proj.weight"])


def test_examples_longer_than_max_length_are_dropped_and_counted(tmp_path, smollm2_dir):
    from assay.training.chat_tokens import load_tokenizer

    long_answer = {
        "messages": [
            {"role": "user", "content": "Count."},
            {"role": "assistant", "content": " ".join(str(i) for i in range(200))},
        ]
    }
    write_chats(tmp_path / "train.jsonl", [long_answer])
    cfg = config(tmp_path, "++max_length=128")
    rows, too_long = sft.load_examples(cfg, load_tokenizer("smollm2"))
    assert (len(rows), too_long) == (12, 1)
    assert all(len(row["input_ids"]) <= 128 and len(row["labels"]) == len(row["input_ids"]) for row in rows)


def test_config_errors_stop_the_stage_before_it_loads_anything(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sft.main(["++train_file=x.jsonl", f"++output_dir={tmp_path}", "++lora.rnak=8"])
    assert exit_info.value.code == 2
    assert "Did you mean 'lora.rank'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sft.main(["++train_file=x.jsonl", f"++output_dir={tmp_path}", "++save_steps=0"])
    assert "save_steps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sft.main([f"++train_file={tmp_path / 'none.jsonl'}", f"++output_dir={tmp_path}"])
    assert "does not exist" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
