"""Services a job starts beside its command (a model server, the sandbox), on the job's node.

Each service gets a free port, writes its own log, and must answer its health URL before the command
starts. Waiting is bounded and watches the process: a service that exits or never gets healthy fails
the job at once with the tail of its log, instead of holding the allocation until the time limit.
Services are stopped (their whole process group) when the command ends, whatever the outcome.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


class ServiceFailedError(RuntimeError):
    """A service died or never became healthy; the message holds the tail of its log."""


@dataclass
class ServiceSpec:
    """How to start one service. `{port}` in the command, env or health URL becomes the chosen port
    (a plain text replacement, so braces elsewhere, e.g. JSON in server_args, are left alone)."""

    name: str
    command: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    port: Optional[int] = None
    """Fixed port; a free one is chosen on the node when None."""
    startup_timeout_s: float = 1800.0
    poll_interval_s: float = 1.0
    all_nodes: bool = False
    """Start it on every node of a multi-node job (a model server spanning nodes), not only the head."""
    secret_env: Optional[str] = None
    """An environment variable that gets a fresh random token when the service starts (the sandbox's
    ASSAY_SANDBOX_TOKEN): the service and the job's command get it through their environment, never on
    a command line or in a log."""
    component: Optional[str] = None
    """Which of the cluster config's `containers` runs it as a step of its own on Slurm (the server type, or
    `sandbox`); on the host when the config has no image for it."""
    image: Optional[str] = None
    """An image for this call only (server_container, sandbox_container), over the cluster config's."""
    own_step: bool = False
    """Started by the batch script as its own Slurm step (pipeline/executors/slurm_steps.py), on the fixed `port`;
    the job runner only waits until it is healthy."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class StepWatch:
    """Stands for the process of a service that runs as its own Slurm step: `poll()` is its exit status once the
    batch script has written it to `exit_path`, None while the step runs."""

    def __init__(self, exit_path: Path):
        self.exit_path = exit_path

    def poll(self) -> Optional[int]:
        try:
            return int(self.exit_path.read_text().strip() or "1")
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return 1


@dataclass
class RunningService:
    spec: ServiceSpec
    port: int
    process: "subprocess.Popen | StepWatch"
    log_path: Path
    secrets: dict = field(default_factory=dict)
    """Environment the job's command needs to reach the service (its token), made at start."""

    @property
    def health_url(self) -> str:
        return _with_port(self.spec.health_url, self.port)


def _with_port(text: str, port: int) -> str:
    return text.replace("{port}", str(port))


def start_service(spec: ServiceSpec, log_path: Path, preexec_fn=None) -> RunningService:
    """Start the service in its own session (so it can be stopped as a group), its output in `log_path`."""
    port = spec.port or free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({k: _with_port(v, port) for k, v in spec.env.items()})
    made = {spec.secret_env: secrets.token_urlsafe(32)} if spec.secret_env else {}
    env.update(made)
    command = [_with_port(part, port) for part in spec.command]
    with log_path.open("ab") as log:
        log.write(f"[assay] starting {spec.name}: {subprocess.list2cmdline(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=preexec_fn)
    print(f"[assay] started {spec.name} (pid {process.pid}, port {port}); log {log_path}", flush=True)
    return RunningService(spec, port, process, log_path, made)


def watch_step(spec: ServiceSpec, log_dir: Path, job_id: str) -> RunningService:
    """A service the batch script started as its own Slurm step (executors/slurm_steps.py), on its fixed port: its
    log and the file its exit status goes to are named by the job id, as the runner's own services' logs are."""
    if spec.port is None:
        raise ValueError(f"{spec.name} runs as its own step but has no fixed port")
    log = log_dir / f"{job_id}_{spec.name}.log"
    print(f"[assay] {spec.name} runs as its own step (port {spec.port}); log {log}", flush=True)
    return RunningService(spec, spec.port, StepWatch(log_dir / f"{job_id}_{spec.name}.exit"), log)


def wait_healthy(service: RunningService, tail_fn) -> None:
    """Return once the health URL answers; raise with the log tail if the process dies or time runs out."""
    start = time.monotonic()
    deadline = start + service.spec.startup_timeout_s
    while True:
        if _healthy(service.health_url):
            print(f"[assay] {service.spec.name} healthy after {time.monotonic() - start:.1f}s", flush=True)
            return
        code = service.process.poll()
        if code is not None:
            raise ServiceFailedError(
                f"{service.spec.name} exited with status {code} before it was healthy; "
                f"log {service.log_path}:\n{tail_fn(service.log_path)}"
            )
        if time.monotonic() > deadline:
            raise ServiceFailedError(
                f"{service.spec.name} not healthy at {service.health_url} after {service.spec.startup_timeout_s:.0f}s; "
                f"log {service.log_path}:\n{tail_fn(service.log_path)}"
            )
        time.sleep(service.spec.poll_interval_s)
