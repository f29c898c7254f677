"""Is assay's generation client ever the bottleneck? Requests/s against an instant server, vs the openai client.

    python perf/generation_overhead.py [--requests 2000] [--concurrency 512] [--memory] [--vllm]

Part 1 starts a stand-in OpenAI-compatible server that answers at once (a subprocess on loopback) and
sends the same N chat requests three ways, in the same run:
  baseline   the `openai` package's AsyncOpenAI in a plain asyncio loop with a semaphore
  client     assay's ModelClient with the same semaphore
  stage      the whole generation stage (prompt rendering, JSONL append + fsync per line, ordering)
and prints requests/s and the ratio to the baseline (>= 0.9 means the client is not the bottleneck).

Part 2 (--memory) runs the stage as its own process against the same instant server, on 20k and
200k input lines, and prints its peak RSS and samples/s at each size: memory must not grow with the
input (peak at 200k <= 1.3x that at 20k) and the rate must hold (>= 0.9x).

Part 3 (--vllm) serves the embedded model with real vLLM on CPU and prints generated tokens/s at
concurrency 1 and 16 (the ratio shows what batching buys on this machine).
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
import urllib.request
from pathlib import Path

STANDIN = """
import sys
from aiohttp import web
ANSWER = {"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop", "index": 0}],
          "usage": {"completion_tokens": 1, "prompt_tokens": 1}, "id": "x", "object": "chat.completion",
          "created": 0, "model": "m"}
async def chat(request):
    await request.read()
    return web.json_response(ANSWER)
async def models(request):
    return web.json_response({"data": [{"id": "m", "object": "model"}], "object": "list"})
app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
app.router.add_get("/v1/models", models)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def wait_ready(url: str, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


async def baseline_openai(port: int, n: int, concurrency: int) -> float:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        async with sem:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"q{i}"}], temperature=0.0, max_tokens=16
            )

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - start
    await client.close()
    return n / elapsed


async def assay_client(port: int, n: int, concurrency: int) -> float:
    from assay.inference.config import InferenceConfig, ServerConfig
    from assay.inference.model_client import ModelClient

    server = ServerConfig(server_type="openai", model="m", port=port)
    body = InferenceConfig(tokens_to_generate=16).request_body("openai")
    sem = asyncio.Semaphore(concurrency)
    async with ModelClient(server, max_connections=concurrency) as client:

        async def one(i):
            async with sem:
                await client.chat([{"role": "user", "content": f"q{i}"}], body, {})

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - start)


def assay_stage(port: int, n: int, concurrency: int) -> float:
    from assay.core.config import compose_stage_config
    from assay.inference.config import GenerateConfig
    from assay.inference.generate import generate

    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.jsonl"
        inp.write_text("".join(json.dumps({"question": f"q{i}"}) + "\n" for i in range(n)))
        cfg = compose_stage_config(
            GenerateConfig,
            [
                f"++input_file={inp}",
                f"++output_file={tmp}/out.jsonl",
                "++server.model=m",
                "++server.server_type=openai",
                f"++server.port={port}",
                f"++max_concurrent_requests={concurrency}",
                "++inference.tokens_to_generate=16",
            ],
        )
        start = time.perf_counter()
        generate(cfg)
        return n / (time.perf_counter() - start)


def part_overhead(n: int, concurrency: int, repeats: int) -> None:
    from assay.pipeline.services import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", STANDIN, str(port)])
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models", 30, proc)
        rates = {"baseline (openai AsyncOpenAI)": [], "assay ModelClient": [], "assay generate stage": []}
        for _ in range(repeats):  # interleaved, so drift in machine load hits all three alike
            rates["baseline (openai AsyncOpenAI)"].append(asyncio.run(baseline_openai(port, n, concurrency)))
            rates["assay ModelClient"].append(asyncio.run(assay_client(port, n, concurrency)))
            rates["assay generate stage"].append(assay_stage(port, n, concurrency))
    finally:
        proc.kill()
        proc.wait()
    base = max(rates["baseline (openai AsyncOpenAI)"])
    print(f"\n{n} chat requests, concurrency {concurrency}, instant stand-in server on loopback; best of {repeats}")
    print(f"{'client':32} | {'requests/s':>10} | {'ratio to baseline':>17}")
    for name, values in rates.items():
        print(f"{name:32} | {max(values):10.0f} | {max(values) / base:17.2f}")


def _stage_process(port: int, n: int, concurrency: int, tmp: str) -> tuple[float, float]:
    """(peak RSS in MB, samples/s) of one stage process over n lines."""
    inp = Path(tmp) / f"in-{n}.jsonl"
    with inp.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"question": f"question number {i}"}) + "\n")
    argv = [
        sys.executable,
        "-m",
        "assay.inference.generate",
        f"++input_file={inp}",
        f"++output_file={tmp}/out-{n}.jsonl",
        "++server.model=m",
        "++server.server_type=openai",
        f"++server.port={port}",
        f"++max_concurrent_requests={concurrency}",
        "++inference.tokens_to_generate=16",
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"the stage failed on {n} lines (status {status})")
    return usage.ru_maxrss / 1024, n / elapsed


def part_memory(concurrency: int) -> None:
    from assay.pipeline.services import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", STANDIN, str(port)])
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models", 30, proc)
        with tempfile.TemporaryDirectory() as tmp:
            small = _stage_process(port, 20_000, concurrency, tmp)
            large = _stage_process(port, 200_000, concurrency, tmp)
    finally:
        proc.kill()
        proc.wait()
    print(f"\nthe generation stage as a process, concurrency {concurrency}, instant stand-in server")
    print(f"{'input lines':>11} | {'peak RSS MB':>11} | {'samples/s':>9}")
    for n, (rss, rate) in ((20_000, small), (200_000, large)):
        print(f"{n:11} | {rss:11.0f} | {rate:9.0f}")
    print(f"peak RSS 200k / 20k: {large[0] / small[0]:.2f}x (goal <= 1.3x)")
    print(f"rate 200k / 20k: {large[1] / small[1]:.2f}x (goal >= 0.9x)")


async def _vllm_tokens_per_s(port: int, concurrency: int, n: int, max_tokens: int) -> tuple[float, int]:
    from assay.inference.config import InferenceConfig, ServerConfig
    from assay.inference.model_client import ModelClient

    server = ServerConfig(server_type="vllm", model="smollm2", port=port, request_timeout=600)
    body = InferenceConfig(tokens_to_generate=max_tokens, temperature=0.7).request_body("vllm")
    body["ignore_eos"] = True  # every request generates max_tokens, so both runs do the same work
    sem = asyncio.Semaphore(concurrency)
    async with ModelClient(server, max_connections=concurrency) as client:

        async def one(i):
            async with sem:
                result = await client.chat(
                    [{"role": "user", "content": f"Tell me a story about the number {i}."}], body, {}
                )
                return result.num_generated_tokens or 0

        start = time.perf_counter()
        tokens = sum(await asyncio.gather(*(one(i) for i in range(n))))
        return tokens / (time.perf_counter() - start), tokens


def part_vllm(max_tokens: int) -> None:
    from assay.inference.embedded_model import resolve_model
    from assay.inference.servers import server_command
    from assay.pipeline.services import free_port

    port = free_port()
    launch = server_command("vllm", resolve_model("smollm2"), port=port, served_model_name="smollm2")
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as log:
        proc = subprocess.Popen(
            launch.argv, env=launch.environ(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        started = time.perf_counter()
        wait_ready(launch.health_url, 900, proc)
        print(f"\nvLLM CPU serving smollm2: healthy after {time.perf_counter() - started:.0f}s (log {log.name})")
        asyncio.run(_vllm_tokens_per_s(port, 1, 1, max_tokens))  # warm-up
        single, t1 = asyncio.run(_vllm_tokens_per_s(port, 1, 4, max_tokens))
        batched, t16 = asyncio.run(_vllm_tokens_per_s(port, 16, 16, max_tokens))
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    print(f"{'concurrency':12} | {'tokens':>7} | {'tokens/s':>9} | {'ratio to concurrency 1':>22}")
    print(f"{1:12} | {t1:7} | {single:9.1f} | {1.0:22.2f}")
    print(f"{16:12} | {t16:7} | {batched:9.1f} | {batched / single:22.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="also measure the stage's peak RSS at 20k and 200k lines")
    parser.add_argument("--vllm", action="store_true", help="also measure real vLLM on CPU with the embedded model")
    parser.add_argument("--max_tokens", type=int, default=128)
    args = parser.parse_args()
    part_overhead(args.requests, args.concurrency, args.repeats)
    if args.memory:
        part_memory(args.concurrency)
    if args.vllm:
        part_vllm(args.max_tokens)


if __name__ == "__main__":
    main()
