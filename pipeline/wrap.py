"""`wrap_arguments`: pass stage overrides from a Python launcher exactly as a shell would.

`eval(ctx=wrap_arguments("++inference.temperature=0.6 ++prompt_config='a b'"), ...)` gives the stage
the same argv that `python -m assay.inference.generate ++inference.temperature=0.6 ++prompt_config='a b'`
gets from a shell: the string is split with shell rules (shlex), so quoted values with spaces survive,
and the pipeline re-quotes each argument when it writes the job's command, so nothing is split twice.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Union

from ..core.config import ConfigError


@dataclass
class WrappedArguments:
    """Stands in for the CLI's click context: the pipeline reads `.args` from either."""

    args: list[str] = field(default_factory=list)

    def __iter__(self):
        return iter(self.args)


def wrap_arguments(arguments: Union[str, Iterable[str]]) -> WrappedArguments:
    """Split a string of `++key=value` overrides by shell rules (a list is taken as already split)."""
    if isinstance(arguments, str):
        return WrappedArguments(shlex.split(arguments))
    return WrappedArguments([str(a) for a in arguments])


def extra_args(ctx) -> list[str]:
    """The stage overrides carried by `ctx`: a click/typer context, a WrappedArguments, a string, or None."""
    if ctx is None:
        return []
    if isinstance(ctx, str):
        return wrap_arguments(ctx).args
    if isinstance(ctx, (list, tuple)):
        return [str(a) for a in ctx]
    return list(getattr(ctx, "args", []) or [])


def override_key(text: str) -> str:
    """The key of one `++key=value` (or `+key=`, `~key`) override."""
    return text.lstrip("+~").split("=", 1)[0]


def refuse_pipeline_keys(overrides: list[str], keys: Mapping[str, str], function: str) -> None:
    """Keys the pipeline sets itself (`keys`: stage key -> the function's option) are refused in overrides."""
    for text in overrides:
        key = override_key(text)
        if key in keys:
            raise ConfigError(
                f"'{text}': {key} is set by the pipeline; use the --{keys[key]} option of {function} instead"
            )
