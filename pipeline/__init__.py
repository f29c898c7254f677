"""The user's surface: pipeline functions, the CLI, cluster configs and job dispatch.

    from assay.pipeline import eval, grpo, run_cmd, sft, wrap_arguments
    run_cmd("python -c 'print(1)'", cluster="local", expname="hello", output_dir="/tmp/hello")
    eval(benchmarks="smallmath:4", model="smollm2", output_dir="/tmp/e", ctx=wrap_arguments("++inference.temperature=0.7"))
"""

from assay.pipeline.cluster import ClusterConfig, load_cluster_config
from assay.pipeline.experiment import Experiment
from assay.pipeline.evaluate import eval
from assay.pipeline.generate import generate
from assay.pipeline.grpo import grpo
from assay.pipeline.job import Job, JobFailedError, JobHandle
from assay.pipeline.results import evaluate_results, prepare_data, summarize_results
from assay.pipeline.run_cmd import run_cmd
from assay.pipeline.sft import merge_lora, prepare_sft_data, sft
from assay.pipeline.wrap import wrap_arguments

__all__ = [
    "ClusterConfig",
    "eval",
    "evaluate_results",
    "Experiment",
    "generate",
    "grpo",
    "Job",
    "JobFailedError",
    "JobHandle",
    "load_cluster_config",
    "merge_lora",
    "prepare_data",
    "prepare_sft_data",
    "run_cmd",
    "sft",
    "summarize_results",
    "wrap_arguments",
]
