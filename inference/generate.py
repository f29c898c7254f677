"""The generation stage: one answer per input line, many requests in flight, nothing lost on a crash.

    python -m assay.inference.generate ++input_file=in.jsonl ++output_file=out.jsonl \\
        ++server.model=smollm2 ++server.port=5000 ++inference.temperature=0.7

Several outputs (seeds, chunks, benchmarks) in one process, sharing one in-flight limit so the
server stays busy whatever the mix: common overrides first, then one `--task` group per output,
each with the overrides of its own:

    python -m assay.inference.generate ++server.port=5000 ++max_concurrent_requests=512 \\
        --task ++input_file=a.jsonl ++output_file=a/output-rs0.jsonl ++inference.random_seed=0 \\
        --task ++input_file=a.jsonl ++output_file=a/output-rs1.jsonl ++inference.random_seed=1

Each finished sample is appended to `<output_file>.partial` (with its input index); a restart keeps
those lines and sends only the rest, if `<output_file>.meta.json` says the same work produced them
(inference/generation_task.py, output_record.py). When every sample of an output is done, it is
written in input order under a temporary name and renamed: `output_file` exists only when complete.
Memory holds the requests in flight and a few bytes per line, not the data.

With `++code_execution=true ++code_tags=generic` each sample is a loop of generation and code runs in
the sandbox (inference/code_execution.py); the line then also has `code_executions`.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from contextlib import AsyncExitStack
from typing import Optional, cast

from ..core.config import ConfigError, compose_stage_config, run_stage
from ..core.jsonl import BatchedAppender
from ..core.output_lock import OutputLockedError
from .config import GenerateConfig
from .generation_task import INDEX_KEY, GenerationTask, chunk_bounds, is_final_error

__all__ = ["INDEX_KEY", "chunk_bounds", "generate", "generate_all", "Renderer", "RequestsFailedError", "main"]


@functools.lru_cache(maxsize=None)
def _tokenizer(name: str):
    """One tokenizer per name for the whole process: every task of a job (seeds, benchmarks) shares it."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as exc:
        raise ConfigError(
            f"cannot load the tokenizer '{name}', whose chat template renders text completions "
            f"(use_completions_api, code_execution): {exc}; set ++tokenizer=<path>"
        ) from None


class Renderer:
    """Turns an input line into a request: chat messages, or a prompt rendered with the chat template."""

    def __init__(self, cfg: GenerateConfig, chat_template: Optional[bool] = None):
        """`chat_template` overrides whether the tokenizer is loaded (code execution decides it by its code tags)."""
        from .prompt import load_prompt_config

        self.cfg = cfg
        self.prompt = load_prompt_config(cfg.prompt_config)
        self.tokenizer = None
        if cfg.use_completions_api if chat_template is None else chat_template:
            from .embedded_model import resolve_model

            self.tokenizer = _tokenizer(resolve_model(cfg.tokenizer or cfg.server.model))

    def messages(self, sample: dict) -> list[dict]:
        messages = self.prompt.messages(sample, self.cfg.system_message)
        if self.cfg.prompt_suffix:
            messages[-1] = {**messages[-1], "content": messages[-1]["content"] + self.cfg.prompt_suffix}
        return messages

    def text(self, sample: dict) -> str:
        assert self.tokenizer is not None  # loaded in __init__ whenever prompts are rendered as text
        text = self.tokenizer.apply_chat_template(
            self.messages(sample), tokenize=False, add_generation_prompt=True, **self.cfg.chat_template_kwargs
        )
        return cast(str, text)  # tokenize=False: the rendered string (the stubs do not tie the two)


async def generate_one(
    client, renderer: Renderer, cfg: GenerateConfig, body: dict, sample: dict, code_loop=None
) -> dict:
    """The output line of one sample; a request that failed for good is recorded on it, never raised."""
    from .model_client import ContextLengthError, RequestFailedError

    start = time.monotonic()
    out = dict(sample)
    try:
        if code_loop is not None:  # generate, run the code, continue: inference/code_execution.py
            out.update(await code_loop.generate(client, renderer, body, sample))
        else:
            if cfg.use_completions_api:
                result = await client.complete(renderer.text(sample), body)
            else:
                result = await client.chat(renderer.messages(sample), body, cfg.chat_template_kwargs)
            out.update(
                {
                    cfg.generation_key: result.text,
                    "num_generated_tokens": result.num_generated_tokens,
                    "finish_reason": result.finish_reason,
                    "truncated": result.finish_reason == "length",
                    "error": None,
                }
            )
    except RequestFailedError as exc:
        final = isinstance(exc, ContextLengthError)
        out.update(
            {
                cfg.generation_key: None,
                "num_generated_tokens": 0,
                "finish_reason": "context_length" if final else None,
                "truncated": final,
                "error": "context_length" if final else str(exc),
            }
        )
        if final:
            out["error_detail"] = str(exc)
    out["generation_time"] = time.monotonic() - start
    return out


class _Progress:
    """One bar for the whole process: samples of every task, generated tokens per second, ETA."""

    def __init__(self, total: int, initial: int):
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            initial=initial,
            desc="generate",
            unit="sample",
            dynamic_ncols=True,
            file=sys.stderr,
            mininterval=1.0,
        )
        self.tokens = 0
        self.started = time.monotonic()
        self._shown = 0.0

    def update(self, tokens: Optional[int]) -> None:
        self.tokens += tokens or 0
        self.bar.update(1)
        now = time.monotonic()
        if now - self._shown >= 1.0:
            self._shown = now
            self.bar.set_postfix_str(f"{self.tokens / max(now - self.started, 1e-9):.0f} tok/s", refresh=False)

    def close(self) -> None:
        self.bar.close()


class _TaskRun:
    """What one task needs to send its requests: its renderer and its code-execution setup (if any)."""

    def __init__(self, task: GenerationTask, renderer: Renderer, code_setup=None):
        self.task = task
        self.renderer = renderer
        self.code_setup = code_setup

    @property
    def cfg(self) -> GenerateConfig:
        return self.task.cfg


async def _run_all(runs: list[_TaskRun], limit: int, progress: _Progress) -> None:
    """Send every task's samples, at most `limit` in flight over all of them, each answer appended to its task's
    partial file as it arrives (the in-order files are written afterwards, by _finish)."""
    from .code_execution import code_execution_loop
    from .model_client import ModelClient

    semaphore = asyncio.Semaphore(limit)
    first_error: list[BaseException] = []

    async def run_task(run: _TaskRun, stack: AsyncExitStack) -> None:
        cfg = run.cfg
        body = cfg.inference.request_body(cfg.server.server_type)
        client = await stack.enter_async_context(ModelClient(cfg.server, max_connections=limit))
        code_loop = await stack.enter_async_context(code_execution_loop(cfg, run.code_setup))
        in_flight: set[asyncio.Task] = set()
        with BatchedAppender(run.task.partial) as appender:

            async def one(index: int, sample: dict) -> None:
                try:
                    line = await generate_one(client, run.renderer, cfg, body, sample, code_loop)
                    line[INDEX_KEY] = index
                    offset = appender.append(line)
                    error = line.get("error")
                    run.task.record_answer(index, offset, ok=error is None or is_final_error(error))
                    progress.update(line.get("num_generated_tokens"))
                except BaseException as exc:  # a bug, not a failed request (those are recorded on the line)
                    if not first_error:
                        first_error.append(exc)
                finally:
                    semaphore.release()

            for index, sample in run.task.todo():
                if first_error:
                    break
                await semaphore.acquire()
                job = asyncio.create_task(one(index, sample))
                in_flight.add(job)
                job.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.gather(*in_flight)

    async with AsyncExitStack() as stack:
        await asyncio.gather(*(run_task(run, stack) for run in runs))
    if first_error:
        raise first_error[0]


class StoppedBySignal(Exception):
    """SIGTERM or the time-limit warning (SIGUSR2) stopped the run; what finished is on disk."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


async def _run_until_signal(runs: list[_TaskRun], limit: int, progress: _Progress) -> None:
    """_run_all, stopped cleanly by SIGTERM or SIGUSR2: the partial files are synced and closed on the way out."""
    import signal

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        main.cancel()

    watched = (signal.SIGTERM, signal.SIGUSR2)
    for sig in watched:
        loop.add_signal_handler(sig, stop, sig)
    try:
        await _run_all(runs, limit, progress)
    except asyncio.CancelledError:
        if received:
            raise StoppedBySignal(received[0]) from None
        raise
    finally:
        for sig in watched:
            loop.remove_signal_handler(sig)


def _check_prompts(task: GenerationTask, renderer: Renderer) -> None:
    """A field the prompt needs but the data lacks fails now, before any request, not midway."""
    for _, sample in task.todo():
        renderer.messages(sample)


def generate_all(cfgs: list[GenerateConfig]) -> None:
    """Run several outputs' generations in one event loop under one in-flight limit (the first config's)."""
    tasks: list[GenerationTask] = []
    try:
        for cfg in cfgs:
            tasks.append(GenerationTask(cfg).open())
        runs = []
        for task in tasks:
            cfg = task.cfg
            if task.complete_already:
                print(f"{cfg.output_file} is complete already (same input and config); nothing to do", flush=True)
                continue
            todo = task.total - task.done_before
            print(
                f"generate: {task.total} samples, {task.done_before} done before, {todo} to go -> {cfg.output_file}",
                flush=True,
            )
            code_setup = None
            if cfg.code_execution and todo:  # the code tags and a sandbox that answers, before any request is sent
                from .code_execution import prepare_code_execution

                code_setup = prepare_code_execution(cfg)
            renderer = Renderer(cfg, chat_template=code_setup.tags.needs_chat_template if code_setup else None)
            _check_prompts(task, renderer)
            runs.append(_TaskRun(task, renderer, code_setup))
        if runs:
            total = sum(r.task.total for r in runs)
            progress = _Progress(total, sum(r.task.done_before for r in runs))
            try:
                asyncio.run(_run_until_signal(runs, cfgs[0].max_concurrent_requests, progress))
            finally:
                progress.close()
        problems = [p for p in (_finish(r.task) for r in runs) if p]
    finally:
        for task in tasks:
            task.close()
    if problems:
        raise RequestsFailedError("\n".join(problems))


def _finish(task: GenerationTask) -> Optional[str]:
    """Write the task's output, or say why not (too many failed requests)."""
    cfg = task.cfg
    failed, first = task.failures()
    if failed > cfg.max_failed_fraction * task.total:
        # the output must not look complete: later stages (grading) would score failures as wrong answers
        return (
            f"{failed} of {task.total} requests failed for {cfg.output_file} (allowed: max_failed_fraction="
            f"{cfg.max_failed_fraction}); first error: {str(first)[:500]}\n{task.total - failed} answers are kept, "
            f"each failed request is recorded with its error, in {task.partial}; run the stage again to retry only "
            "the failed ones"
        )
    written = task.finish()
    print(
        f"generate: wrote {written} lines to {cfg.output_file}"
        + (f" ({failed} failed requests recorded with their error)" if failed else "")
    )
    return None


def generate(cfg: GenerateConfig) -> None:
    generate_all([cfg])


class RequestsFailedError(RuntimeError):
    """More requests failed for good than the stage may leave behind."""


def split_tasks(argv: list[str]) -> tuple[list[str], list[list[str]]]:
    """(common overrides, one override list per `--task` group)."""
    common: list[str] = []
    groups: list[list[str]] = []
    for arg in argv:
        if arg == "--task":
            groups.append([])
        elif groups:
            groups[-1].append(arg)
        else:
            common.append(arg)
    return common, groups


def main(argv=None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    prog = "python -m assay.inference.generate"
    try:
        if "--task" in args:
            common, groups = split_tasks(args)
            try:
                cfgs = [compose_stage_config(GenerateConfig, common + group) for group in groups]
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
            outputs = [c.output_file for c in cfgs]
            if len(set(outputs)) != len(outputs):
                print("error: two --task groups write the same output_file", file=sys.stderr)
                raise SystemExit(2)
            try:
                generate_all(cfgs)
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
        else:
            run_stage(GenerateConfig, generate, argv=args, prog=prog)
    except RequestsFailedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except OutputLockedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(4) from None
    except StoppedBySignal as exc:
        print(
            f"[assay] generate: stopped by signal {exc.signum}; every finished sample is on disk, a rerun resumes",
            file=sys.stderr,
        )
        raise SystemExit(3) from None


if __name__ == "__main__":
    main()
