"""Throughput and latency of the sandbox against a plain `subprocess.run` per call.

    python perf/sandbox_throughput.py            # 3 s per cell, concurrency 1/8/32/64
    python perf/sandbox_throughput.py --quick    # 1 s per cell, concurrency 1/8
    python perf/sandbox_throughput.py --url http://127.0.0.1:6000 --token T   # an existing server

Every cell runs `print(1)` in a closed loop (each of N clients sends its next call when the last
one answers) for a fixed window and reports executions per second, p50 and p99 latency, and the
ratio to the baseline at the same concurrency, all measured in the same run on the same machine:

- subprocess: `subprocess.run([sys.executable, "-c", code])` per call, from N threads;
- stateless:  POST /execute with a null session id (a fresh kernel per call);
- stateful:   POST /execute on N sessions, one per client, created before the window starts.

Calls still in flight when a window closes are awaited but not counted, and each cell waits for
the kernel pool to refill, so one cell does not leak work into the next. Without --url a server is started on a free port and stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from assay.sandbox.client import AsyncSandboxClient, SandboxClient

CODE = "print(1)"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summarize(latencies: list[float], window: float) -> dict:
    return {"rate": len(latencies) / window, "p50": percentile(latencies, 0.5) * 1e3,
            "p99": percentile(latencies, 0.99) * 1e3, "n": len(latencies)}


def run_subprocess_cell(concurrency: int, window: float) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter()
    end = start + window

    def client():
        while time.perf_counter() < end:
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
            done = time.perf_counter()
            assert out.stdout == "1\n", out
            if done <= end:
                with lock:
                    latencies.append(done - t)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return summarize(latencies, window)


async def run_sandbox_cell(sandbox: AsyncSandboxClient, concurrency: int, window: float,
                           sessions: list[str] | None) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    end = time.perf_counter() + window

    async def client(i: int):
        session_id = sessions[i] if sessions else None
        while time.perf_counter() < end:
            t = time.perf_counter()
            r = await sandbox.execute(CODE, session_id=session_id, timeout=60)
            done = time.perf_counter()
            if r.stdout != "1\n":
                errors.append(f"{r.status}: {r.error}")
            elif done <= end:
                latencies.append(done - t)

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed, first: {errors[0]}")
    return summarize(latencies, window)


def start_server(max_sessions: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.NamedTemporaryFile(prefix="sandbox-perf-", suffix=".log", delete=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_SANDBOX_")}
    proc = subprocess.Popen([sys.executable, "-m", "assay.sandbox.server", "--port", str(port),
                             "--max-sessions", str(max_sessions)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    with SandboxClient(url) as c:
        c.wait_until_healthy(120)
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def settle(sandbox: AsyncSandboxClient, timeout: float = 120.0) -> None:
    """Wait until the kernel pool is full again, so each cell starts from the same state."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        health = await sandbox.health()
        workers = health.get("workers", [health])
        if all(w["pool_ready"] >= w["pool_size"] and not w["throwaway_running"] for w in workers):
            return
        await asyncio.sleep(0.2)


async def run_sandbox(url: str, token: str | None, levels: list[int], window: float, modes: list[str]) -> dict:
    results: dict = {}
    async with AsyncSandboxClient(url, token=token, max_connections=max(levels) * 2) as sandbox:
        await sandbox.wait_until_healthy(120)
        if "stateless" in modes:
            for c in levels:
                await settle(sandbox)
                results[("stateless", c)] = await run_sandbox_cell(sandbox, c, window, None)
                print(f"  stateless x{c}: {results[('stateless', c)]['rate']:.1f}/s", flush=True)
        if "stateful" in modes:
            sessions = [f"perf-{i}" for i in range(max(levels))]
            await asyncio.gather(*(sandbox.execute("pass", session_id=s, timeout=120) for s in sessions))
            for c in levels:
                await settle(sandbox)
                results[("stateful", c)] = await run_sandbox_cell(sandbox, c, window, sessions)
                print(f"  stateful x{c}: {results[('stateful', c)]['rate']:.1f}/s", flush=True)
            await asyncio.gather(*(sandbox.delete_session(s) for s in sessions))
    return results


def print_table(results: dict, levels: list[int], modes: list[str], window: float) -> None:
    print(f"\nprint(1), {window:g} s per cell, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    header = f"{'mode':<11} {'conc':>4} {'exec/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'calls':>6} {'vs subprocess':>14}"
    print(header)
    print("-" * len(header))
    for mode in ["subprocess"] + modes:
        for c in levels:
            r = results.get((mode, c))
            if r is None:
                continue
            base = results.get(("subprocess", c), {}).get("rate")
            ratio = f"{r['rate'] / base:.2f}x" if base else "-"
            print(f"{mode:<11} {c:>4} {r['rate']:>9.1f} {r['p50']:>9.1f} {r['p99']:>9.1f} {r['n']:>6} {ratio:>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="an existing sandbox (default: start one)")
    parser.add_argument("--token", default=os.environ.get("ASSAY_SANDBOX_TOKEN"))
    parser.add_argument("--seconds", type=float, default=3.0, help="window per cell")
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--modes", default="stateless,stateful")
    parser.add_argument("--quick", action="store_true", help="1 s per cell, concurrency 1 and 8")
    args = parser.parse_args()
    levels = [1, 8] if args.quick else [int(c) for c in args.concurrency.split(",")]
    window = 1.0 if args.quick else args.seconds
    modes = [m for m in args.modes.split(",") if m]

    # Turn SIGTERM (e.g. from `timeout`) into an exception, so the server started here is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    results: dict = {}
    print("subprocess baseline", flush=True)
    for c in levels:
        results[("subprocess", c)] = run_subprocess_cell(c, window)
        print(f"  subprocess x{c}: {results[('subprocess', c)]['rate']:.1f}/s", flush=True)
    proc = None
    url = args.url
    if url is None:
        proc, url = start_server(max_sessions=max(128, 2 * max(levels)))
        print(f"started sandbox at {url}", flush=True)
    try:
        results.update(asyncio.run(run_sandbox(url, args.token, levels, window, modes)))
    finally:
        if proc is not None:
            stop_server(proc)
    print_table(results, levels, modes, window)


if __name__ == "__main__":
    main()
