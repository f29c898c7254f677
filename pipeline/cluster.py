"""Cluster configs: where jobs run (local processes or Slurm) and with what account, partition, containers.

A cluster config is a YAML file, selected by name (`cluster="slurm"` finds `slurm.yaml`) or by path.
Names are looked up in, in order: the folders of `$ASSAY_CLUSTER_CONFIGS` (colon-separated),
`./cluster_configs/` of the current directory, and the configs shipped with assay.
Every field is checked when the file is loaded: a misspelt field names the closest valid one.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Optional

import yaml

from ..core.suggest import UnknownNameError, did_you_mean
from .executors import get_executor


@dataclass
class ClusterConfig:
    """One cluster: how jobs are dispatched and with which defaults."""

    executor: str
    """Where jobs run: `local` (child processes on this machine) or `slurm` (sbatch); see pipeline/executors/."""
    account: Optional[str] = None
    """Slurm account (--account)."""
    partition: Optional[str] = None
    """Slurm partition (--partition)."""
    time: Optional[str] = None
    """Default time limit of a job, in Slurm's format (MM, HH:MM:SS, D-HH:MM:SS); a job's own wins."""
    gpus_per_node: int = 0
    """GPUs on one node; jobs ask for at most this many."""
    cpus_per_task: Optional[int] = None
    """CPUs per job (--cpus-per-task); Slurm's default when unset."""
    mem: Optional[str] = None
    """Memory per node (--mem), e.g. 64G; `0` asks for the whole node; Slurm's default when unset."""
    containers: dict[str, str] = field(default_factory=dict)
    """Container image per component (assay, vllm, sglang, sandbox, ...); Slurm only (pyxis/enroot)."""
    mounts: list[str] = field(default_factory=list)
    """Mounts `host_path:container_path` for the containers."""
    env_vars: list[str] = field(default_factory=list)
    """`KEY=VALUE` set in every job; a bare `KEY` must be set where you submit and is passed on (keeps secrets off disk)."""
    job_name_prefix: str = "assay_"
    """Prefix of every job's name on the cluster."""
    sbatch_args: dict[str, str] = field(default_factory=dict)
    """Extra sbatch options, e.g. {qos: high, constraint: h100}."""
    signal_delay_s: int = 120
    """Seconds before the time limit at which a job is told to stop (so it can save its progress)."""
    max_parallel_jobs: Optional[int] = None
    """Local only: at most this many jobs run at once on this machine, across launchers; the others wait for a
    free slot. Unset: every job whose dependencies are met starts at once."""
    name: str = ""
    """Filled from the file name; used in job records."""

    def __post_init__(self) -> None:
        try:
            executor = get_executor(self.executor)
        except UnknownNameError as exc:
            raise ClusterConfigError(f"field 'executor': {exc}") from None
        executor.check_cluster(self)
        if self.time is not None:
            parse_time_minutes(self.time)
        if self.max_parallel_jobs is not None:
            if not executor.shares_one_machine:
                raise ClusterConfigError(
                    f"max_parallel_jobs is for jobs that share this machine; {self.executor} schedules its own jobs"
                )
            if not isinstance(self.max_parallel_jobs, int) or self.max_parallel_jobs < 1:
                raise ClusterConfigError(
                    f"max_parallel_jobs must be a whole number of at least 1, got {self.max_parallel_jobs!r}"
                )
        for item in self.env_vars:
            key = item.split("=", 1)[0]
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ClusterConfigError(f"env_vars entry '{item}' is not KEY=VALUE or KEY")
        for mount in self.mounts:
            if ":" not in mount:
                raise ClusterConfigError(f"mount '{mount}' is not host_path:container_path")

    def missing_env(self) -> list[str]:
        """Bare `KEY` entries of env_vars that are not set in this process's environment."""
        return [item for item in self.env_vars if "=" not in item and item not in os.environ]

    def env(self) -> dict[str, str]:
        """The `KEY=VALUE` env vars set in every job.

        A bare `KEY` is checked to be set here and reaches the job through the environment the job
        inherits (Slurm exports the submitting environment), so its value is never written to disk.
        """
        missing = self.missing_env()
        if missing:
            raise ClusterConfigError(
                f"cluster config '{self.name}' passes env var(s) {', '.join(missing)} from your environment, "
                "but they are not set"
            )
        return self.explicit_env()

    def explicit_env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.env_vars if "=" in item)

    def container_args(self, component: str) -> list[str]:
        """srun options that run `component` inside its container (empty when none is configured)."""
        image = self.containers.get(component)
        if not image:
            return []
        args = [f"--container-image={image}"]
        if self.mounts:
            args.append(f"--container-mounts={','.join(self.mounts)}")
        return args


def node_python(cluster: ClusterConfig) -> str:
    """The interpreter that runs stages on the node: the launcher's, unless a container brings its own."""
    return "python" if cluster.containers.get("assay") else sys.executable


class ClusterConfigError(ValueError):
    """A cluster config that cannot be used; the message says which field and why."""


_TIME_PATTERNS = [
    (re.compile(r"^(\d+)$"), lambda m: int(m[1])),
    (re.compile(r"^(\d+):(\d\d)$"), lambda m: int(m[1]) + (int(m[2]) > 0)),
    (re.compile(r"^(\d+):(\d\d):(\d\d)$"), lambda m: int(m[1]) * 60 + int(m[2]) + (int(m[3]) > 0)),
    (re.compile(r"^(\d+)-(\d+)$"), lambda m: int(m[1]) * 1440 + int(m[2]) * 60),
    (re.compile(r"^(\d+)-(\d+):(\d\d)$"), lambda m: int(m[1]) * 1440 + int(m[2]) * 60 + int(m[3])),
    (
        re.compile(r"^(\d+)-(\d+):(\d\d):(\d\d)$"),
        lambda m: int(m[1]) * 1440 + int(m[2]) * 60 + int(m[3]) + (int(m[4]) > 0),
    ),
]


def parse_time_minutes(text: str | int) -> int:
    """Slurm time limit (`30`, `04:00:00`, `1-12:00:00`, ...) in whole minutes, rounded up."""
    if isinstance(text, int):
        return text
    for pattern, to_minutes in _TIME_PATTERNS:
        match = pattern.match(str(text).strip())
        if match:
            return to_minutes(match)
    raise ClusterConfigError(f"time limit '{text}' is not in Slurm's format (MM, HH:MM:SS or D-HH:MM:SS)")


def _search_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("ASSAY_CLUSTER_CONFIGS", "").split(":") if p]
    dirs.append(Path.cwd() / "cluster_configs")
    dirs.append(Path(str(resources.files("assay.cluster_configs"))))
    return dirs


def available_cluster_configs() -> list[str]:
    names: set[str] = set()
    for folder in _search_dirs():
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml"))
    return sorted(names)


def find_cluster_config(name_or_path: str | os.PathLike) -> Path:
    """The file of a cluster config given by name or path; a clear error lists what exists."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if candidate.is_file():
            return candidate
        raise ClusterConfigError(f"cluster config file {candidate} does not exist")
    for folder in _search_dirs():
        path = folder / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    known = available_cluster_configs()
    hint = did_you_mean(str(name_or_path), known)
    raise ClusterConfigError(
        f"No cluster config named '{name_or_path}'.{hint} Known: {', '.join(known) or 'none'}. "
        "Pass a path to a YAML file, or add a folder to $ASSAY_CLUSTER_CONFIGS."
    )


def load_cluster_config(name_or_path: str | os.PathLike | ClusterConfig) -> ClusterConfig:
    """Load and validate a cluster config; unknown or missing fields are errors naming the file."""
    if isinstance(name_or_path, ClusterConfig):
        return name_or_path
    path = find_cluster_config(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ClusterConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ClusterConfigError(f"{path}: expected a mapping of fields, got {type(data).__name__}")
    valid = [f.name for f in dataclasses.fields(ClusterConfig) if f.name != "name"]
    for key in data:
        if key not in valid:
            hint = did_you_mean(str(key), valid) or f" Valid fields: {', '.join(valid)}."
            raise ClusterConfigError(f"{path}: unknown field '{key}'.{hint}")
    if "executor" not in data:
        raise ClusterConfigError(f"{path}: missing required field 'executor' (local or slurm)")
    _check_types(path, data)
    try:
        return ClusterConfig(**data, name=path.stem)
    except ClusterConfigError as exc:
        raise ClusterConfigError(f"{path}: {exc}") from None


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "executor": str,
    "account": str,
    "partition": str,
    "time": (str, int),
    "gpus_per_node": int,
    "cpus_per_task": int,
    "mem": (str, int),
    "containers": dict,
    "mounts": list,
    "env_vars": list,
    "job_name_prefix": str,
    "sbatch_args": dict,
    "signal_delay_s": int,
    "max_parallel_jobs": int,
}


def _check_types(path: Path, data: dict) -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(ClusterConfig)}
    for key, value in data.items():
        expected = _FIELD_TYPES[key]
        if value is None and defaults.get(key) is None:
            continue  # an optional field left empty: its default
        if value is not None and isinstance(value, expected) and not isinstance(value, bool):
            _check_text(path, key, value)
            continue
        names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise ClusterConfigError(f"{path}: field '{key}' expects {names}, got {value!r}")
    for key in ("time", "mem"):
        if isinstance(data.get(key), int):
            data[key] = str(data[key])


def _check_text(path: Path, key: str, value: object) -> None:
    """No line break or other control character in any string of the config: each value becomes one sbatch
    option or one line of the job's script, and a newline would start another (`account: "a\\n#SBATCH ..."`)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else [("", value)]
    for name, item in items:
        for text in (name, item):
            if isinstance(text, str) and any(ord(c) < 32 or ord(c) == 127 for c in text):
                raise ClusterConfigError(f"{path}: field '{key}' holds a control character (a line break?): {text!r}")
