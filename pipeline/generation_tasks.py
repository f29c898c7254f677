"""The generation tasks of one `generate` or `eval` call, and the jobs that run them.

A task is one output file: (input, seed, chunk), with the stage overrides of its own (a benchmark's
prompt config and token budget). All the tasks of a call are spread over `num_jobs` jobs, each with
one model server; inside a job they all run in one stage process under one in-flight limit
(`python -m assay.inference.generate ... --task ... --task ...`), so the server stays busy whatever
the mix of benchmarks, seeds and chunks. Chunked outputs get a merge job per whole file, after the
jobs that hold its chunks.

Work already done is not submitted again: a whole file (or a chunk) whose record says the same work
produced it is skipped, and the launcher says what it skipped; one from other work is an error naming
what changed, before anything is submitted (`++overwrite=true` starts over).

The stage's overrides are checked here too, before any job exists (`check_overrides`), and several seeds get
sampling settings when the user gave none (`seed_sampling`).
"""

from __future__ import annotations

import copy
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..core.config import ConfigError
from ..inference.config import GenerateConfig
from .cluster import ClusterConfig
from .executors import get_executor
from .job import Dependency, Job
from .server_options import ServerSetup
from .wrap import override_key, refuse_pipeline_keys

PIPELINE_KEYS = ("input_file", "output_file", "chunk_id", "num_chunks")
"""Stage keys the pipeline sets itself; the user sets them through the function's own parameters."""


def check_overrides(overrides: list[str], with_sandbox: bool = True) -> GenerateConfig:
    """Fail now, on the user's machine, for any key or value the stage would reject on the node; return the
    stage's config (with placeholders for what the pipeline fills in)."""
    from ..core.config import compose_stage_config

    refuse_pipeline_keys(overrides, {key: key for key in PIPELINE_KEYS}, "generate")
    # one composition checks every key and value and the config's own cross-field checks, with placeholders for
    # the fields the pipeline fills in
    placeholders = ["++input_file=-", "++output_file=-", "++server.model=-"]
    cfg = compose_stage_config(GenerateConfig, placeholders + list(overrides))
    from ..inference.prompt import load_prompt_config

    if any(override_key(o) == "prompt_config" for o in overrides):
        load_prompt_config(cfg.prompt_config)  # a prompt config that does not exist fails here, not on the node
    if cfg.code_execution and not with_sandbox and not cfg.sandbox_url:
        raise ConfigError(
            "++code_execution=true runs the model's code in a sandbox: pass --with_sandbox "
            "(or ++sandbox_url=<a running sandbox>)"
        )
    return cfg


SEED_SAMPLING = ("++inference.temperature=0.7", "++inference.top_p=0.95")
"""What several seeds sample with when the user sets no temperature (NeMo-Skills' defaults)."""


def seed_sampling(overrides: list[str], stage_cfg: GenerateConfig, num_seeds: int, what: str) -> list[str]:
    """Overrides to add so that several seeds sample: NeMo-Skills' defaults when no temperature is given
    (printed before anything runs); a warning when the user asked for greedy decoding explicitly.
    `stage_cfg` is the config `overrides` compose to (check_overrides)."""
    if num_seeds <= 1:
        return []
    given = {override_key(o) for o in overrides}
    if "inference.temperature" not in given:
        added = [o for o in SEED_SAMPLING if override_key(o) not in given]
        print(f"[assay] {what}: {num_seeds} seeds sample with {' '.join(added)} (no temperature given)", flush=True)
        return added
    if stage_cfg.inference.temperature == 0:
        print(
            f"[assay] warning: {what}: {num_seeds} seeds with inference.temperature=0 (greedy) give (nearly) the "
            "same sample each time, so majority@k and pass@k add nothing to pass@1",
            file=sys.stderr,
            flush=True,
        )
    return []


def default_num_jobs(num_jobs: Optional[int], num_chunks: Optional[int], cluster_cfg: ClusterConfig) -> int:
    """One server for all the work, unless the input is chunked to spread it over several machines."""
    if num_jobs is not None:
        if num_jobs < 1:
            raise ConfigError(f"num_jobs={num_jobs} must be at least 1")
        return num_jobs
    if num_chunks and not get_executor(cluster_cfg.executor).shares_one_machine:
        return num_chunks
    return 1


@dataclass
class GenerationTask:
    input_file: Path
    output_file: Path
    """What the stage writes: the whole file, or one chunk of it."""
    whole_file: Path
    seed: Optional[int]
    chunk: Optional[int]
    num_chunks: Optional[int]
    overrides: list[str] = field(default_factory=list)
    """Stage overrides of this task alone (input, output, seed, chunk, a benchmark's defaults)."""


def output_name(seed: Optional[int]) -> str:
    return "output.jsonl" if seed is None else f"output-rs{seed}.jsonl"


def defaults_not_overridden(defaults: list[str], overrides: list[str]) -> list[str]:
    """A benchmark's default overrides, less those the user set: the user's value wins."""
    from ..core.config import apply_key_alias

    given = {override_key(apply_key_alias(GenerateConfig, o)) for o in overrides}
    return [d for d in defaults if override_key(d) not in given]


def plan_tasks(
    input_file: Path,
    out_dir: Path,
    seeds: list[Optional[int]],
    num_chunks: Optional[int],
    task_defaults: Optional[list[str]] = None,
) -> list[GenerationTask]:
    from ..inference.merge_chunks import chunk_file

    tasks: list[GenerationTask] = []
    for seed in seeds:
        whole = out_dir / output_name(seed)
        for chunk in range(num_chunks) if num_chunks else [None]:
            output = whole if chunk is None else chunk_file(whole, chunk)
            argv = [*(task_defaults or []), f"++input_file={input_file}", f"++output_file={output}"]
            if seed is not None:
                argv.append(f"++inference.random_seed={seed}")
            if chunk is not None:
                argv += [f"++chunk_id={chunk}", f"++num_chunks={num_chunks}"]
            tasks.append(GenerationTask(input_file, output, whole, seed, chunk, num_chunks, argv))
    return tasks


@dataclass
class Progress:
    """What is left of a call's generation: the tasks to run, and the whole files complete already."""

    left: list[GenerationTask]
    complete: set[Path]


def skip_done(tasks: list[GenerationTask], base_overrides: list[str]) -> Progress:
    """The tasks still to run; prints what was skipped. Raises ConfigError when an output is of other work.

    `base_overrides` compose the stage config every task starts from (the user's overrides, the server's
    model and type); each task's own overrides go on top.
    """
    from ..inference.output_record import InputDigest, OutputRecord, digest_input, other_work_message, read_record

    digests: dict[Path, InputDigest] = {}
    configs: dict[tuple[str, ...], GenerateConfig] = {}
    left: list[GenerationTask] = []
    skipped: list[GenerationTask] = []
    complete: set[Path] = set()
    for task in tasks:
        if not task.input_file.exists():
            left.append(task)  # a dry run before the data exists; the stage checks it on the node
            continue
        if task.input_file not in digests:
            digests[task.input_file] = digest_input(task.input_file)
        cfg = task_config(task, base_overrides, configs)
        expected = OutputRecord.of(cfg, digests[task.input_file])
        done = False
        for path, want in ((task.whole_file, expected.whole()), (task.output_file, expected)):
            if not path.exists():
                continue
            found = read_record(path)
            changed = want.differences(found) if found is not None else []
            if changed and not cfg.overwrite:
                raise ConfigError(
                    other_work_message(
                        f"{path} exists", changed, "pass ++overwrite=true to start over, or another output_dir"
                    )
                )
            if not changed and cfg.skip_filled:
                done = True
                if path == task.whole_file:
                    complete.add(path)
                break
        (skipped if done else left).append(task)
    if skipped:
        print(f"[assay] skipped {len(skipped)} generation task(s) done already with the same work:", flush=True)
        for task in skipped:
            print(f"  {task.whole_file if task.whole_file in complete else task.output_file}", flush=True)
    return Progress(left, complete)


def task_config(
    task: GenerationTask, base_overrides: list[str], cache: dict[tuple[str, ...], GenerateConfig]
) -> GenerateConfig:
    """The stage config the task's job will compose (what its record depends on): composed once per distinct
    set of a task's own defaults, then given the task's input, output, seed and chunk."""
    from ..core.config import compose_stage_config

    placed = ("input_file", "output_file", "chunk_id", "num_chunks", "inference.random_seed")
    own = tuple(o for o in task.overrides if override_key(o) not in placed)
    if own not in cache:
        cache[own] = compose_stage_config(GenerateConfig, ["++input_file=-", "++output_file=-", *own, *base_overrides])
    cfg = copy.deepcopy(cache[own])
    cfg.input_file, cfg.output_file = str(task.input_file), str(task.output_file)
    cfg.chunk_id, cfg.num_chunks = task.chunk, task.num_chunks
    if task.seed is not None:
        cfg.inference.random_seed = task.seed
    return cfg


def group_tasks(tasks: list[GenerationTask], num_jobs: int) -> list[list[GenerationTask]]:
    """Round-robin into `num_jobs` groups, so each server gets a share of every benchmark and seed."""
    num_jobs = max(1, min(num_jobs, len(tasks)))
    return [tasks[i::num_jobs] for i in range(num_jobs)]


@dataclass
class GenerationPlan:
    jobs: list[Job]
    producers: dict[Path, list[Job]]
    """For each whole output file, the jobs after which it is complete (for grading and later stages)."""


def plan_generation(
    name: str,
    tasks: list[GenerationTask],
    python: str,
    server: ServerSetup,
    overrides: list[str],
    num_jobs: int,
    *,
    num_samples: Optional[int] = None,
    postprocess_cmd: Optional[str] = None,
    time: Optional[str] = None,
    log_root: Optional[Path] = None,
) -> GenerationPlan:
    """Skip the tasks done already, then spread the rest over `num_jobs` jobs, each with its own server (and
    sandbox), and add a merge job per chunked whole file not complete yet."""
    progress = skip_done(
        tasks, [*overrides, f"++server.server_type={server.server_type}", f"++server.model={server.model}"]
    )
    log_root = log_root or tasks[0].whole_file.parent

    def postprocess(path: Path) -> list[list[str]]:
        if not postprocess_cmd:
            return []
        return [["bash", "-c", postprocess_cmd.replace("{output_file}", shlex.quote(str(path)))]]

    jobs: list[Job] = []
    producers: dict[Path, list[Job]] = {}
    for group in group_tasks(progress.left, num_jobs) if progress.left else []:
        after = [cmd for task in group if task.chunk is None for cmd in postprocess(task.output_file)]
        job = Job(name=name, command=[], next_commands=after, output_dir=log_root, time=time, container="assay")
        job.command = [python, "-m", "assay.inference.generate", *server.attach(job, python), *overrides]
        for task in group:
            job.command += ["--task", *task.overrides]
        jobs.append(job)
        for task in group:
            if job not in producers.setdefault(task.whole_file, []):
                producers[task.whole_file].append(job)
    merges: list[Job] = []
    chunked = {t.whole_file: t for t in tasks if t.chunk is not None and t.whole_file not in progress.complete}
    for whole, task in chunked.items():
        merge = [
            python,
            "-m",
            "assay.inference.merge_chunks",
            f"++input_file={task.input_file}",
            f"++output_file={whole}",
            f"++num_chunks={task.num_chunks}",
        ]
        if num_samples is not None:
            merge.append(f"++num_samples={num_samples}")
        merge_job = Job(
            name=name,
            command=merge,
            next_commands=postprocess(whole),
            output_dir=log_root,
            time=time,
            follow_up_copies=False,
            dependencies=[Dependency(j) for j in producers.get(whole, [])],
        )
        merges.append(merge_job)
        producers[whole] = [merge_job]
    return GenerationPlan(jobs + merges, producers)
