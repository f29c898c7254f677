"""The `assay` command: one subcommand per pipeline function, generated from its signature.

The Python API and the CLI are the same functions, so they cannot drift: `--x` options are the
function's parameters (named as in Python, with underscores), their help is the docstring's `Args:`
entry, and `++key=value` arguments are passed on to the stage's config as `ctx`.
"""

from __future__ import annotations

import inspect
import re
import sys
import typing
from typing import Any, Callable, Optional

import typer

from ..core.config import ConfigError
from .cluster import ClusterConfigError
from .evaluate import eval as eval_
from .executors import DependencyError, SubmissionError
from .experiment import UnknownUpstreamError
from .generate import generate
from .grpo import grpo
from .job import JobFailedError
from .results import evaluate_results, prepare_data, summarize_results
from .run_cmd import run_cmd
from .sft import merge_lora, prepare_sft_data, sft
from .start_server import start_server

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="assay: evaluate, generate, fine-tune and re-evaluate LLMs, locally or on Slurm.",
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """assay: evaluate, generate, fine-tune and re-evaluate LLMs, locally or on Slurm.

    `--x` options configure how jobs run; `++key=value` arguments go to the stage's config.
    """


USER_ERRORS = (ConfigError, ClusterConfigError, DependencyError, SubmissionError, UnknownUpstreamError, JobFailedError)


def _arg_docs(fn: Callable) -> dict[str, str]:
    """`name: help` entries of a Google-style `Args:` section."""
    doc = inspect.getdoc(fn) or ""
    match = re.search(r"^Args:\n(.*?)(?:\n\S|\Z)", doc, flags=re.S | re.M)
    docs: dict[str, str] = {}
    current = None
    for line in (match.group(1) if match else "").splitlines():
        entry = re.match(r"^\s{4}(\w+):\s*(.*)$", line)
        if entry:
            current = entry.group(1)
            docs[current] = entry.group(2)
        elif current and line.strip():
            docs[current] += " " + line.strip()
    return docs


def _cli_type(annotation: Any) -> Any:
    """The type typer parses; lists and unions (e.g. run_after) arrive as a comma-separated string."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Union and len(args) == 1:
        annotation = args[0]
    if annotation in (str, int, float, bool):
        return Optional[annotation]
    if typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,):
        return Optional[list[str]]  # several values: `assay summarize_results dir1 dir2`
    return Optional[str]


def _cli_wrapper(fn: Callable, positional: tuple[str, ...]) -> Callable:
    docs = _arg_docs(fn)
    hints = typing.get_type_hints(fn)
    params = []
    takes_ctx = "ctx" in inspect.signature(fn).parameters
    if takes_ctx:
        params.append(inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context))
    for name, param in inspect.signature(fn).parameters.items():
        if name == "ctx":
            continue
        default = None if param.default is inspect.Parameter.empty else param.default
        required = param.default is inspect.Parameter.empty
        cli_type = _cli_type(hints.get(name, str))
        help_text = docs.get(name, "")
        if name in positional:
            info = typer.Argument(... if required else default, help=help_text, show_default=False)
        elif cli_type is Optional[bool]:
            info = typer.Option(default, f"--{name}/--no_{name}", help=help_text)
        else:
            info = typer.Option(... if required else default, f"--{name}", help=help_text)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=cli_type))
    # the context must come first and be positional-or-keyword; everything else keyword-only
    params = [p if p.name == "ctx" else p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]

    def wrapper(**kwargs):
        try:
            fn(**kwargs)
        except USER_ERRORS as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2 if isinstance(exc, (ConfigError, ClusterConfigError)) else 1) from None
        except KeyboardInterrupt:  # the pipeline already said what it stopped; no traceback
            raise typer.Exit(130) from None

    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__doc__ = (inspect.getdoc(fn) or "").split("\n\nArgs:")[0]
    wrapper.__name__ = fn.__name__
    return wrapper


def add_pipeline_command(fn: Callable, name: Optional[str] = None, positional: tuple[str, ...] = ()) -> None:
    """Expose a pipeline function as `assay <name>`."""
    takes_ctx = "ctx" in inspect.signature(fn).parameters
    settings = {"allow_extra_args": True, "ignore_unknown_options": True} if takes_ctx else {}
    app.command(name=name or fn.__name__, context_settings=settings)(_cli_wrapper(fn, positional))


add_pipeline_command(run_cmd, positional=("command",))
add_pipeline_command(generate)
add_pipeline_command(eval_, name="eval")
add_pipeline_command(prepare_data, positional=("benchmark",))
add_pipeline_command(evaluate_results)
add_pipeline_command(summarize_results, positional=("output_dirs",))
add_pipeline_command(prepare_sft_data)
add_pipeline_command(sft)
add_pipeline_command(merge_lora)
add_pipeline_command(grpo)
add_pipeline_command(start_server)

model_app = typer.Typer(no_args_is_help=True, help="The embedded default models.")
app.add_typer(model_app, name="model")


@model_app.command("prepare")
def _model_prepare(
    name: str = typer.Argument("smollm2", help="Alias of the embedded model."),
    cache_dir: Optional[str] = typer.Option(
        None, "--cache_dir", help="Defaults to $ASSAY_CACHE_DIR/models or ~/.cache/assay/models."
    ),
) -> None:
    """Convert an embedded model (from its pip package) into a Hugging Face folder, once; print the folder."""
    from ..inference.embedded_model import EmbeddedModelError, prepare_model

    try:
        print(prepare_model(name, cache_dir))
    except (EmbeddedModelError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


benchmark_app = typer.Typer(no_args_is_help=True, help="Checks of the shipped benchmarks.")
app.add_typer(benchmark_app, name="benchmark")


@benchmark_app.command("validate")
def _benchmark_validate(
    name: str = typer.Argument(..., help="The benchmark, e.g. mlcode."),
    sandbox_url: Optional[str] = typer.Option(
        None, "--sandbox_url", help="A running sandbox; by default one is started and stopped."
    ),
    tasks: Optional[str] = typer.Option(
        None, "--tasks", help="Comma-separated task ids or categories; by default all."
    ),
    jobs: int = typer.Option(4, "--jobs", help="Samples graded at once."),
) -> None:
    """Grade the benchmark's own reference solutions (and broken variants of them) through the real grader; exit 1 on any violation."""
    from ..benchmarks.validate import validate_command

    raise typer.Exit(validate_command(name, sandbox_url=sandbox_url, tasks=tasks, jobs=jobs))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
