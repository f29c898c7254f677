"""A real sandbox server for the code-grading tests, started as a subprocess on a free port.

Stopped with SIGTERM (the server removes its kernels), then its whole process group is killed in
case anything is left.
"""

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


class Sandbox:
    def __init__(self, log_path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "wb")
        self.log_path = log_path
        # ipykernel stops capturing child-process output when it sees PYTEST_CURRENT_TEST.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_SANDBOX_", "PYTEST_"))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "assay.sandbox.server", "--port", str(self.port), "--pool-size", "2"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        from assay.sandbox.client import SandboxClient

        try:
            with SandboxClient(self.url, token="") as client:
                client.wait_until_healthy(90)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    server = Sandbox(tmp_path_factory.mktemp("eval-sandbox") / "server.log")
    yield server
    server.stop()
