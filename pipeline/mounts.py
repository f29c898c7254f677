"""Mount path translation: where a launcher path is inside a job's container, and back.

A cluster config's `mounts` (`host_path:container_path`, pyxis' --container-mounts) make host folders visible
in the containers under other names. Launchers are written with the paths the user sees on the login node;
a job that runs in a container must be given the container's names for them. When a cluster runs jobs in
containers, the Slurm executor translates every path of a job's command, follow-up commands, environment and
services (and the folder submitit runs the job from) with `to_container`, and refuses, before anything is
submitted, a job whose log folder or path arguments lie under no mount (the container could not see them).
`to_host` maps a path a job reports back to the launcher's name for it.

The longest matching mount wins, and a mount only matches whole path components: with `/lustre/a:/ws`,
`/lustre/a/x` is `/ws/x` but `/lustre/ab` is under no mount.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Optional

from ..core.config import ConfigError

if TYPE_CHECKING:
    from .job import Job
    from .job_runner import JobSpec


@dataclass(frozen=True)
class Mount:
    host: str
    container: str


def parse_mounts(mounts: Iterable[str]) -> list[Mount]:
    """`host:container[:options]` entries (pyxis' syntax) as Mounts, longest host path first."""
    parsed = []
    for entry in mounts:
        host, _, rest = entry.partition(":")
        container = rest.split(":", 1)[0] if rest else host
        parsed.append(Mount(_clean(host), _clean(container)))
    return sorted(parsed, key=lambda m: len(m.host), reverse=True)


def _clean(path: str) -> str:
    return os.path.normpath(path) if path else path


def _under(path: str, root: str) -> Optional[str]:
    """The part of `path` below `root` ('' for root itself), or None when `path` is not under it."""
    if root == "/":
        return path.lstrip("/")
    if path == root:
        return ""
    if path.startswith(root + "/"):
        return path[len(root) + 1 :]
    return None


def to_container(path: str, mounts: list[Mount]) -> Optional[str]:
    """The container's name for a launcher path, or None when it is under no mount."""
    absolute = os.path.normpath(os.path.abspath(path))
    for mount in mounts:
        rest = _under(absolute, mount.host)
        if rest is not None:
            return os.path.join(mount.container, rest) if rest else mount.container
    return None


def to_host(path: str, mounts: list[Mount]) -> Optional[str]:
    """The launcher's name for a path inside the container, or None when it is under no mount."""
    normal = os.path.normpath(path)
    for mount in sorted(mounts, key=lambda m: len(m.container), reverse=True):
        rest = _under(normal, mount.container)
        if rest is not None:
            return os.path.join(mount.host, rest) if rest else mount.host
    return None


_PATH = re.compile(r"(?<![\w.~-])/[^\s'\"=:,;]*")
"""An absolute path inside an argument: `/a/b` alone, or after `=`, `:` or `,` (`++input_file=/a/b`)."""


def translate_text(text: str, mounts: list[Mount]) -> str:
    """`text` with every absolute path under a mount replaced by the container's name for it."""

    def replace(match: re.Match) -> str:
        inside = to_container(match.group(0), mounts)
        return inside if inside is not None else match.group(0)

    return _PATH.sub(replace, text)


def text_on_host(text: str, mounts: list[Mount]) -> str:
    """What a job in a container wrote (a log tail, an error), with its paths under a mount given the launcher's
    names, so that the user can open them."""

    def replace(match: re.Match) -> str:
        outside = to_host(match.group(0), mounts)
        return outside if outside is not None else match.group(0)

    return _PATH.sub(replace, text) if mounts else text


def unmounted_paths(texts: Iterable[str], mounts: list[Mount]) -> list[str]:
    """Absolute paths in `texts` that exist on this machine, are under no mount and not the image's own system
    folders (/usr, /bin, /etc, ...): what a container would not see."""
    system = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/opt", "/proc", "/dev", "/sys")
    scratch = ("/tmp", "/var/tmp", "/dev/shm")  # every container has these folders (not what is in them)
    found = []
    for text in texts:
        for match in _PATH.finditer(text):
            path = match.group(0)
            if path.startswith("//") or os.path.normpath(path) in ("/", *scratch):
                continue  # `//` in code (`7 // 2`), a URL's `//host`, or a scratch folder itself
            if os.path.exists(path) and to_container(path, mounts) is None:
                if not any(_under(os.path.normpath(path), root) is not None for root in system):
                    found.append(path)
    return found


def require_mounted(what: str, path: str, mounts: list[Mount], cluster: str) -> str:
    """The container's name for `path`; a ConfigError naming `what` when no mount of `cluster` holds it."""
    inside = to_container(path, mounts)
    if inside is None:
        known = ", ".join(f"{m.host}:{m.container}" for m in mounts) or "none"
        raise ConfigError(
            f"{what} {path} is under no mount of cluster '{cluster}' (mounts: {known}), so its containers cannot "
            "see it: put it under a mounted folder, or add a mount for it"
        )
    return inside


def require_all_mounted(job: "Job", mounts: list[Mount], cluster: str) -> None:
    """A ConfigError naming the first existing path of the job's arguments and environment under no mount."""
    unseen = unmounted_paths(job_texts(job), mounts)
    if unseen:
        require_mounted(f"{job.name}'s argument", unseen[0], mounts, cluster)


def job_texts(job: "Job") -> list[str]:
    """Every argument and environment value of a job and its services."""
    texts = [*job.command, *(a for c in job.next_commands for a in c), *job.env.values()]
    for service in job.services:
        texts += [*service.command, *service.env.values()]
    return texts


MODEL_NAME_ARGS = ("++server.model=", "++judge.model=", "--served_model_name=")
"""Arguments that name the model as requests ask for it, not a path a job opens: the server serves it under the
launcher's name wherever each side runs, so these are never translated."""
MODEL_NAME_ENV = ("ASSAY_SERVER_MODEL",)


def translate_args(values: list[str], mounts: list[Mount]) -> list[str]:
    """`translate_text` for each argument, except those that name a model (MODEL_NAME_ARGS)."""
    return [v if v.startswith(MODEL_NAME_ARGS) else translate_text(v, mounts) for v in values]


def translate_env(values: dict[str, str], mounts: list[Mount]) -> dict[str, str]:
    return {k: v if k in MODEL_NAME_ENV else translate_text(v, mounts) for k, v in values.items()}


def in_container(spec: "JobSpec", mounts: list[Mount], log_dir: bool = True) -> "JobSpec":
    """The job as its container sees it: every launcher path under a mount replaced by the container's name (the
    log folder too, unless `log_dir` is false: a runner on the host writes there); model names stay as they are."""

    def args(values: list[str]) -> list[str]:
        return translate_args(values, mounts)

    def env(values: dict[str, str]) -> dict[str, str]:
        return translate_env(values, mounts)

    return dataclasses.replace(
        spec,
        command=args(spec.command),
        env=env(spec.env),
        next_commands=[args(c) for c in spec.next_commands],
        services=[dataclasses.replace(s, command=args(s.command), env=env(s.env)) for s in spec.services],
        log_dir=translate_text(spec.log_dir, mounts) if spec.log_dir and log_dir else spec.log_dir,
    )
