"""Start a model server on this node: resolve the model alias, build the launch, and become the server.

    python -m assay.inference.serve --server_type=vllm --model=smollm2 --port=5000 [--server_gpus=8]
        [--server_nodes=2] [--server_args="--async-scheduling"]

The job wrapper starts this as a service and waits for `/v1/models`. The process replaces itself
with the server (exec), so stopping the service's process group stops the server and its workers.
The model is served under the name it was given (`smollm2`, or the path), which is what the stage sends.
A LoRA checkpoint (an adapter folder) is served by vLLM on its base model with the adapter loaded under
that name (inference/lora_adapter.py).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from typing import Mapping, NoReturn, Optional

from .embedded_model import resolve_model
from .lora_adapter import read_adapter, vllm_lora_args
from .servers import SERVER_TYPES, ServerLaunch, get_server_type, server_command


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m assay.inference.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    launchable = [name for name in SERVER_TYPES.names() if SERVER_TYPES.get(name).starts_process]
    parser.add_argument("--server_type", required=True, choices=launchable)
    parser.add_argument("--model", required=True, help="path, hub name, or alias (smollm2)")
    parser.add_argument("--served_model_name", default=None, help="the name requests use (default: --model as given)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--server_gpus", type=int, default=0, help="GPUs per node; 0 runs vLLM's CPU build")
    parser.add_argument("--server_nodes", type=int, default=1)
    parser.add_argument("--server_args", default="", help="passed verbatim to the server (split by shell rules)")
    parser.add_argument("--dry_run", action="store_true", help="print the launch and exit")
    return parser.parse_args(argv)


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


class ServeError(ValueError):
    """A model this node cannot serve as asked; the message says what to do instead."""


def resolve_launch(args: argparse.Namespace, python: Optional[str] = None) -> tuple[ServerLaunch, str]:
    """The launch of this node's server for the parsed `args` (model alias resolved, a LoRA adapter served on its
    base model), and a description for the log. `python`: the interpreter that runs the server (default: the server
    type's own, `ASSAY_<TYPE>_PYTHON` or this one); a container image brings its own (`python3`)."""
    rank, head = 0, None
    if args.server_nodes > 1:
        rank, head = slurm_node_placement()
    name = args.served_model_name or args.model
    model_path, served_name, server_args = resolve_model(args.model), name, args.server_args
    adapter = read_adapter(model_path)
    if adapter is not None:
        if not get_server_type(args.server_type).serves_lora_adapters:
            raise ServeError(
                f"{args.model} is a LoRA adapter; {args.server_type} serves merged models here: merge it "
                "first (assay merge_lora), or use server_type=vllm"
            )
        model_path = resolve_model(adapter.base_model)
        if not os.path.isdir(model_path) and os.path.isabs(model_path):
            raise ServeError(
                f"the base model of the LoRA adapter {args.model}, {model_path} (its adapter_config.json), is not "
                "on this node; merge the adapter with `assay merge_lora --base_model=...` and serve the merged folder"
            )
        served_name = f"{name}:base"
        server_args = shlex.join(vllm_lora_args(adapter, name, served_name)) + (
            " " + server_args if server_args else ""
        )
    launch = server_command(
        args.server_type,
        model_path,
        port=args.port,
        host=args.host,
        served_model_name=served_name,
        server_gpus=args.server_gpus,
        server_nodes=args.server_nodes,
        node_rank=rank,
        master_addr=head,
        server_args=server_args,
        python=python,
    )
    what = f"LoRA adapter {args.model} on {model_path}" if adapter is not None else f"{args.model} ({model_path})"
    return launch, what


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        launch, what = resolve_launch(args)
    except ValueError as exc:  # ServeError, a malformed adapter config, a server type's refusal
        fail(str(exc))
    print(f"[assay] serving {what}: {launch.shell_line()}", flush=True)
    if args.dry_run:
        return
    executable = launch.argv[0] if os.path.sep in launch.argv[0] else shutil.which(launch.argv[0])
    if not executable:
        fail(f"{launch.argv[0]} not found")
    os.execve(executable, launch.argv, launch.environ())


def slurm_node_placement(environ: Optional[Mapping[str, str]] = None) -> tuple[int, str]:
    """(node_rank, head node hostname) of this Slurm task: SLURM_NODEID, first host of the job's node list."""
    env = os.environ if environ is None else environ
    rank = int(env["SLURM_NODEID"])
    hosts = subprocess.run(
        ["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]], capture_output=True, text=True, check=True
    ).stdout.split()
    return rank, hosts[0]


if __name__ == "__main__":
    main()
