"""An eval whose models do not exist yet at submit time: checkpoints a training job chained before it will write.

`eval(model="runs/sft/merged/checkpoint-*", run_after="sft")` submits one small job after `sft` that runs

    python -m assay.pipeline.deferred_eval '<the eval arguments as JSON>'

When it starts, the checkpoints exist: it expands the glob and runs the same `eval()` on the same cluster
(submitting its generation and grading jobs, under `<expname>-checkpoints`), waits for them, and prints
the comparison and checkpoint sweep tables to its log. It fails when any of them fails, so whatever runs
after this eval's expname starts only when every checkpoint was evaluated. The cluster config travels in
the command itself, so the node needs no copy of the file. On Slurm the job holds one CPU slot while it
waits, and submits from where it runs: on a cluster that runs jobs in containers, the image needs
Slurm's client tools (sbatch, squeue, sacct), as for multi-node training, and, since it submits with the
launcher's paths, the folders it uses mounted under the same paths in its container.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Optional

from .cluster import ClusterConfig, node_python
from .experiment import Experiment, submit_experiment, wait_for
from .job import Job
from .job_options import JobOptions
from .server_options import JudgeOptions, ServerOptions


def submit_deferred_eval(
    own: dict, judge: JudgeOptions, server: ServerOptions, options: JobOptions, cluster: ClusterConfig
) -> Experiment:
    """Submit the job that runs `eval(**own, <judge, server and job options>)` once `options.run_after` is done."""
    arguments = {**own, **dataclasses.asdict(judge), **dataclasses.asdict(server)}
    arguments.update(expname=options.expname, time=options.time, dependent_jobs=options.dependent_jobs)
    arguments["cluster"] = dataclasses.asdict(cluster)
    arguments["output_dir"] = str(Path(arguments["output_dir"]).absolute())
    arguments["expname"] = f"{arguments['expname']}-checkpoints"
    arguments["wait"] = True
    job = Job(
        name=arguments["expname"].removesuffix("-checkpoints"),
        command=[node_python(cluster), "-m", "assay.pipeline.deferred_eval", json.dumps(arguments)],
        output_dir=Path(arguments["output_dir"]),
        time=arguments.get("time"),
        follow_up_copies=False,
        takes_local_slot=False,
        container_paths=False,
    )
    experiment = submit_experiment(
        cluster,
        job.name,
        [job],
        run_after=options.run_after,
        dependency_type=options.dependency_type,
        dry_run=options.dry_run,
    )
    if options.dry_run:
        print(
            f"[assay] {arguments['model']} matches nothing yet: the models are expanded when this job starts, "
            "after its upstream",
            flush=True,
        )
    wait_for([experiment], cluster, options.wait, options.dry_run)
    return experiment


def main(argv: Optional[list[str]] = None) -> int:
    from .evaluate import eval as run_eval
    from .evaluate import expand_models

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m assay.pipeline.deferred_eval '<eval arguments as JSON>'", file=sys.stderr)
        return 2
    arguments = json.loads(args[0])
    arguments["cluster"] = ClusterConfig(**arguments["cluster"])
    models = expand_models(arguments["model"]) or []  # an error now if the upstream wrote no checkpoint
    print(f"[assay] evaluating {len(models)} model(s): {', '.join(models)}", flush=True)
    run_eval(**{**arguments, "model": models})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
