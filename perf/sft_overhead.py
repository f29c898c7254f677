"""Is an SFT run through assay as fast as the same run on bare TRL?

    python perf/sft_overhead.py [--steps 30] [--repeats 1] [--skip-launcher]

The same LoRA run (the embedded model, assay's SFT defaults, `--steps` optimizer steps over the 61 examples of
recipes/data/mlcode_sft_raw.jsonl as prompt/answer chats, the same token ids on both sides), in the same run of
this script, each side in a fresh Python process so imports count on both:
  baseline  bare TRL: `SFTTrainer(model, SFTConfig(...same settings...), train_dataset=<the token ids>,
            peft_config=LoraConfig(...))`, `train()`, then `save_model()` (a bare script keeps its result too);
            gradient checkpointing and bf16 off, as assay sets them on a CPU (TRL's SFTConfig turns both on by
            default, and bf16 autocast on a CPU without bf16 instructions is several times slower)
  stage     `python -m assay.training.sft ++train_file=... ++max_steps=<steps>` (its defaults: a final checkpoint
            with the optimizer state, a merged copy of it, train_log.jsonl)
  launcher  `assay sft --cluster=local ...`: the stage as a local job, with the job runner and the launcher's
            waiting (skipped with --skip-launcher)
It prints each side's wall time, the time of its training loop (first to last step), and the ratios to the
baseline (the goal is <= 1.05x for the stage and the launcher). The baseline gets its token ids ready-made, so
assay's own tokenization counts against it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "recipes" / "data" / "mlcode_sft_raw.jsonl"

BARE_TRL = r"""
import json, sys, time
from pathlib import Path
started = time.perf_counter()
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer

model_path, tokens_file, out, steps, rank, alpha, dropout, lr, targets = sys.argv[1:10]
rows = [json.loads(line) for line in open(tokens_file)]
tokenizer = AutoTokenizer.from_pretrained(model_path)
model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)

class StepTimes(TrainerCallback):
    times = []
    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())

fields = SFTConfig.__dataclass_fields__  # transformers 5 renamed gradient_checkpointing
no_checkpointing = {"activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing": False}
args = SFTConfig(output_dir=out, max_steps=int(steps), per_device_train_batch_size=1, learning_rate=float(lr),
                 lr_scheduler_type="cosine", save_strategy="steps", save_steps=100, logging_steps=1, seed=42,
                 report_to="none", disable_tqdm=True, use_cpu=True, max_length=4096, packing=False,
                 remove_unused_columns=False, bf16=False, **no_checkpointing)
lora = LoraConfig(r=int(rank), lora_alpha=int(alpha), lora_dropout=float(dropout), task_type="CAUSAL_LM",
                  target_modules=json.loads(targets))
trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                     peft_config=lora, callbacks=[StepTimes()])
trainer.train()
trainer.save_model(out)
print(json.dumps({"loop_s": StepTimes.times[-1] - StepTimes.times[0], "steps": len(StepTimes.times),
                  "python_s": time.perf_counter() - started}))
"""


def write_inputs(folder: Path, model_path: str) -> tuple[Path, Path, int]:
    """The chats (for assay) and their token ids (for bare TRL), tokenized once by assay's own rule."""
    from assay.training.chat_tokens import load_tokenizer, tokenize_conversation

    tokenizer = load_tokenizer(model_path)
    chats, tokens, total = folder / "train.jsonl", folder / "tokens.jsonl", 0
    with chats.open("w") as c, tokens.open("w") as t:
        for line in RAW.read_text().splitlines():
            raw = json.loads(line)
            messages = [{"role": "user", "content": raw["prompt"]}, {"role": "assistant", "content": raw["generation"]}]
            c.write(json.dumps({"messages": messages}) + "\n")
            conv = tokenize_conversation(tokenizer, messages)
            t.write(json.dumps({"input_ids": conv.input_ids, "labels": conv.labels}) + "\n")
            total += len(conv.input_ids)
    return chats, tokens, total


def loop_seconds(train_log: Path) -> float:
    """First to last step, from the elapsed time train_log.jsonl records at each step."""
    steps = [json.loads(line) for line in train_log.read_text().splitlines()]
    return steps[-1]["elapsed_s"] - steps[0]["elapsed_s"]


def timed(argv: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=1, help="run each side this many times, alternating")
    parser.add_argument("--skip-launcher", action="store_true")
    args = parser.parse_args()

    from assay.inference.embedded_model import resolve_model
    from assay.training.sft import LoraSettings, SFTStageConfig

    model_path = resolve_model("smollm2")
    defaults, lora = SFTStageConfig(train_file="-", output_dir="-"), LoraSettings()
    assert not lora.target_parameters, "update BARE_TRL's LoraConfig"
    work = Path(tempfile.mkdtemp(prefix="assay-sft-perf-"))
    chats, tokens, total = write_inputs(work, model_path)
    print(f"{RAW.name}: 61 examples, {total} tokens; {args.steps} steps; LoRA r={lora.rank}; in {work}", flush=True)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    results: dict[str, list[tuple[float, float]]] = {"bare TRL": [], "assay stage": [], "assay sft (local job)": []}
    for repeat in range(args.repeats):
        out = work / f"bare-{repeat}"
        wall, stdout = timed(
            [
                sys.executable,
                "-c",
                BARE_TRL,
                model_path,
                str(tokens),
                str(out),
                str(args.steps),
                str(lora.rank),
                str(lora.alpha),
                str(lora.dropout),
                str(defaults.learning_rate),
                json.dumps(lora.target_modules),
            ],
            env,
        )
        report = json.loads(stdout.strip().splitlines()[-1])
        results["bare TRL"].append((wall, report["loop_s"]))

        out = work / f"stage-{repeat}"
        stage = [f"++train_file={chats}", f"++output_dir={out}", f"++max_steps={args.steps}"]
        wall, _ = timed([sys.executable, "-m", "assay.training.sft", *stage], env)
        results["assay stage"].append((wall, loop_seconds(out / "train_log.jsonl")))

        if not args.skip_launcher:
            out = work / f"job-{repeat}"
            launch = [
                sys.executable,
                "-m",
                "assay.pipeline.cli",
                "sft",
                "--cluster=local",
                f"--train_file={chats}",
                f"--output_dir={out}",
                f"++max_steps={args.steps}",
            ]
            wall, _ = timed(launch, env)
            results["assay sft (local job)"].append((wall, loop_seconds(out / "train_log.jsonl")))
        print(
            f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1][0]:.1f} s" for k, v in results.items() if v), flush=True
        )

    base_wall = min(w for w, _ in results["bare TRL"])
    base_loop = min(s for _, s in results["bare TRL"])
    print(f"\n{'side':24} {'wall s':>8} {'loop s':>8} {'wall ratio':>11} {'loop ratio':>11}")
    for name, runs in results.items():
        if not runs:
            continue
        wall, loop = min(w for w, _ in runs), min(s for _, s in runs)
        print(f"{name:24} {wall:8.1f} {loop:8.1f} {wall / base_wall:10.2f}x {loop / base_loop:10.2f}x")
    print("(best of the repeats per side; the goal is <= 1.05x wall)")


if __name__ == "__main__":
    main()
