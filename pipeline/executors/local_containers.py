"""Local jobs in containers (podman or docker), one per component, on the host's network.

When a local cluster config names images (`containers:` as on Slurm), the job runner stays on this machine and
runs each component through the container runtime: the stage in `containers.assay`, the model server in its
server type's image (its own command: no assay there), the sandbox in `containers.sandbox`; a component without
an image runs on the host. Each container shares the host's network (the runner health-checks the services on
127.0.0.1, the stage reaches them there), gets the config's `mounts` as volumes, and gets the variables the
runner sets (ports, the sandbox token, ASSAY_*, HF_*) by name, so their values never appear on a command line.
Launcher paths under a mount are given the container's names; one under no mount stops the submission.

An image that is an absolute path to a folder is an exploded image (podman's `--rootfs`, mounted as an overlay
so the folder is never written to).

The runtime is `$ASSAY_CONTAINER_RUNTIME`, else podman, else docker. Stopping a component stops its runtime
client, which passes the signal to the container (`--rm` removes it).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Optional

from ...core.config import ConfigError
from ..cluster import ClusterConfig
from ..job import Job
from ..job_runner import TIME_LIMIT_FILE_ENV, JobSpec
from ..mounts import in_container, parse_mounts, require_all_mounted
from .slurm_steps import component_command, draw_port, placement

RUNTIME_ENV = "ASSAY_CONTAINER_RUNTIME"
RUNTIMES = ("podman", "docker")
PASSED_PREFIXES = ("ASSAY_", "HF_")
"""Variables of the launcher's environment every container gets (by name), as a Slurm job's would."""


def container_runtime() -> Optional[str]:
    """The container runtime on this machine: $ASSAY_CONTAINER_RUNTIME, else podman, else docker, else None."""
    chosen = os.environ.get(RUNTIME_ENV)
    if chosen:
        return chosen if shutil.which(chosen) else None
    return next((name for name in RUNTIMES if shutil.which(name)), None)


def check_runtime(cluster: ClusterConfig) -> str:
    runtime = container_runtime()
    if runtime is None:
        wanted = os.environ.get(RUNTIME_ENV) or " or ".join(RUNTIMES)
        raise ConfigError(
            f"cluster config '{cluster.name}' runs local jobs in containers ({', '.join(cluster.containers)}), but "
            f"{wanted} is not installed here; install one, or remove `containers` from the config"
        )
    return runtime


def run_prefix(runtime: str, image: str, mounts: list[str], env_names: list[str], gpus: int = 0) -> list[str]:
    """`<runtime> run ...` up to the image: host network, the mounts as volumes (a bare path under its own name),
    the variables by name, and the machine's GPUs when the job asks for any."""
    prefix = [runtime, "run", "--rm", "--network=host"]
    if gpus:
        prefix += ["--gpus", "all"] if os.path.basename(runtime) == "docker" else ["--device", "nvidia.com/gpu=all"]
    for mount in mounts:
        prefix += ["-v", mount if ":" in mount else f"{mount}:{mount}"]
    for name in env_names:
        prefix += ["-e", name]
    if os.path.isabs(image) and os.path.isdir(image):
        return [*prefix, "--rootfs", f"{image}:O"]
    return [*prefix, image]


def in_containers(job: Job, spec: JobSpec, cluster: ClusterConfig) -> JobSpec:
    """The spec with each component that has an image run through the container runtime."""
    runtime = check_runtime(cluster)
    mounts = parse_mounts(cluster.mounts)
    if job.container_paths:
        require_all_mounted(job, mounts, cluster.name)
    names = {k for k in os.environ if k.startswith(PASSED_PREFIXES)}
    names |= {item.split("=", 1)[0] for item in cluster.env_vars} | set(spec.env) | {TIME_LIMIT_FILE_ENV}
    for service in spec.services:
        names |= set(service.env) | ({service.secret_env} if service.secret_env else set())
    env_names = sorted(names)
    services = []
    taken = {s.port for s in spec.services if s.port}
    stage_image = cluster.containers.get(job.container)
    for service in spec.services:
        image, own_command = placement(service, cluster, stage_image)
        if not image:
            services.append(service)
            continue
        port = service.port or draw_port(taken)  # fixed now: a server's own command names it
        taken.add(port)
        argv, env = component_command(
            service, port, image, own_command, mounts if job.container_paths else [], job.name
        )
        prefix = run_prefix(runtime, image, cluster.mounts, sorted({*env_names, *env}), job.gpus_per_node)
        services.append(dataclasses.replace(service, command=[*prefix, *argv], env=env, port=port))
    spec = dataclasses.replace(spec, services=services)
    if not stage_image:
        return spec
    inside = in_container(spec, mounts, log_dir=False) if job.container_paths else spec
    prefix = run_prefix(runtime, stage_image, cluster.mounts, env_names, job.gpus_per_node)
    return dataclasses.replace(
        spec,
        command=[*prefix, *inside.command],
        next_commands=[[*prefix, *c] for c in inside.next_commands],
        env=inside.env,
    )
