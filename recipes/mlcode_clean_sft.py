"""Clean SFT on ML coding data, then evaluate every checkpoint: prepare data -> LoRA SFT -> checkpoint sweep -> table.

On this machine, with the embedded model (SmolLM2-135M-Instruct), CPU only, in about 10 minutes (2 cores):

    python recipes/mlcode_clean_sft.py --output_dir=/tmp/clean_sft

On a Slurm cluster of 8-GPU nodes, with a real model (look at the jobs first with --dry_run):

    python recipes/mlcode_clean_sft.py --cluster=slurm --model=/models/Qwen3-8B --output_dir=/shared/clean_sft \\
        --raw_file=/shared/sdg/output.jsonl --num_gpus=8 --server_gpus=8 --max_steps=2000 --save_steps=200 \\
        --max_length=8192 --seeds=4 --eval_samples=0 --tokens_to_generate=4096

Four chained experiments (each waits for the previous one: `run_after`):

1. `clean-data`: prepare_sft_data keeps only examples that teach what is wanted at inference: complete
   generations, code targets with the prose around them stripped, parseable, importing what they use,
   no longer than max_length in the model's own tokens (dropped, never truncated), no overlap with the
   mlcode benchmark's prompts, no duplicates. Its report (`data/train.report.json`) says what each
   filter removed. The default raw file, recipes/data/mlcode_sft_raw.jsonl, is a small hand-written
   stand-in for an SDG output, with known defects.
2. `clean-sft`: LoRA SFT from the base model, assistant tokens only, a checkpoint every save_steps,
   each also merged into a servable folder (`sft/merged/checkpoint-<step>`).
3. `clean-eval`: the base model and every merged checkpoint on mlcode (a slice of it with
   --eval_samples), graded in the sandbox. The checkpoints do not exist when it is submitted, so the
   glob is expanded when its job starts.
4. `clean-summary`: the checkpoint sweep table (step, pass@1, failure taxonomy, best checkpoint), also
   saved as `eval/checkpoint_sweep.json`.

On a local cluster the script waits for each step and shows its output; on Slurm it submits all four and returns.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from assay.pipeline import eval, load_cluster_config, prepare_sft_data, run_cmd, sft, wrap_arguments
from assay.pipeline.cluster import node_python

RAW_FILE = Path(__file__).resolve().parent / "data" / "mlcode_sft_raw.jsonl"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="data/, sft/, eval/ and logs go under it")
    parser.add_argument("--cluster", default="local", help="cluster config name or path")
    parser.add_argument("--model", default="smollm2", help="the model to fine-tune and evaluate (path or alias)")
    parser.add_argument("--raw_file", default=str(RAW_FILE), help="SDG output (prompt + generation lines) to clean")
    parser.add_argument("--max_length", type=int, default=1024, help="longest training example in tokens")
    parser.add_argument("--max_steps", type=int, default=20, help="SFT optimizer steps")
    parser.add_argument("--save_steps", type=int, default=10, help="a checkpoint (evaluated) every this many steps")
    parser.add_argument("--lora_rank", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--num_gpus", type=int, default=0, help="GPUs per node for SFT (torchrun above 1)")
    parser.add_argument("--num_nodes", type=int, default=1, help="nodes for SFT (Slurm)")
    parser.add_argument("--server_gpus", type=int, default=0, help="GPUs of each evaluation's vLLM server")
    parser.add_argument("--seeds", type=int, default=1, help="samples per mlcode task (mlcode:<seeds>)")
    parser.add_argument(
        "--eval_samples", type=int, default=24, help="evaluate the first N mlcode tasks (a quick slice); 0: all of them"
    )
    parser.add_argument("--tokens_to_generate", type=int, default=512)
    parser.add_argument(
        "--cpu_threads", type=int, default=None, help="torch threads of SFT; 1 is fastest on a small, busy CPU machine"
    )
    parser.add_argument("--dry_run", action="store_true", help="print the jobs, submit nothing")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    out = Path(args.output_dir).absolute()
    common = dict(cluster=args.cluster, dry_run=args.dry_run)
    train_file = out / "data" / "train.jsonl"

    prepare_sft_data(
        input_file=args.raw_file,
        output_file=str(train_file),
        model=args.model,
        expname="clean-data",
        **common,
        ctx=wrap_arguments(
            f"++prompt_config=mlcode/default ++code_targets=true ++max_length={args.max_length} "
            "++decontaminate=[mlcode]"
        ),
    )
    sft_overrides = (
        f"++max_steps={args.max_steps} ++save_steps={args.save_steps} ++max_length={args.max_length} "
        f"++lora.rank={args.lora_rank} ++lora.alpha={2 * args.lora_rank} "
        f"++learning_rate={args.learning_rate} ++warmup_steps={max(1, args.max_steps // 10)}"
    )
    if args.cpu_threads:
        sft_overrides += f" ++cpu_threads={args.cpu_threads}"
    sft(
        train_file=str(train_file),
        output_dir=str(out / "sft"),
        model=args.model,
        expname="clean-sft",
        run_after="clean-data",
        num_gpus=args.num_gpus,
        num_nodes=args.num_nodes,
        ctx=wrap_arguments(sft_overrides),
        **common,
    )
    eval_overrides = f"++inference.tokens_to_generate={args.tokens_to_generate}"
    if args.eval_samples:
        eval_overrides += f" ++num_samples={args.eval_samples}"
    eval(
        benchmarks=f"mlcode:{args.seeds}",
        output_dir=str(out / "eval"),
        model=f"{args.model},{out / 'sft' / 'merged'}/checkpoint-*",
        expname="clean-eval",
        run_after="clean-sft",
        server_type="vllm",
        server_gpus=args.server_gpus,
        ctx=wrap_arguments(eval_overrides),
        **common,
    )
    python = node_python(load_cluster_config(args.cluster))
    run_cmd(
        f"{python} -m assay.training.checkpoint_sweep ++eval_dir={out / 'eval'}",
        expname="clean-summary",
        output_dir=str(out),
        run_after="clean-eval",
        **common,
    )


if __name__ == "__main__":
    main()
