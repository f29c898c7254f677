"""The user's surface: pipeline functions, the CLI, cluster configs and job dispatch.

    from assay.pipeline import run_cmd, wrap_arguments
    run_cmd("python -c 'print(1)'", cluster="local", expname="hello", output_dir="/tmp/hello")
"""

from assay.pipeline.cluster import ClusterConfig, load_cluster_config
from assay.pipeline.experiment import Experiment
from assay.pipeline.generate import generate
from assay.pipeline.job import Job, JobFailedError, JobHandle
from assay.pipeline.run_cmd import run_cmd
from assay.pipeline.wrap import wrap_arguments

__all__ = [
    "ClusterConfig",
    "Experiment",
    "generate",
    "Job",
    "JobFailedError",
    "JobHandle",
    "load_cluster_config",
    "run_cmd",
    "wrap_arguments",
]
