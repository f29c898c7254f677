"""`generate`: run the generation stage over a JSONL, with its own model server, seeds, chunks and copies.

Every `++key=value` in `ctx` is checked against the stage's config before anything is submitted.
One generation task is one (seed, chunk) pair; each task is a job with its own server, unless
`num_jobs` groups the tasks into that many jobs (one server each, tasks run in turn). Chunked
outputs get a merge job per seed that waits for all of that seed's chunks.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..core.config import ConfigError
from ..core.suggest import UnknownNameError
from ..inference.config import GenerateConfig
from ..inference.servers import ServerTypeError, get_server_type
from .cluster import ClusterConfig, load_cluster_config
from .executors import get_executor
from .experiment import Experiment, submit, wait_for
from .job import Dependency, Job
from .job_options import JOB_DEFAULTS, JobOptions, takes_job_options
from .server_spec import sandbox_env, sandbox_service, server_service
from .wrap import extra_args

PIPELINE_KEYS = ("input_file", "output_file", "chunk_id", "num_chunks")
"""Stage keys the pipeline sets itself; the user sets them through the function's own parameters."""


@dataclass
class GenerationTask:
    seed: Optional[int]
    chunk: Optional[int]
    output_file: Path


def node_python(cluster: ClusterConfig) -> str:
    """The interpreter that runs stages on the node: the launcher's, unless a container brings its own."""
    return "python" if cluster.containers.get("assay") else sys.executable


def output_name(seed: Optional[int]) -> str:
    return "output.jsonl" if seed is None else f"output-rs{seed}.jsonl"


def plan_tasks(output_dir: Path, seeds: list[Optional[int]], num_chunks: Optional[int]) -> list[GenerationTask]:
    from ..inference.merge_chunks import chunk_file

    tasks: list[GenerationTask] = []
    for seed in seeds:
        whole = output_dir / output_name(seed)
        if num_chunks:
            tasks.extend(GenerationTask(seed, c, chunk_file(whole, c)) for c in range(num_chunks))
        else:
            tasks.append(GenerationTask(seed, None, whole))
    return tasks


def check_overrides(overrides: list[str], with_sandbox: bool = True) -> GenerateConfig:
    """Fail now, on the user's machine, for any key or value the stage would reject on the node; return the
    stage's config (with placeholders for what the pipeline fills in)."""
    from ..core.config import compose_stage_config

    for text in overrides:
        key = text.lstrip("+~").split("=", 1)[0]
        if key in PIPELINE_KEYS:
            raise ConfigError(f"'{text}': {key} is set by the pipeline; use the --{key} option of generate instead")
    # one composition checks every key and value and the config's own cross-field checks, with placeholders for
    # the fields the pipeline fills in
    placeholders = ["++input_file=-", "++output_file=-", "++server.model=-"]
    cfg = compose_stage_config(GenerateConfig, placeholders + list(overrides))
    if cfg.code_execution and not with_sandbox and not cfg.sandbox_url:
        raise ConfigError(
            "++code_execution=true runs the model's code in a sandbox: pass --with_sandbox "
            "(or ++sandbox_url=<a running sandbox>)"
        )
    return cfg


def warn_greedy_seeds(cfg: GenerateConfig, num_seeds: int, what: str) -> None:
    """Several seeds of greedy decoding are (nearly) the same sample N times: say so before anything runs."""
    if num_seeds > 1 and cfg.inference.temperature == 0:
        print(
            f"[assay] warning: {what}: {num_seeds} seeds with inference.temperature=0 (greedy, the default) give "
            "(nearly) the same sample each time, so majority@k and pass@k add nothing to pass@1; sample with "
            "++inference.temperature=<t>, e.g. 0.7",
            file=sys.stderr,
            flush=True,
        )


@takes_job_options(expname="generate")
def generate(
    input_file: str,
    output_dir: str,
    model: Optional[str] = None,
    server_type: str = "vllm",
    server_address: Optional[str] = None,
    server_gpus: int = 0,
    server_nodes: int = 1,
    server_args: str = "",
    server_port: Optional[int] = None,
    num_random_seeds: Optional[int] = None,
    starting_seed: int = 0,
    num_chunks: Optional[int] = None,
    num_jobs: Optional[int] = None,
    with_sandbox: bool = False,
    postprocess_cmd: Optional[str] = None,
    ctx=None,
    options: JobOptions = JOB_DEFAULTS,
) -> Experiment:
    """Generate an answer for every line of a JSONL with a model, on a cluster.

    Args:
        input_file: JSONL to generate for (one sample per line).
        output_dir: Outputs go to `<output_dir>/output.jsonl` (or `output-rs<seed>.jsonl` per seed); logs to `<output_dir>/logs/`.
        model: Model path, name, or alias (`smollm2`, the embedded default).
        server_type: vllm, sglang (a server is started in each job, unless server_address is given) or openai (an existing endpoint, see server_address).
        server_address: Base URL of a running OpenAI-compatible server (e.g. http://host:5000/v1); no server is started.
        server_gpus: GPUs per node for the server.
        server_nodes: Nodes for the server.
        server_args: Extra arguments passed verbatim to the server (e.g. "--async-scheduling").
        server_port: Port of the started server; a free one when unset.
        num_random_seeds: Generate this many samples per line, one file per seed (output-rs<seed>.jsonl).
        starting_seed: The first seed when num_random_seeds is set.
        num_chunks: Split the input into this many chunks, each its own job, merged at the end.
        num_jobs: Run the tasks (seeds x chunks) in this many jobs, one server each; default one job per task (on a local cluster: one job, so one server). With more jobs than seeds and no num_chunks, the input is chunked so every job has work.
        with_sandbox: Start the code-execution sandbox beside each job (its URL in ASSAY_SANDBOX_URL).
        postprocess_cmd: Shell command run in the job once an output file is complete; `{output_file}` is replaced by its path (e.g. "python -m assay.inference.filter_output ++input_file={output_file} ++output_file={output_file} ++keep_if_matches=boxed").
        ctx: `++key=value` overrides for the generation stage (wrap_arguments in Python).
    """
    overrides = extra_args(ctx)
    stage_cfg = check_overrides(overrides, with_sandbox)
    warn_greedy_seeds(stage_cfg, num_random_seeds or 1, f"generate {input_file}")
    server = ServerSetup(
        server_type, model, server_address, server_gpus, server_nodes, server_args, server_port, with_sandbox
    )
    server.check()
    if not Path(input_file).exists() and not options.dry_run:
        raise ConfigError(f"input_file {input_file} does not exist")
    cluster_cfg = load_cluster_config(options.cluster)
    out_dir = Path(output_dir).absolute()
    seeds: list[Optional[int]] = (
        [None] if num_random_seeds is None else list(range(starting_seed, starting_seed + num_random_seeds))
    )
    jobs, _ = generation_jobs(
        options.expname,
        Path(input_file).absolute(),
        out_dir,
        cluster_cfg,
        server,
        overrides,
        seeds,
        num_chunks,
        num_jobs,
        postprocess_cmd,
        options.time,
    )
    experiment = submit(cluster_cfg, options, jobs)
    if wait_for([experiment], cluster_cfg, options.wait, options.dry_run):
        for seed in seeds:
            print(f"{options.expname}: wrote {out_dir / output_name(seed)}", flush=True)
    return experiment


@dataclass
class ServerSetup:
    """The model server of a generation: started in each job, or an existing endpoint."""

    server_type: str
    model: Optional[str]
    server_address: Optional[str] = None
    server_gpus: int = 0
    server_nodes: int = 1
    server_args: str = ""
    server_port: Optional[int] = None
    with_sandbox: bool = False

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

    def for_job(self, python: str) -> tuple[list, list[str], dict[str, str]]:
        """(services to start, stage overrides that point at them, env of the stage)."""
        services, overrides, env = [], [f"++server.server_type={self.server_type}"], {}
        if self.server_address:
            overrides += [f"++server.base_url={self.server_address}", f"++server.model={self.model}"]
        else:
            services.append(
                server_service(
                    self.server_type,
                    str(self.model),  # check() made sure there is one
                    python,
                    self.server_gpus,
                    self.server_nodes,
                    self.server_args,
                    self.server_port,
                )
            )
            overrides += ["++server.host=127.0.0.1", "++server.port={server_port}", f"++server.model={self.model}"]
        if self.with_sandbox:
            services.append(sandbox_service(python))
            env.update(sandbox_env())
        return services, overrides, env


def generation_jobs(
    name: str,
    input_file: Path,
    out_dir: Path,
    cluster_cfg: ClusterConfig,
    server: ServerSetup,
    overrides: list[str],
    seeds: list[Optional[int]],
    num_chunks: Optional[int] = None,
    num_jobs: Optional[int] = None,
    postprocess_cmd: Optional[str] = None,
    time: Optional[str] = None,
    log_root: Optional[Path] = None,
) -> tuple[list[Job], list[Job]]:
    """The jobs of one generation, and those after which every output file is whole (for later stages).

    Outputs go to `out_dir`; logs to `<log_root>/logs/<name>/` (log_root defaults to out_dir).
    """
    log_root = log_root or out_dir
    if num_chunks is not None and num_chunks < 1 or num_jobs is not None and num_jobs < 1:
        raise ConfigError("num_chunks and num_jobs must be at least 1")
    if num_jobs is None and get_executor(cluster_cfg.executor).shares_one_machine and not server.server_address:
        num_jobs = 1  # one machine: one model server, running the tasks in turn, not one server per task
    if num_jobs and not num_chunks and num_jobs > len(seeds):
        num_chunks = -(-num_jobs // len(seeds))  # more servers than seeds: split the input so each has work
    tasks = plan_tasks(out_dir, seeds, num_chunks)
    python = node_python(cluster_cfg)
    services, server_overrides, env = server.for_job(python)

    def task_argv(task: GenerationTask) -> list[str]:
        argv = [
            python,
            "-m",
            "assay.inference.generate",
            f"++input_file={input_file}",
            f"++output_file={task.output_file}",
            *server_overrides,
            *overrides,
        ]
        if task.seed is not None:
            argv.append(f"++inference.random_seed={task.seed}")
        if task.chunk is not None:
            argv += [f"++chunk_id={task.chunk}", f"++num_chunks={num_chunks}"]
        return argv

    def postprocess(path: Path) -> list[list[str]]:
        if not postprocess_cmd:
            return []
        return [["bash", "-c", postprocess_cmd.replace("{output_file}", shlex.quote(str(path)))]]

    jobs: list[Job] = []
    jobs_of_seed: dict[Optional[int], list[Job]] = {}
    for group in _group(tasks, num_jobs):
        argvs = []
        for task in group:
            argvs.append(task_argv(task))
            if task.chunk is None:
                argvs += postprocess(task.output_file)
        job = Job(
            name=name,
            command=argvs[0],
            next_commands=argvs[1:],
            output_dir=log_root,
            nodes=server.server_nodes,
            gpus_per_node=server.server_gpus,
            time=time,
            env=dict(env),
            services=list(services),
            container="assay",
        )
        jobs.append(job)
        for task in group:
            jobs_of_seed.setdefault(task.seed, [])
            if job not in jobs_of_seed[task.seed]:
                jobs_of_seed[task.seed].append(job)
    if not num_chunks:
        return jobs, list(jobs)
    merges = []
    for seed in seeds:
        merge = [
            python,
            "-m",
            "assay.inference.merge_chunks",
            f"++input_file={input_file}",
            f"++output_file={out_dir / output_name(seed)}",
            f"++num_chunks={num_chunks}",
        ]
        merge += [o for o in overrides if o.lstrip("+").startswith("num_samples=")]
        merges.append(
            Job(
                name=name,
                command=merge,
                next_commands=postprocess(out_dir / output_name(seed)),
                output_dir=log_root,
                time=time,
                follow_up_copies=False,
                dependencies=[Dependency(j) for j in jobs_of_seed[seed]],
            )
        )
    return jobs + merges, merges


def _group(tasks: list[GenerationTask], num_jobs: Optional[int]) -> list[list[GenerationTask]]:
    if not num_jobs:
        return [[t] for t in tasks]
    num_jobs = min(num_jobs, len(tasks))
    return [tasks[i::num_jobs] for i in range(num_jobs)]
