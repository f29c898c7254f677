"""`generate`: run the generation stage over a JSONL, with its own model server, seeds, chunks and copies.

Every `++key=value` in `ctx` is checked against the stage's config before anything is submitted.
One generation task is one (seed, chunk) pair; all of them run in `num_jobs` jobs (default one: one
server for all the work), concurrently inside each job under one in-flight limit. Chunked outputs get
a merge job per seed that waits for all of that seed's chunks. Tasks done already are skipped
(pipeline/generation_tasks.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from ..core.config import ConfigError
from ..inference.config import GenerateConfig
from .cluster import ClusterConfig, load_cluster_config, node_python
from .executors import get_executor
from .experiment import Experiment, submit, wait_for
from .generation_tasks import output_name, plan_generation, plan_tasks
from .job_options import JOB_DEFAULTS, JobOptions, takes_job_options
from .server_options import SERVER_DEFAULTS, ServerOptions, ServerSetup, takes_server_options
from .wrap import extra_args, override_key, refuse_pipeline_keys

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


@takes_job_options(expname="generate")
@takes_server_options()
def generate(
    input_file: str,
    output_dir: str,
    model: Optional[str] = None,
    *,
    num_random_seeds: Optional[int] = None,
    starting_seed: int = 0,
    num_chunks: Optional[int] = None,
    postprocess_cmd: Optional[str] = None,
    ctx=None,
    server: ServerOptions = SERVER_DEFAULTS,
    options: JobOptions = JOB_DEFAULTS,
) -> Experiment:
    """Generate an answer for every line of a JSONL with a model, on a cluster.

    Args:
        input_file: JSONL to generate for (one sample per line).
        output_dir: Outputs go to `<output_dir>/output.jsonl` (or `output-rs<seed>.jsonl` per seed); logs to `<output_dir>/logs/`.
        model: Model path, name, or alias (`smollm2`, the embedded default).
        num_random_seeds: Generate this many samples per line, one file per seed (output-rs<seed>.jsonl).
        starting_seed: The first seed when num_random_seeds is set.
        num_chunks: Split the input into this many chunks, merged at the end (on Slurm, each chunk's tasks in a job of their own unless num_jobs says otherwise).
        postprocess_cmd: Shell command run in the job once an output file is complete; `{output_file}` is replaced by its path (e.g. "python -m assay.inference.filter_output ++input_file={output_file} ++output_file={output_file} ++keep_if_matches=boxed").
        ctx: `++key=value` overrides for the generation stage (wrap_arguments in Python).
    """
    if num_random_seeds is not None and num_random_seeds < 1:
        raise ConfigError(f"num_random_seeds={num_random_seeds} must be at least 1 (unset: one output, no seed)")
    overrides = extra_args(ctx)
    stage_cfg = check_overrides(overrides, server.with_sandbox)
    added = seed_sampling(overrides, stage_cfg, num_random_seeds or 1, f"generate {input_file}")
    if added:
        overrides += added
        stage_cfg = check_overrides(overrides, server.with_sandbox)
    setup = ServerSetup.of(model, server)
    setup.check()
    if not Path(input_file).exists() and not options.dry_run:
        raise ConfigError(f"input_file {input_file} does not exist")
    cluster_cfg = load_cluster_config(options.cluster)
    out_dir = Path(output_dir).absolute()
    seeds: list[Optional[int]] = (
        [None] if num_random_seeds is None else list(range(starting_seed, starting_seed + num_random_seeds))
    )
    jobs_wanted = default_num_jobs(server.num_jobs, num_chunks, cluster_cfg)
    if not num_chunks and jobs_wanted > len(seeds):
        num_chunks = -(-jobs_wanted // len(seeds))  # more servers than seeds: split the input so each has work
    tasks = plan_tasks(Path(input_file).absolute(), out_dir, seeds, num_chunks)
    plan = plan_generation(
        options.expname,
        tasks,
        node_python(cluster_cfg),
        setup,
        overrides,
        jobs_wanted,
        num_samples=stage_cfg.num_samples,
        postprocess_cmd=postprocess_cmd,
        time=options.time,
    )
    experiment = submit(cluster_cfg, options, plan.jobs)
    if wait_for([experiment], cluster_cfg, options.wait, options.dry_run):
        for seed in seeds:
            print(f"{options.expname}: wrote {out_dir / output_name(seed)}", flush=True)
    return experiment
