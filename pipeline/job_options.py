"""The options every pipeline function shares: where its jobs run, under which name, after what, and whether
the launcher waits. Declared and documented once, here; `takes_job_options` adds them to a function.

    @takes_job_options(expname="eval")
    def eval(benchmarks: str, ..., options: JobOptions = JOB_DEFAULTS, ctx=None): ...

    eval(benchmarks="smallmath:4", ..., cluster="slurm", run_after="sft", dry_run=True)   # callers pass them flat

The decorated function's signature (and so the CLI, which is generated from it) lists the options as keyword
arguments after the function's own, with the documentation below appended to its `Args:`. `takes_options` does
the same for any options dataclass (server_options.py's `ServerOptions`).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, TypeVar, Union

from ..core.config import field_docs

RunAfter = Union[str, Iterable[str], None]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class JobOptions:
    """How the jobs of one pipeline call run."""

    cluster: str = "local"
    """Cluster config name (a YAML in cluster_configs/) or path."""
    expname: str = ""
    """Experiment name: the jobs' name, and what a later `run_after` refers to."""
    time: Optional[str] = None
    """Time limit per job (Slurm format); the cluster's default when unset."""
    run_after: RunAfter = None
    """Expname(s) to wait for (comma-separated or a list), e.g. the sft run whose checkpoints this uses."""
    dependency_type: str = "afterok"
    """afterok (start only if every upstream job succeeded) or afterany."""
    dependent_jobs: int = 0
    """Follow-up copies of each job for short time limits; each resumes where the previous stopped."""
    dry_run: bool = False
    """Print what would be submitted and submit nothing."""
    wait: Optional[bool] = None
    """Wait for the jobs and raise on failure; default: yes on local clusters, no on Slurm."""


JOB_DEFAULTS = JobOptions()
"""The default of a decorated function's `options` parameter (frozen; the decorator always passes the call's own)."""


def takes_job_options(expname: str, without: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Give a function that takes `options: JobOptions` the options as flat keyword arguments.

    `expname` is the function's default experiment name; `without` names options that do not apply (such a
    function gets their defaults).
    """
    return takes_options(JobOptions, "options", {"expname": expname}, without)


def takes_options(
    cls: type, parameter: str, defaults: Optional[dict[str, Any]] = None, without: tuple[str, ...] = ()
) -> Callable[[F], F]:
    """Give a function that takes `<parameter>: <cls>` (a frozen dataclass of options) the fields as flat keyword
    arguments, each documented once (its field docstring, appended to the function's `Args:`).

    `defaults` overrides fields' defaults for this function; `without` names fields that do not apply (the
    function gets their defaults). Decorators stack: each one flattens its own dataclass.
    """
    names = [f.name for f in dataclasses.fields(cls) if f.name not in without]
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)} | (defaults or {})

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        if parameter not in signature.parameters:
            raise TypeError(f"{fn.__name__} must take `{parameter}: {cls.__name__}` to be given its options")
        own = [p for p in signature.parameters.values() if p.name != parameter]
        if any(p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in own):
            raise TypeError(f"{fn.__name__}: options go to functions whose parameters can all be passed by name")
        clash = sorted(set(names) & {p.name for p in own})
        if clash:
            raise TypeError(f"{fn.__name__} declares option(s) {', '.join(clash)} of {cls.__name__} itself")
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=defaults[name], annotation=hints[name])
            for name in names
        ]
        keyword_only = [p for p in own if p.kind is inspect.Parameter.KEYWORD_ONLY]
        positional = [p for p in own if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        wrapper_signature = signature.replace(parameters=positional + keyword_only + added)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = wrapper_signature.bind(*args, **kwargs)
            values = {name: bound.arguments.pop(name, defaults[name]) for name in names}
            # by keyword: a stacked decorator's parameters sit between this function's own and `parameter`
            return fn(**bound.arguments, **{parameter: cls(**values)})

        own_hints = {k: v for k, v in typing.get_type_hints(fn).items() if k != parameter}
        wrapper.__signature__ = wrapper_signature  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**own_hints, **{name: hints[name] for name in names}}
        wrapper.__name__, wrapper.__qualname__, wrapper.__module__ = fn.__name__, fn.__qualname__, fn.__module__
        wrapper.__doc__ = _with_option_docs(inspect.getdoc(fn) or "", {name: docs[name] for name in names})
        return typing.cast(F, wrapper)

    return decorate


def _with_option_docs(doc: str, option_docs: dict[str, str]) -> str:
    """The docstring with one `name: doc` entry per option added to the end of its `Args:` section."""
    entries = "\n".join(f"    {name}: {' '.join(text.split())}" for name, text in option_docs.items())
    if "\nArgs:\n" not in doc:
        return f"{doc}\n\nArgs:\n{entries}"
    head, args = doc.split("\nArgs:\n", 1)
    body, sep, rest = args.partition("\n\n")
    return f"{head}\nArgs:\n{body.rstrip()}\n{entries}" + (sep + rest if sep else "")
