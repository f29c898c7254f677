"""Server types: how a model server of one kind is launched, and what its OpenAI-compatible API accepts.

One module per type (vllm.py, sglang.py, trtllm.py, openai.py), chosen by `server_type` through
`SERVER_TYPES`. A type answers three questions: can it serve this request (GPUs, nodes; checked at
submission), what command starts it on one node (`command`, built apart from running it so every variant
can be checked in a dry run), and which request fields beyond OpenAI's schema it honours. Adding a server
type is one module here that subclasses `ServerType` and registers itself: `@SERVER_TYPES.register("name")`.

`server_command` builds one node's launch as an argument list plus environment; in a job, `python -m
assay.inference.serve` builds it on the node and execs it. Run directly, start `argv` with `environ()` in its own
process group and wait on `health_url`:

    launch = server_command("vllm", "/models/smollm2", port=5000, served_model_name="smollm2")
    subprocess.Popen(launch.argv, env=launch.environ(), start_new_session=True)

Model aliases (`smollm2`) are resolved by the caller on the node (`embedded_model.resolve_model`), so that
building a command never converts a model.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ...core.registry import Registry

DEFAULT_MASTER_PORT = 29501
"""Rendezvous port of multi-node launches on the head node (vLLM's own default)."""


class ServerTypeError(ValueError):
    """A server that this type cannot launch as asked (GPUs, nodes, a LoRA adapter)."""


@dataclass(frozen=True)
class ServerLaunch:
    """One node's server process: what to run, with which extra environment, and where it answers."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    """Defaults added to the environment; variables the user already set win (see `environ`)."""
    health_url: Optional[str] = None
    """This node's `/v1/models`, which answers 200 once the server takes requests; None on worker nodes, which
    serve no HTTP. For whoever runs `argv` directly (tests, scripts); in a job, the runner waits on the service's
    own health URL (pipeline/server_options.py), since serve.py picks the port on the node."""

    def environ(self, base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
        """The full environment of the server: our defaults under the caller's (e.g. a bigger KV cache)."""
        return {**self.env, **(os.environ if base is None else base)}

    def shell_line(self) -> str:
        """For logs and dry runs only; the server itself is started from `argv`, never through a shell."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return (env + " " if env else "") + shlex.join(self.argv)


@dataclass(frozen=True)
class LaunchRequest:
    """What one node's server must do: everything a type needs to build its command."""

    python: str
    model: str
    served_model_name: str
    host: str
    port: int
    server_gpus: int
    """GPUs per node; 0 means CPU."""
    server_nodes: int = 1
    node_rank: int = 0
    master_addr: Optional[str] = None
    """The head node (rank 0), which alone serves HTTP, when nodes > 1."""
    master_port: int = DEFAULT_MASTER_PORT
    extra_args: tuple[str, ...] = ()
    """server_args, split by shell rules; they come last, so they override our flags."""
    health_url: Optional[str] = None


class ServerType:
    """One kind of model server, reached through its OpenAI-compatible API."""

    name: str = ""
    starts_process: bool = True
    """False for an endpoint someone else runs (`openai`): nothing to launch, `server_address` is needed."""
    sampling_extras: bool = False
    """Whether top_k, min_p and repetition_penalty may be sent at their defaults (outside OpenAI's schema)."""
    honours_skip_special_tokens: bool = False
    """Whether `skip_special_tokens: false` in a request keeps special tokens in the answer."""
    serves_lora_adapters: bool = False
    """Whether a LoRA adapter folder is served on its base model (else: merge it first)."""
    keep_stop_string: dict = {}
    """Request fields that keep the matched stop string at the end of the answer (code tags need it)."""

    def check(self, server_gpus: int, server_nodes: int) -> None:
        """Refuse, at submission, a server this type cannot start (raise ServerTypeError)."""
        if server_gpus < 0 or server_nodes < 1:
            raise ServerTypeError(f"need server_gpus >= 0 and server_nodes >= 1, got {server_gpus} and {server_nodes}")

    def python(self, cpu: bool) -> str:
        """The interpreter that runs the server: `ASSAY_<TYPE>_PYTHON` when set, else this one."""
        return os.environ.get(f"ASSAY_{self.name.upper()}_PYTHON") or sys.executable

    def command(self, request: LaunchRequest) -> ServerLaunch:
        """The launch of one node's server process."""
        raise ServerTypeError(f"server_type '{self.name}' starts no server")


SERVER_TYPES: Registry[ServerType] = Registry(
    "server type", __name__, "Add one with a module in assay/inference/servers/ (see its __init__.py)."
)


def health_url(host: str, port: int) -> str:
    """The endpoint every OpenAI-compatible server answers once the model is loaded (and that the stage needs)."""
    return f"http://{url_host(host)}:{port}/v1/models"


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


def get_server_type(name: str) -> ServerType:
    """The server type of that name (an UnknownNameError lists the known ones)."""
    return SERVER_TYPES.get(name)


def has_flag(args: tuple[str, ...] | list[str], flag: str) -> bool:
    """Whether `--flag` or `--flag=value` is among the user's server_args."""
    return any(a == flag or a.startswith(flag + "=") for a in args)


def url_host(host: str) -> str:
    """An IPv6 address in brackets, as URLs and `host:port` pairs need it."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
