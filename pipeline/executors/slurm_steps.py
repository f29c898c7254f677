"""Each service of a Slurm job (the model server, the sandbox) as its own srun step of the job's allocation, in its
own container where the cluster config (or the call) names an image for it.

The batch script starts the steps in the background before the job's own step (submitit's `setup` lines), each on
a port fixed at submission, so that a dry run shows exactly what runs where:

    export ASSAY_SANDBOX_TOKEN="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \\n')"
    ( srun --overlap --nodes=1 --ntasks=1 --ntasks-per-node=1 --job-name=assay_eval-sandbox \\
        --container-image=/images/assay.sqsh env sh -c 'trap "" USR2; exec "$@"' sh python -m assay.sandbox.server \\
        ... >> /logs/"${SLURM_JOB_ID}"_sandbox.log 2>&1; echo $? > /logs/"${SLURM_JOB_ID}"_sandbox.exit ) &

The job runner on the head node then only waits until each step answers its health URL, and fails at once with
the step's log when the step ended first (its exit status file). The steps end with the allocation.

- A model server in an image of its own (vllm/vllm-openai, lmsysorg/sglang, ...) has no assay inside: its step runs
  the server's own command, built here on the launcher by its server type, as `python -m assay.inference.serve`
  builds it on the node otherwise (model alias and LoRA adapter resolved the same way). Without an image, the step
  runs `python -m assay.inference.serve` on the host, on every node a multi-node server spans.
- The sandbox is assay's own service: its image must have assay installed.
- `--overlap`: the steps share the allocation's CPUs, memory and GPUs with the job's own step, as processes of
  one step did.
- Every step ignores the time-limit warning (USR2, which Slurm sends to every step): the stage saves and stops,
  and the services serve it until then.
"""

from __future__ import annotations

import dataclasses
import random
import shlex
from typing import Optional

from ...core.config import ConfigError
from ..cluster import ClusterConfig
from ..job import Job
from ..job_runner import JobSpec
from ..mounts import Mount, parse_mounts, translate_args, translate_env, unmounted_paths
from ..services import ServiceSpec

PORTS = (20000, 60000)
"""Where a step's port is drawn from when the call fixes none (below the usual ephemeral range)."""
IGNORE_WARNING = ["sh", "-c", 'trap "" USR2; exec "$@"', "sh"]
"""Run the rest of the line with the time-limit warning ignored (a disposition exec keeps)."""
SERVE_MODULE = "assay.inference.serve"


def placement(service: ServiceSpec, cluster: ClusterConfig, stage_image: Optional[str]) -> tuple[Optional[str], bool]:
    """(the image a service runs in, whether it runs its own command there rather than assay's entry point).

    The call's image, else the cluster config's for its component: a server there runs its own command. Without one,
    a service that is an assay module runs in the stage's image (`stage_image`), as it did inside the stage's
    container, else on the host.
    """
    own = service.image or (cluster.containers.get(service.component) if service.component else None)
    if own:
        return own, service.command[1:3] == ["-m", SERVE_MODULE]
    if stage_image and service.command[1:2] == ["-m"]:
        return stage_image, False
    return None, False


def service_steps(job: Job, spec: JobSpec, cluster: ClusterConfig) -> tuple[list[str], JobSpec]:
    """(batch-script lines that start the job's services as steps, the spec whose runner waits for them)."""
    if not spec.services:
        return [], spec
    mounts = parse_mounts(cluster.mounts) if job.container_paths else []
    taken = {s.port for s in spec.services if s.port}
    log_dir = str(job.log_dir)  # the batch script and srun write these files on the host
    lines: list[str] = []
    services: list[ServiceSpec] = []
    for service in spec.services:
        port = service.port or draw_port(taken)
        taken.add(port)
        image, own_command = placement(service, cluster, cluster.containers.get(job.container))
        argv, env = component_command(service, port, image, own_command, mounts, job.name)
        if service.secret_env:  # made on the node, never on a command line or in a file
            lines.append(f"export {service.secret_env}=\"$(od -An -N24 -tx1 /dev/urandom | tr -d ' \\n')\"")
        nodes = job.nodes if service.all_nodes else 1
        srun = [
            "srun",
            "--overlap",
            f"--nodes={nodes}",
            f"--ntasks={nodes}",
            "--ntasks-per-node=1",
            f"--job-name={cluster.job_name_prefix}{job.name}-{service.name}",
        ]
        if image:
            srun.append(f"--container-image={image}")
            if cluster.mounts:
                srun.append(f"--container-mounts={','.join(cluster.mounts)}")
        step = [*srun, "env", *(f"{k}={v}" for k, v in env.items()), *IGNORE_WARNING, *argv]
        # srun's own complaints (a bad image, a refused step) go to the service's log too
        files = f'{shlex.quote(log_dir)}/"${{SLURM_JOB_ID}}"_{service.name}'
        lines.append(f"( {shlex.join(step)} >> {files}.log 2>&1; echo $? > {files}.exit ) &")
        services.append(dataclasses.replace(service, port=port, own_step=True))
    return lines, dataclasses.replace(spec, services=services)


def draw_port(taken: set) -> int:
    while True:
        port = random.randrange(*PORTS)
        if port not in taken:
            return port


def component_command(
    service: ServiceSpec, port: int, image: Optional[str], own_command: bool, mounts: list[Mount], job_name: str
) -> tuple[list[str], dict]:
    """The argv and environment a service runs with, its port filled in; in an image, with the container's paths
    (a path the container would not see stops the submission)."""
    argv = [part.replace("{port}", str(port)) for part in service.command]
    env = {k: v.replace("{port}", str(port)) for k, v in service.env.items()}
    if not image:
        return argv, env
    if own_command:
        argv, env = _server_own_command(argv[3:], env, image, job_name)
    elif argv[1:2] == ["-m"]:
        argv[0] = "python"  # an assay module, run by the image's own python
    if mounts:
        argv, env = _in_image(argv, mounts), translate_env(env, mounts)
        unseen = unmounted_paths([*argv, *env.values()], mounts)
        if unseen:
            raise ConfigError(
                f"{job_name}: the {service.name} in {image} would need {unseen[0]}, which is under no mount; mount "
                "its folder, or give the model by a path under a mount"
            )
    return argv, env


def _in_image(argv: list[str], mounts: list[Mount]) -> list[str]:
    """The argv with the container's paths, but the name the model is served under (`--served-model-name X`)."""
    out = []
    for i, part in enumerate(argv):
        named = i > 0 and argv[i - 1] == "--served-model-name"
        out.append(part if named else translate_args([part], mounts)[0])
    return out


def _server_own_command(flags: list[str], env: dict, image: str, job_name: str) -> tuple[list[str], dict]:
    """The server's own launch (no assay in its image), built from the flags `python -m assay.inference.serve` gets."""
    from ...inference.serve import parse_args, resolve_launch

    args = parse_args(flags)
    if args.server_nodes > 1:
        raise ConfigError(
            f"{job_name}: a server on {args.server_nodes} nodes in the image {image} needs each node's rank, which "
            "`python -m assay.inference.serve` works out on the node: use an image with assay installed as the "
            "server's (server_container), or run the server without an image"
        )
    try:
        launch, _ = resolve_launch(args, python="python3")
    except ValueError as exc:
        raise ConfigError(f"{job_name}: {exc}") from None
    return launch.argv, {**launch.env, **env}
