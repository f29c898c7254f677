"""The sandbox server's settings: one dataclass whose field docstrings are the CLI help.

The command line (`python -m assay.sandbox.server --help`) is generated from this dataclass, so a
setting and its documentation cannot drift apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from dataclasses import dataclass, field


def _doc(text: str, **kwargs):
    return field(metadata={"help": text}, **kwargs)


@dataclass
class SandboxConfig:
    host: str = _doc("Address to bind. The default serves this machine only.", default="127.0.0.1")
    port: int = _doc("TCP port to listen on.", default=6000)
    workers: int = _doc(
        "Worker processes. Each owns its own kernels; with more than one, a front process routes a "
        "request to the worker that owns its session (ids `w<k>-...`, other ids by a stable hash).",
        default=1,
    )
    token: str | None = _doc(
        "Bearer token required on every request (`Authorization: Bearer T`). Also read from "
        "ASSAY_SANDBOX_TOKEN. Unset: no authentication.",
        default=None,
    )
    max_sessions: int = _doc(
        "Most kernels in use at once per worker (named sessions plus throw-away calls in flight). A request "
        "that needs one more gets HTTP 503; existing sessions are never evicted to make room.",
        default=128,
    )
    session_ttl: float = _doc("Seconds a named session may stay idle before it is deleted.", default=600.0)
    pool_size: int = _doc(
        "Kernels kept started and ready per worker, so a new or throw-away session does not wait for a "
        "kernel to boot (about 0.5-1 s of CPU each).",
        default=4,
    )
    memory_mb: int = _doc(
        "Resident memory of one session (its kernel and every process it starts). Enforced by a "
        "memory cgroup when one can be created, else by summing RSS and killing the session.",
        default=4096,
    )
    address_space_mb: int = _doc(
        "RLIMIT_AS of each process of a session: a single huge allocation fails with MemoryError "
        "instead of growing. 0 disables it (CUDA needs that: it reserves far more address space).",
        default=8192,
    )
    cpu_seconds: int = _doc(
        "RLIMIT_CPU of each process of a session, counted over the kernel's whole life. 0 disables.",
        default=3600,
    )
    max_processes: int = _doc(
        "Most processes in one session, kernel included. Enforced by a pids cgroup when one can be "
        "created, else by watching the session's process group; reaching it kills the session.",
        default=64,
    )
    default_timeout: float = _doc("Wall-clock seconds per call when a request gives none.", default=10.0)
    max_timeout: float = _doc("Largest per-call timeout a request may ask for.", default=3600.0)
    default_max_output_chars: int = _doc(
        "Output cap per stream when a request gives none (head and tail kept).", default=10000
    )
    max_output_chars: int = _doc(
        "Largest output cap a request may ask for (per stream). Output is capped inside the session "
        "process, so a cell that prints a gigabyte sends the service at most this much.",
        default=1_000_000,
    )
    isolation: str = _doc(
        "How sessions are isolated: `auto` uses Linux namespaces (read-only system, private tmpfs, own PID "
        "and network namespace, no privileges) where the machine allows it and falls back to plain "
        "processes; `namespaces` requires them; `none` never uses them. /health says what is active.",
        default="auto",
    )
    allow_network: bool = _doc(
        "Let sessions reach the network. Off by default: a session sees only its own loopback.", default=False
    )
    tmp_mb: int = _doc("Size of each session's private writable space (/tmp and friends) in MB.", default=512)
    preload: str = _doc(
        "Modules the heavy fork server imports once, so that grading runs whose answer or tests use torch "
        "do not pay for them (those not installed are skipped); sessions and other grading runs fork from "
        "a light one (IPython and numpy), which forks several times faster. torch imports some of its parts lazily, several seconds each "
        "(torch._dynamo on the first manual_seed, DTensor on the first assert_close): they are listed too.",
        default="numpy,torch,torch._dynamo,torch.distributed.tensor,torch.testing,torch.multiprocessing",
    )
    interrupt_grace: float = _doc(
        "Seconds a timed-out call gets to stop after SIGINT before its kernel is killed and replaced.",
        default=2.0,
    )
    monitor_interval: float = _doc("Seconds between checks of each session's processes and memory.", default=0.1)
    cgroups: bool = _doc("Use per-session cgroups (pids, memory) when this process may create them.", default=True)
    python: str = _doc("Interpreter that runs the kernels; it needs ipykernel but not assay.", default=sys.executable)
    kernel_start_timeout: float = _doc(
        "Seconds the fork server may take to start (it imports `preload`), and a session to become ready.",
        default=120.0,
    )
    work_dir: str | None = _doc(
        "Folder under which each kernel gets a fresh working directory. Default: a temporary folder.",
        default=None,
    )

    def __post_init__(self) -> None:
        if self.token is None:
            self.token = os.environ.get("ASSAY_SANDBOX_TOKEN") or None
        if self.isolation not in ("auto", "namespaces", "none"):
            raise ValueError(f"isolation must be auto, namespaces or none, got {self.isolation!r}")
        if self.default_max_output_chars > self.max_output_chars:
            raise ValueError("default_max_output_chars must not exceed max_output_chars")
        for name in (
            "workers",
            "max_sessions",
            "max_processes",
            "default_max_output_chars",
            "max_output_chars",
            "tmp_mb",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("pool_size", "memory_mb", "address_space_mb", "cpu_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("session_ttl", "default_timeout", "max_timeout", "interrupt_grace", "monitor_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one `--flag` per SandboxConfig field, with the field's documentation as help."""
    for f in dataclasses.fields(SandboxConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"] + " (default: %(default)s)"
        if f.type in ("bool", bool):
            parser.add_argument(flag, default=f.default, action=argparse.BooleanOptionalAction, help=help_text)
            continue
        kind = {"int": int, "float": float}.get(str(f.type), str)
        parser.add_argument(flag, dest=f.name, type=kind, default=f.default, help=help_text)


def from_namespace(ns: argparse.Namespace) -> SandboxConfig:
    return SandboxConfig(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(SandboxConfig)})
