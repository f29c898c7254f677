"""Real sandbox servers for the tests: each started as a subprocess on a free port.

Every server is stopped with SIGTERM (it removes its kernels, cgroups and folders) and, if it does
not exit in time, its whole process group is killed; kernels die with their server regardless.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from assay.sandbox.client import SandboxClient

TOKEN = "test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, log_path, *args: str, token: str | None = TOKEN):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        cmd = [sys.executable, "-m", "assay.sandbox.server", "--port", str(self.port), *args]
        if token:
            cmd += ["--token", token]
        self.log_path = log_path
        self._log = open(log_path, "wb")
        # ipykernel stops capturing child-process output when it sees PYTEST_CURRENT_TEST.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_SANDBOX_", "PYTEST_"))}
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            with self.client() as client:
                client.wait_until_healthy(90)
        except BaseException:
            self.stop()
            raise

    def client(self) -> SandboxClient:
        return SandboxClient(self.url, token=self.token or "")

    def kernel_pids(self) -> list[int]:
        """Every descendant of this server: its fork server, sessions and their processes (or workers)."""
        parents: dict[int, int] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat", "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                parents[int(name)] = int(data[data.rindex(b")") + 2 :].split()[1])
        found, frontier = [], [self.proc.pid]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent]
            found += children
            frontier += children
        return found

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
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

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()


def start_server(tmp_path_factory, name: str, *args: str, token: str | None = TOKEN) -> ServerProcess:
    return ServerProcess(tmp_path_factory.mktemp(name) / "server.log", *args, token=token)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The main server: small limits so faults are cheap to provoke."""
    srv = start_server(
        tmp_path_factory,
        "main",
        "--pool-size",
        "2",
        "--memory-mb",
        "400",
        "--max-processes",
        "24",
        "--interrupt-grace",
        "1",
    )
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c


def _assert_serving(client: SandboxClient) -> None:
    """The service still answers, and runs code correctly, after whatever just happened."""
    assert client.health()["status"] == "ok"
    r = client.execute("print(6 * 7)", session_id="liveness-probe", timeout=30)
    assert (r.status, r.stdout) == ("ok", "42\n")


@pytest.fixture
def assert_serving():
    return _assert_serving


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    """Start extra servers with their own options; all are stopped at the end of the run."""
    started = []

    def make(name: str, *args: str, token: str | None = TOKEN) -> ServerProcess:
        srv = start_server(tmp_path_factory, name, *args, token=token)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()
