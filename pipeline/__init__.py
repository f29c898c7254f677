"""The user's surface: pipeline functions, the CLI, cluster configs and job dispatch.

from . import eval, grpo, run_cmd, sft, wrap_arguments
run_cmd("python -c 'print(1)'", cluster="local", expname="hello", output_dir="/tmp/hello")
eval(benchmarks="smallmath:4", model="smollm2", output_dir="/tmp/e", ctx=wrap_arguments("++inference.temperature=0.7"))
"""

from .cluster import ClusterConfig, load_cluster_config
from .evaluate import eval
from .experiment import Experiment
from .generate import generate
from .grpo import grpo
from .job import Job, JobFailedError, JobHandle
from .results import evaluate_results, prepare_data, summarize_results
from .run_cmd import run_cmd
from .sft import merge_lora, prepare_sft_data, sft
from .start_server import start_server
from .wrap import wrap_arguments

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
    "start_server",
    "summarize_results",
    "wrap_arguments",
]
