"""The model server a pipeline call's jobs use, and the sandbox beside them: declared and documented once, here.

`eval`, `generate`, `run_cmd` and `start_server` take `server: ServerOptions`; `takes_server_options` gives it to
them as flat keyword arguments (and so as `--server_type`, `--server_gpus`, ... on the command line):

    eval(benchmarks="aime24:4", model="smollm2", output_dir="/tmp/e", server_gpus=8, with_sandbox=True)

`ServerSetup` is the same options with the model they serve: it checks them before anything is submitted and
puts them into a job (`attach`): the services it starts, the GPUs and nodes it asks for, and what its command is
told (stage overrides, environment).

Both services run through assay's own entry points (`python -m assay.inference.serve`, `python -m
assay.sandbox.server`), so the node resolves model aliases and server quirks itself, and the job's command line
stays short and readable in a dry run. Their ports are picked on the node when the job starts; a command finds
them through `{server_port}`/`{sandbox_port}` placeholders (`loopback_url`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional, TypeVar

from ..core.config import ConfigError
from ..core.suggest import UnknownNameError
from ..inference.servers import ServerTypeError, get_server_type
from .job import Job
from .job_options import takes_options
from .services import ServiceSpec

F = TypeVar("F", bound=Callable)

SERVER_URL_ENV = "ASSAY_SERVER_URL"
"""How a command started with a server (run_cmd) finds its OpenAI-compatible base URL."""
SERVER_MODEL_ENV = "ASSAY_SERVER_MODEL"
"""The name the server serves the model under (what requests put in `model`)."""
SANDBOX_URL_ENV = "ASSAY_SANDBOX_URL"
"""How the stage finds the sandbox started beside it (read by assay.sandbox.client.configured_url)."""
SERVER_STARTUP_TIMEOUT_S = 3600.0  # large models on slow file systems take long; a dead server still fails at once
LOOPBACK = "127.0.0.1"


def loopback_url(port_placeholder: str, path: str = "") -> str:
    """The URL of a service on the node's loopback, with its port left as `{placeholder}` for the job runner
    (which picks a free port when the job starts): `loopback_url("sandbox_port")`."""
    return f"http://{LOOPBACK}:{{{port_placeholder}}}{path}"


def sandbox_service(python: str, host: str = LOOPBACK, image: Optional[str] = None) -> ServiceSpec:
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
        component="sandbox",
        image=image,
    )


def add_sandbox(job: Job, python: str, host: str = LOOPBACK, image: Optional[str] = None) -> None:
    """Start the sandbox beside `job`'s command, which finds it in $ASSAY_SANDBOX_URL (and its token); on Slurm
    as a step of its own, in `image` (else the cluster config's `sandbox` image, else on the host)."""
    job.services.append(sandbox_service(python, host, image))
    job.env[SANDBOX_URL_ENV] = loopback_url("sandbox_port")


@dataclass(frozen=True)
class ServerOptions:
    """The model server of a pipeline call's jobs, and whether a sandbox runs beside them."""

    server_type: str = "vllm"
    """vllm, sglang, trtllm (a server is started in each job, unless server_address is given) or openai (an existing endpoint: server_address)."""
    server_address: Optional[str] = None
    """Base URL of a running OpenAI-compatible server (e.g. http://host:5000/v1); no server is started."""
    server_gpus: int = 0
    """GPUs per node for the server (0: vLLM's CPU build)."""
    server_nodes: int = 1
    """Nodes for the server."""
    server_args: str = ""
    """Extra arguments passed verbatim to the server (e.g. "--async-scheduling")."""
    server_port: Optional[int] = None
    """Port of the started server; a free one when unset."""
    with_sandbox: bool = False
    """Start the code-execution sandbox beside each job's command (its URL in ASSAY_SANDBOX_URL); code benchmarks' grading jobs always get one."""
    server_container: Optional[str] = None
    """Slurm: the image the server's step runs in, for this call (default: the cluster config's image for the server type; none: on the host). The server's own command runs in it: no assay needed there."""
    sandbox_container: Optional[str] = None
    """Slurm: the image the sandbox's step runs in, for this call (default: the cluster config's `sandbox` image); it must have assay installed."""
    num_jobs: Optional[int] = None
    """Copies of the server, each a job running its share of the work (seeds x chunks, across all benchmarks) at once; default 1 (with num_chunks on Slurm: one per chunk). With more jobs than seeds and no num_chunks, the input is chunked so every job has work."""


SERVER_DEFAULTS = ServerOptions()
"""The default of a decorated function's `server` parameter."""


def takes_server_options(without: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Give a function that takes `server: ServerOptions` the options (but `without`) as flat keyword arguments."""
    return takes_options(ServerOptions, "server", without=without)


@dataclass(frozen=True)
class JudgeOptions:
    """The LLM judge of judge-graded benchmarks (eval): a server started in each grading job, or an endpoint."""

    judge_model: Optional[str] = None
    """The judge model (omni-math, or any benchmark with ++grader=judge): served in each grading job, unless judge_server_address is given."""
    judge_server_type: str = "vllm"
    """vllm, sglang, ... (a judge server started in the grading job) or openai (an endpoint: judge_server_address)."""
    judge_server_address: Optional[str] = None
    """Base URL of a running OpenAI-compatible judge; no judge server is started."""
    judge_server_gpus: int = 0
    """GPUs per node for the judge server started in the grading job."""
    judge_server_args: str = ""
    """Extra arguments passed verbatim to the judge server."""

    def setup(self) -> ServerSetup:
        return ServerSetup(
            server_type=self.judge_server_type,
            server_address=self.judge_server_address,
            server_gpus=self.judge_server_gpus,
            server_args=self.judge_server_args,
            model=self.judge_model,
        )


JUDGE_DEFAULTS = JudgeOptions()


def takes_judge_options(fn: F) -> F:
    """Give a function that takes `judge: JudgeOptions` the options as flat keyword arguments."""
    return takes_options(JudgeOptions, "judge")(fn)


@dataclass(frozen=True)
class ServerSetup(ServerOptions):
    """The server options with the model they serve: a server started in the job, or an existing endpoint."""

    model: Optional[str] = None

    @classmethod
    def of(cls, model: Optional[str], options: ServerOptions) -> ServerSetup:
        return cls(**dataclasses.asdict(options), model=model)

    def check(self) -> None:
        try:
            kind = get_server_type(self.server_type)
        except UnknownNameError as exc:
            raise ConfigError(f"server_type: {exc}") from None
        if not kind.starts_process and not self.server_address:
            raise ConfigError(f"server_type={self.server_type} needs --server_address (the endpoint's base URL)")
        if not self.server_address:
            try:
                kind.check(self.server_gpus, self.server_nodes)
            except ServerTypeError as exc:
                raise ConfigError(str(exc)) from None
        if not self.model:
            raise ConfigError("--model is required (a path, a served model name, or the alias smollm2)")

    @property
    def started(self) -> bool:
        """Whether the job starts the server (else it uses server_address)."""
        return not self.server_address

    def service(self, python: str, host: str = LOOPBACK) -> ServiceSpec:
        """The model server, serving `model` under the same name, healthy when /v1/models answers; bound to the
        node's loopback unless `host` says otherwise (start_server binds every interface)."""
        command = [
            python,
            "-m",
            "assay.inference.serve",
            f"--server_type={self.server_type}",
            f"--model={self.model}",
            f"--served_model_name={self.model}",  # the model's path may change in a container; its name does not
            "--port={port}",
            f"--server_gpus={self.server_gpus}",
            f"--server_nodes={self.server_nodes}",
        ]
        if host != LOOPBACK:
            command.append(f"--host={host}")
        if self.server_args:
            command.append(f"--server_args={self.server_args}")
        return ServiceSpec(
            name="server",
            command=command,
            health_url=loopback_url("port", "/v1/models"),
            port=self.server_port,
            startup_timeout_s=SERVER_STARTUP_TIMEOUT_S,
            all_nodes=self.server_nodes > 1,
            component=self.server_type,
            image=self.server_container,
        )

    def attach(self, job: Job, python: str, host: str = LOOPBACK) -> list[str]:
        """Start the server (unless server_address, or no model is set) and the sandbox (with_sandbox) in `job`:
        they join its services, its GPU and node request grows to hold the server, and its env points at the
        sandbox. Returns the stage overrides that point a generation stage at the server. The services bind the
        node's loopback unless `host` says otherwise."""
        overrides = [f"++server.server_type={self.server_type}"]
        if self.server_address:
            overrides += [f"++server.base_url={self.server_address}", f"++server.model={self.model}"]
        elif self.model:
            job.services.append(self.service(python, host))
            job.gpus_per_node = max(job.gpus_per_node, self.server_gpus)
            job.nodes = max(job.nodes, self.server_nodes)
            overrides += [f"++server.host={LOOPBACK}", "++server.port={server_port}", f"++server.model={self.model}"]
        if self.with_sandbox:
            add_sandbox(job, python, host, self.sandbox_container)
        return overrides

    def command_env(self) -> dict[str, str]:
        """Where any command (run_cmd, start_server) finds the server: its base URL and the served model name."""
        url = self.server_address or loopback_url("server_port", "/v1")
        return {SERVER_URL_ENV: url, SERVER_MODEL_ENV: str(self.model)}
