"""`start_server`: a long-lived job that serves a model (and a sandbox, if asked) for others to use.

The job starts the server on every interface of its node, waits until it is healthy, and then its command
(`python -m assay.pipeline.start_server`) prints how to reach it and holds the job until it is stopped. The
launcher waits for that line, prints it, and with `chat=True` opens a small chat with the model in the
terminal to try it.

On a local cluster the job lives as long as the launcher: it serves until Ctrl-C, or until the chat ends.
On Slurm the launcher returns once the server is up (or at once with `wait=False`); the job runs until its
time limit or `scancel`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from ..core.config import ConfigError
from .cluster import load_cluster_config, node_python
from .executors import get_executor
from .experiment import Experiment, submit
from .job import FINAL_STATES, Job, JobHandle
from .job_options import JOB_DEFAULTS, JobOptions, takes_job_options
from .server_options import (
    SANDBOX_URL_ENV,
    SERVER_DEFAULTS,
    SERVER_MODEL_ENV,
    SERVER_URL_ENV,
    ServerOptions,
    ServerSetup,
    takes_server_options,
)

TOKEN_FILE_ENV = "ASSAY_SANDBOX_TOKEN_FILE"
"""Where the job writes the sandbox's token for its user (a file in the job's log folder, mode 0600)."""
READY = "[assay] server ready:"
"""The first word of the line the job prints once the server is healthy (the launcher watches for it)."""
ALL_INTERFACES = "0.0.0.0"


@takes_job_options(expname="server", without=("dependent_jobs", "run_after", "dependency_type"))
@takes_server_options(("num_jobs",))
def start_server(
    model: str,
    output_dir: str = "./assay_output",
    chat: bool = False,
    server: ServerOptions = SERVER_DEFAULTS,
    options: JobOptions = JOB_DEFAULTS,
) -> Experiment:
    """Serve a model as a long-lived job and print how to reach it; `chat` tries it in the terminal.

    Args:
        model: The model to serve: a path, a Hub name, or the alias smollm2 (the embedded default).
        output_dir: Logs go to `<output_dir>/logs/<expname>/`.
        chat: Once the server is up, chat with the model here (an empty line or Ctrl-D ends the chat).
    """
    setup = ServerSetup.of(model, server)
    setup.check()
    if not setup.started:
        raise ConfigError("start_server starts a server: leave out --server_address")
    cluster_cfg = load_cluster_config(options.cluster)
    python = node_python(cluster_cfg)
    job = Job(
        name=options.expname,
        command=[python, "-m", "assay.pipeline.start_server"],
        output_dir=Path(output_dir).absolute(),
        time=options.time,
        follow_up_copies=False,
    )
    setup.attach(job, python, host=ALL_INTERFACES)
    job.env.update(setup.command_env())
    if setup.with_sandbox:
        job.env[TOKEN_FILE_ENV] = str(job.log_dir / "sandbox_token")
    experiment = submit(cluster_cfg, options, [job])
    if options.dry_run or options.wait is False:
        return experiment
    [handle] = experiment.final
    print(f"[assay] waiting for the server (log {handle.stdout_path})", flush=True)
    ready = wait_until_ready(handle)
    print(ready, flush=True)
    local = get_executor(cluster_cfg.executor).stops_with_launcher
    if chat:
        chat_loop(ready.split(READY, 1)[1].split()[0], model)  # the URL, the first word after READY
        if local:
            handle.cancel()
            print(f"[assay] {options.expname}: chat ended, server stopped", flush=True)
            return experiment
    if local:
        print("[assay] serving until Ctrl-C", flush=True)
        try:
            handle.wait()
        except KeyboardInterrupt:
            handle.cancel()
            raise
    else:
        print(f"[assay] stop it with: scancel {handle.job_id}", flush=True)
    return experiment


def wait_until_ready(handle: JobHandle, poll_s: float = 1.0) -> str:
    """The job's ready line and the lines under it (how to use the server), once printed; the job's failure (with
    its log tail) if it ends first."""
    while True:
        try:
            lines = handle.stdout_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            lines = []
        for number, line in enumerate(lines):
            if line.startswith(READY):
                block = [line]
                for below in lines[number + 1 :]:
                    if not below.startswith("  "):
                        break
                    block.append(below)
                return "\n".join(block)
        if handle.state() in FINAL_STATES:
            handle.wait()  # raises JobFailedError with the log tail
            raise RuntimeError(f"{handle.describe()} ended without starting the server")
        time.sleep(poll_s)


def chat_loop(
    base_url: str,
    model: str,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    max_tokens: int = 512,
) -> int:
    """A terminal chat with an OpenAI-compatible server; returns how many replies it got. Ends on an empty line
    or end of input; a failed request is printed and the chat goes on."""
    history: list[dict] = []
    replies = 0
    while True:
        try:
            text = read("you> ").strip()
        except EOFError:
            text = ""
        if not text:
            return replies
        history.append({"role": "user", "content": text})
        body = json.dumps({"model": model, "messages": history, "max_tokens": max_tokens}).encode()
        request = urllib.request.Request(
            f"{base_url.rstrip('/')}/chat/completions", body, {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                answer = json.load(response)["choices"][0]["message"]["content"] or ""
        except (OSError, ValueError, KeyError, IndexError) as exc:
            write(f"[assay] the request failed: {exc}")
            history.pop()
            continue
        history.append({"role": "assistant", "content": answer})
        replies += 1
        write(f"{model}> {answer}")


def announce(environ: Optional[dict] = None) -> str:
    """The ready line and how to use the server, from the job's environment (run on the node)."""
    env = os.environ if environ is None else environ
    host = socket.getfqdn()
    url = env[SERVER_URL_ENV].replace("127.0.0.1", host, 1)
    model = env[SERVER_MODEL_ENV]
    lines = [
        f"{READY} {url} serving {model}",
        f"  try it:   curl {url}/models",
        f"  chat:     python -c \"from assay.pipeline.start_server import chat_loop; chat_loop('{url}', '{model}')\"",
        f"  generate: assay generate --server_type=openai --server_address={url} --model={model} ...",
    ]
    if env.get(SANDBOX_URL_ENV):
        where = "in ASSAY_SANDBOX_TOKEN of the job"
        if env.get(TOKEN_FILE_ENV) and env.get("ASSAY_SANDBOX_TOKEN"):
            where = f"in {write_token(env[TOKEN_FILE_ENV], env['ASSAY_SANDBOX_TOKEN'])}, readable by you only"
        lines.append(f"  sandbox:  {env[SANDBOX_URL_ENV].replace('127.0.0.1', host, 1)} (its token is {where})")
    return "\n".join(lines)


def write_token(path: str, token: str) -> str:
    """The sandbox's token in a file only its owner can read (never in a log); returns the path."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as f:
        f.write(token + "\n")
    return path


def main() -> int:
    """The job's command: say how to reach the server, then hold the job (the services stop with it)."""
    print(announce(), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    raise SystemExit(main())
