"""`generate`: run the generation stage over a JSONL, with its own model server, seeds, chunks and copies.

Every `++key=value` in `ctx` is checked against the stage's config before anything is submitted.
One generation task is one (seed, chunk) pair; all of them run in `num_jobs` jobs (default one: one
server for all the work), concurrently inside each job under one in-flight limit. Chunked outputs get
a merge job per seed that waits for all of that seed's chunks. Tasks done already are skipped
(pipeline/generation_tasks.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..core.config import ConfigError
from .cluster import load_cluster_config, node_python
from .experiment import Experiment, submit, wait_for
from .generation_tasks import check_overrides, default_num_jobs, output_name, plan_generation, plan_tasks, seed_sampling
from .job_options import JOB_DEFAULTS, JobOptions, takes_job_options
from .server_options import SERVER_DEFAULTS, ServerOptions, ServerSetup, takes_server_options
from .wrap import extra_args


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
