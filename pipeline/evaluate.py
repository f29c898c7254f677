"""`eval`: generate on benchmarks, grade, compute metrics, as chained jobs; then print the table.

For each benchmark of `benchmarks="smallmath:4,mlcode:2"` (name:seeds) the generation jobs write
`<output_dir>/eval-results/<name>/output-rs<seed>.jsonl`; one grading job per benchmark starts after
all of them succeed (with a sandbox beside it for code) and also writes `metrics.json`. Several models
(a list, comma-separated, or a glob of checkpoint folders) get one output folder each, one
comparison table, and the checkpoint sweep table (training/checkpoint_sweep.py: step, pass@1,
failure taxonomy, the best checkpoint).

A checkpoint sweep chained after training (`eval(model="runs/sft/merged/checkpoint-*",
run_after="sft")`) cannot expand its glob at submit time: the checkpoints do not exist yet. Then one
small job is submitted after the upstream (pipeline/deferred_eval.py); when it starts, it expands the
glob and runs this same eval on the same cluster, waits for it and prints both tables.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Optional, Union

from ..benchmarks.registry import BenchmarkError, copy_for_run, get_benchmark
from ..core.config import ConfigError
from .cluster import load_cluster_config, node_python
from .experiment import Experiment, submit, wait_for
from .generation_tasks import (
    check_overrides,
    default_num_jobs,
    defaults_not_overridden,
    plan_generation,
    plan_tasks,
    seed_sampling,
)
from .job import Dependency, Job
from .job_options import JOB_DEFAULTS, JobOptions, takes_job_options
from .server_options import (
    JUDGE_DEFAULTS,
    SERVER_DEFAULTS,
    JudgeOptions,
    ServerOptions,
    ServerSetup,
    add_sandbox,
    takes_judge_options,
    takes_server_options,
)
from .wrap import extra_args


def parse_benchmarks(text: str) -> list[tuple[str, int]]:
    """`aime24:16,mlcode` -> [("aime24", 16), ("mlcode", 1)]; a group name stands for each of its benchmarks."""
    from ..benchmarks.registry import group_members

    out: list[tuple[str, int]] = []
    for item in [x.strip() for x in text.split(",") if x.strip()]:
        name, _, seeds = item.partition(":")
        if seeds and (not seeds.isdigit() or int(seeds) < 1):
            raise ConfigError(f"'{item}': the number after ':' is how many seeds, a positive integer")
        try:
            members = group_members(name) or (name,)
            for member in members:
                get_benchmark(member)
        except BenchmarkError as exc:
            raise ConfigError(str(exc)) from None
        out += [(m, int(seeds) if seeds else 1) for m in members if m not in [n for n, _ in out]]
    if not out:
        raise ConfigError("benchmarks is empty: pass e.g. --benchmarks=smallmath:4")
    return out


def expand_models(model: Union[str, list[str]], defer_empty: bool = False) -> Optional[list[str]]:
    """A list, a comma-separated string, or glob patterns (e.g. checkpoint folders) -> model names, in order.

    A pattern that matches nothing is an error, or, with `defer_empty` (the eval runs after a job that
    will write the checkpoints), None: expand it later.
    """
    items = model if isinstance(model, list) else [m.strip() for m in str(model).split(",") if m.strip()]
    models: list[str] = []
    for item in items:
        matches = sorted(glob.glob(item), key=_checkpoint_order) if any(c in item for c in "*?[") else [item]
        if not matches:
            if defer_empty:
                return None
            raise ConfigError(
                f"model pattern '{item}' matches nothing (to evaluate checkpoints a job will write, "
                "pass run_after=<its expname>)"
            )
        models.extend(matches)
    return models


def _checkpoint_order(path: str) -> tuple:
    """checkpoint-50 before checkpoint-100 (numeric, not alphabetical)."""
    digits = "".join(c if c.isdigit() else " " for c in Path(path).name).split()
    return (Path(path).parent.as_posix(), int(digits[-1]) if digits else -1, path)


def judge_setup(parsed: list[tuple[str, int]], options: JudgeOptions) -> Optional[ServerSetup]:
    """The judge server of the judge-graded benchmarks (None when there are none), checked before anything runs."""
    judged = [name for name, _ in parsed if get_benchmark(name).needs_judge]
    if not judged:
        return None
    if not options.judge_model:
        raise ConfigError(
            f"{', '.join(judged)} is graded by an LLM judge: give --judge_model (served in the grading job), "
            "or --judge_server_address with --judge_model (an endpoint)"
        )
    judge = options.setup()
    try:
        judge.check()
    except ConfigError as exc:
        raise ConfigError(f"the judge: {str(exc).replace('--server', '--judge_server')}") from None
    return judge


def graded_already(bench_dir: Path, seeds: int) -> bool:
    """metrics.json is there, newer than each of the benchmark's `seeds` outputs."""
    metrics = bench_dir / "metrics.json"
    outputs = [bench_dir / f"output-rs{s}.jsonl" for s in range(seeds)]
    if not metrics.exists() or not all(o.exists() for o in outputs):
        return False
    return metrics.stat().st_mtime >= max(o.stat().st_mtime for o in outputs)


def model_label(model: str) -> str:
    path = Path(model)
    return path.name if path.name else model.replace("/", "_")


@takes_job_options(expname="eval")
@takes_server_options()
@takes_judge_options
def eval(  # noqa: A001 - the command users know by this name
    benchmarks: str,
    output_dir: str,
    model: Union[str, list[str]],
    *,
    num_chunks: Optional[int] = None,
    extra_datasets: Optional[str] = None,
    ctx=None,
    judge: JudgeOptions = JUDGE_DEFAULTS,
    server: ServerOptions = SERVER_DEFAULTS,
    options: JobOptions = JOB_DEFAULTS,
) -> list[Experiment]:
    """Evaluate a model (or several, e.g. every checkpoint of a run) on benchmarks and print the metrics table.

    Args:
        benchmarks: Comma-separated `name:seeds`, e.g. `smallmath:4,mlcode:2` (`assay prepare_data <name>` first for downloaded ones).
        output_dir: Results go to `<output_dir>/eval-results/<benchmark>/` (with several models: `<output_dir>/<model name>/eval-results/...`).
        model: Model path, served name or alias (smollm2); several as a comma-separated list or a glob of checkpoint folders.
        num_chunks: Split each benchmark's input into this many chunks per seed.
        extra_datasets: Folder(s), `:`-separated, of your own benchmarks: `<name>/benchmark.yaml` + `<name>/test.jsonl` each, or `<name>/group.yaml` (added to $ASSAY_EXTRA_DATASETS).
        ctx: `++key=value` overrides for the generation stage, applied to every benchmark.
    """
    if extra_datasets:
        from ..benchmarks.registry import EXTRA_DATASETS_ENV

        dirs = [str(Path(p).absolute()) for p in extra_datasets.split(os.pathsep) if p]
        extra_datasets = os.pathsep.join(dirs)  # absolute, for a deferred eval that runs elsewhere
        os.environ[EXTRA_DATASETS_ENV] = os.pathsep.join([*dirs, os.environ.get(EXTRA_DATASETS_ENV, "")]).strip(
            os.pathsep
        )
    overrides = extra_args(ctx)
    stage_cfg = check_overrides(overrides, server.with_sandbox)
    parsed = parse_benchmarks(benchmarks)
    most_seeds = max(seeds for _, seeds in parsed)
    added = seed_sampling(overrides, stage_cfg, most_seeds, ",".join(f"{b}:{n}" for b, n in parsed if n > 1))
    if added:
        overrides += added
        stage_cfg = check_overrides(overrides, server.with_sandbox)
    cluster_cfg = load_cluster_config(options.cluster)
    models = expand_models(model, defer_empty=options.run_after is not None)
    if models is None:
        from .deferred_eval import submit_deferred_eval

        call = {"benchmarks": benchmarks, "output_dir": output_dir, "model": model, "num_chunks": num_chunks}
        call.update({"extra_datasets": extra_datasets, "ctx": overrides})
        return [submit_deferred_eval(call, judge, server, options, cluster_cfg)]
    judge_server = judge_setup(parsed, judge)
    python = node_python(cluster_cfg)
    root = Path(output_dir).absolute()
    experiments = []
    run_dirs = []
    for name in models:
        setup = ServerSetup.of(name, server)
        setup.check()
        run_dir = root if len(models) == 1 else root / model_label(name)
        run_dirs.append(run_dir)
        tasks = []
        for bench_name, seeds in parsed:
            bench = get_benchmark(bench_name)
            bench_dir = run_dir / "eval-results" / bench_name
            if options.dry_run:
                input_file = bench_dir / "test.jsonl"
            else:
                try:
                    input_file = copy_for_run(bench_name, bench_dir)
                except BenchmarkError as exc:
                    raise ConfigError(str(exc)) from None
            defaults = [f"++prompt_config={bench.prompt_config}"]
            if bench.tokens_to_generate is not None:
                defaults.append(f"++inference.tokens_to_generate={bench.tokens_to_generate}")
            own = defaults_not_overridden(defaults, overrides)
            tasks += plan_tasks(input_file, bench_dir, list(range(seeds)), num_chunks, own)
        # every benchmark, seed and chunk of this model shares the same server(s)
        jobs_wanted = default_num_jobs(server.num_jobs, num_chunks, cluster_cfg)
        plan = plan_generation(
            options.expname,
            tasks,
            python,
            setup,
            overrides,
            jobs_wanted,
            num_samples=stage_cfg.num_samples,
            time=options.time,
            log_root=run_dir,
        )
        jobs: list[Job] = list(plan.jobs)
        for bench_name, seeds in parsed:
            bench = get_benchmark(bench_name)
            bench_dir = run_dir / "eval-results" / bench_name
            upstream = [
                j for t in tasks if t.whole_file.parent == bench_dir for j in plan.producers.get(t.whole_file, [])
            ]
            if not upstream and graded_already(bench_dir, seeds):
                print(f"[assay] {bench_name}: graded already ({bench_dir / 'metrics.json'}); nothing to submit")
                continue
            grade = [
                python,
                "-m",
                "assay.evaluation.evaluate_results",
                f"++input_files={bench_dir}/output-rs*.jsonl",
                f"++grader={bench.grader}",
            ]
            metrics = [
                python,
                "-m",
                "assay.evaluation.compute_metrics",
                f"++input_dir={bench_dir}",
                f"++benchmark={bench_name}",
                f"++grader={bench.grader}",
            ]
            grade_job = Job(
                name=options.expname,
                command=grade,
                next_commands=[metrics],
                output_dir=run_dir,
                time=options.time,
                follow_up_copies=False,
                dependencies=[Dependency(j) for j in {id(j): j for j in upstream}.values()],
            )
            if bench.needs_sandbox:
                add_sandbox(grade_job, python, image=server.sandbox_container)
            if bench.needs_judge and judge_server is not None:
                judge_overrides = judge_server.attach(grade_job, python)
                grade_job.command = [*grade, *(o.replace("++server.", "++judge.", 1) for o in judge_overrides)]
            jobs.append(grade_job)
        experiments.append(submit(cluster_cfg, options, jobs))
    if len(models) > 1 and not options.dry_run:
        from . import registry

        registry.record(cluster_cfg.name, options.expname, [h for e in experiments for h in e.final])
    if wait_for(experiments, cluster_cfg, options.wait, options.dry_run):
        from ..evaluation.summarize import summarize_results

        labels = [model_label(m) for m in models] if len(models) > 1 else None
        summarize_results([str(d) for d in run_dirs], labels=labels)
        if len(models) > 1:
            from ..training.checkpoint_sweep import print_sweep

            print_sweep(root)
    return experiments
