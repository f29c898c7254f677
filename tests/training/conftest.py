"""Fixtures of the training tests: a real sandbox (the embedded model's folder and the training packages
are fixtures of tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sandbox_url(tmp_path_factory):
    """A sandbox server on a free port for the session; its process group is killed at the end."""
    from assay.sandbox.client import SandboxClient

    port = _free_port()
    log = open(tmp_path_factory.mktemp("train-sandbox") / "server.log", "wb")
    # ipykernel stops capturing child-process output when it sees PYTEST_CURRENT_TEST.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_SANDBOX_", "PYTEST_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "assay.sandbox.server", "--port", str(port), "--pool-size", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with SandboxClient(url, token="") as client:
            client.wait_until_healthy(90)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        log.close()
