"""The services a generation or evaluation job starts beside its stage: the model server and the sandbox.

Both run through assay's own entry points (`python -m assay.inference.serve`, `python -m
assay.sandbox.server`), so the node resolves model aliases and server quirks itself, and the job's
command line stays short and readable in a dry run.
"""

from __future__ import annotations

from typing import Optional

from .services import ServiceSpec

SANDBOX_URL_ENV = "ASSAY_SANDBOX_URL"
"""How the stage finds the sandbox started beside it (read by assay.sandbox.client.configured_url)."""

SERVER_STARTUP_TIMEOUT_S = 3600.0  # large models on slow file systems take long; a dead server still fails at once


def loopback_url(port_placeholder: str, path: str = "") -> str:
    """The URL of a service on the node's loopback, with its port left as `{placeholder}` for the job runner
    (which picks a free port when the job starts): `loopback_url("sandbox_port")`."""
    return f"http://127.0.0.1:{{{port_placeholder}}}{path}"


def sandbox_env() -> dict[str, str]:
    """The env that points a job's command at the sandbox started beside it."""
    return {SANDBOX_URL_ENV: loopback_url("sandbox_port")}


def server_service(
    server_type: str,
    model: str,
    python: str,
    server_gpus: int = 0,
    server_nodes: int = 1,
    server_args: str = "",
    port: Optional[int] = None,
    host: str = "127.0.0.1",
) -> ServiceSpec:
    """The model server, serving `model` under the same name, healthy when /v1/models answers; bound to the
    node's loopback unless `host` says otherwise (start_server binds every interface)."""
    command = [
        python,
        "-m",
        "assay.inference.serve",
        f"--server_type={server_type}",
        f"--model={model}",
        "--port={port}",
        f"--server_gpus={server_gpus}",
        f"--server_nodes={server_nodes}",
    ]
    if host != "127.0.0.1":
        command.append(f"--host={host}")
    if server_args:
        command.append(f"--server_args={server_args}")
    return ServiceSpec(
        name="server",
        command=command,
        health_url=loopback_url("port", "/v1/models"),
        port=port,
        startup_timeout_s=SERVER_STARTUP_TIMEOUT_S,
        all_nodes=server_nodes > 1,
    )


def sandbox_service(python: str, host: str = "127.0.0.1") -> ServiceSpec:
    """The code-execution sandbox on this node's loopback (or `host`), with a token made when it starts.

    Any user of a shared node can reach a loopback port; the token (ASSAY_SANDBOX_TOKEN, given to the
    sandbox and to the job's command through the environment) keeps them out.
    """
    return ServiceSpec(
        name="sandbox",
        # a model may think for long between two calls of one session: keep idle sessions an hour
        command=[python, "-m", "assay.sandbox.server", f"--host={host}", "--port={port}", "--session-ttl=3600"],
        health_url=loopback_url("port", "/health"),
        startup_timeout_s=300.0,
        secret_env="ASSAY_SANDBOX_TOKEN",
    )
