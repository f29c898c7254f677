"""Generation with code execution: the model writes code, the sandbox runs it, the model reads the output.

    python -m assay.inference.generate ++code_execution=true ++code_tags=generic ++prompt_config=generic/math_code \\
        ++input_file=in.jsonl ++output_file=out.jsonl ++server.model=smollm2 [++sandbox_url=http://127.0.0.1:6000]

One sample is one loop:
1. render the prompt (the code tags say how: the tokenizer's chat template, or harmony for gpt-oss);
2. generate until the code ends (a stop string, or gpt-oss's `<|call|>`) or the answer ends;
3. if the text now ends in a code block or tool call, run it in the sample's own sandbox session (its
   variables live on into the sample's next block), append the output in the model's format, and go to 2;
4. stop at the answer, at `tokens_to_generate` generated tokens over all turns, or when the model keeps
   writing code past `max_code_executions` (each block past it gets a message instead of output; after
   MAX_REFUSED_CALLS such messages the sample ends with finish_reason `max_code_executions`).
The session is deleted when the sample ends. The line gets `code_executions`: one entry per block, with
the code, the output the model saw, the streams, status and duration (code_execution_output.py).

Why text completions, in chat mode too: after an output, the model must continue the very text it was
writing, inside its own turn. A chat API would close the assistant's turn and open a new one; only some
servers can continue a final message, and none can feed a harmony tool message back. So the loop always
renders the prompt itself and sends /v1/completions, whatever `use_completions_api` says: generic tags
need the model's tokenizer for its chat template (`++tokenizer=` when server.model is not a local path
or known alias), gpt-oss needs none. Servers without /v1/completions cannot run this loop.

Token accounting: each turn asks for what is left of `tokens_to_generate`; `num_generated_tokens` sums
the turns' completion tokens (outputs the loop appends are prompt, not generation). A server that reports
no usage is charged a token per 4 characters (at least one per turn), so the budget still ends the loop.
The outputs do grow the prompt: when a continuation no longer fits the model's context (the server's 400),
the sample ends with finish_reason `length` and keeps its text.

A sample is written when its loop ends; a stage killed midway redoes unfinished samples from the start,
in a new session.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import AsyncIterator, Optional

from ..core.config import ConfigError
from .code_execution_output import execution_record, limit_message, shown_output
from .code_execution_tags import CodeExecutionError, CodeTags, describe, load_code_tags
from .model_client import ContextLengthError

MAX_REFUSED_CALLS = 3
"""Blocks past max_code_executions that get a message before the sample is ended."""


__all__ = [
    "CodeExecutionError",
    "CodeExecutionSetup",
    "CodeExecutionLoop",
    "prepare_code_execution",
    "code_execution_loop",
    "MAX_REFUSED_CALLS",
]


@dataclass
class CodeExecutionSetup:
    """What the stage checked before sending anything: the code tags and a sandbox that answers."""

    tags: CodeTags
    sandbox_url: str


def prepare_code_execution(cfg, health_timeout_s: float = 30.0) -> CodeExecutionSetup:
    """Load the code tags and find the sandbox, failing with a ConfigError that says what to set."""
    from ..sandbox.client import SandboxClient, configured_url

    tags = load_code_tags(cfg.code_tags)
    url = configured_url(cfg.sandbox_url)
    if not url:
        raise ConfigError(
            "code_execution=true needs a sandbox: start one (python -m assay.sandbox.server --port 6000) "
            "and pass ++sandbox_url=http://127.0.0.1:6000 or set ASSAY_SANDBOX_URL, or run through "
            "generate(..., with_sandbox=True), which starts one beside the job"
        )
    try:
        with SandboxClient(url) as sandbox:
            sandbox.wait_until_healthy(health_timeout_s)
    except Exception as exc:  # connection refused, wrong token, timeout: all mean the same to the user
        raise ConfigError(f"the sandbox at {url} does not answer /health ({type(exc).__name__}: {exc})") from None
    print(f"code execution: {describe(tags)}; sandbox {url}; text completions", flush=True)
    return CodeExecutionSetup(tags=tags, sandbox_url=url)


class CodeExecutionLoop:
    """Runs the generate / execute / continue loop of one sample at a time (many concurrently)."""

    def __init__(self, cfg, tags: CodeTags, sandbox, max_sessions: int = 128):
        self.cfg = cfg
        self.tags = tags
        self.sandbox = sandbox
        self.limits = cfg.server.code_execution
        # A sample holds one sandbox session from its first call to its end: never more at once than
        # the sandbox has room for, so the 129th concurrent sample waits instead of failing.
        self.sessions = asyncio.Semaphore(max(1, max_sessions))

    async def generate(self, client, renderer, body: dict, sample: dict) -> dict:
        """The generation fields of one sample's output line."""
        return await self.run(client, self.tags.render_prompt(renderer, sample, self.cfg), body)

    def _request(self, body: dict) -> dict:
        request = {**body, **self.tags.request_fields(self.cfg.server.server_type)}
        stop = list(body.get("stop") or [])
        request["stop"] = stop + [s for s in self.tags.stop if s not in stop]
        return request

    async def run(self, client, prompt: str, body: dict) -> dict:
        request = self._request(body)
        limit = body.get("max_tokens") or self.cfg.inference.tokens_to_generate
        budget = int(limit) if limit else None  # None: until the model's context is full
        session_id = f"generate-{uuid.uuid4().hex}"
        text, tokens, executed, refused, finish = "", 0, 0, 0, None
        executions: list[dict] = []
        try:
            while True:
                if budget is not None and tokens >= budget:
                    finish = "length"
                    break
                turn_request = request if budget is None else {**request, "max_tokens": budget - tokens}
                try:
                    turn = await client.complete(prompt + text, turn_request)
                except ContextLengthError:
                    if text:  # the outputs filled the model's context
                        finish = "length"
                        break
                    raise
                text += turn.text
                used = turn.num_generated_tokens
                tokens += used if used is not None else max(1, len(turn.text) // 4)
                finish = turn.finish_reason
                if finish != "stop":
                    break
                call = self.tags.pending_call(text)
                if call is None:
                    if self.tags.stopped_midway(turn.text):
                        continue
                    break
                if call.runnable and executed < self.limits.max_code_executions:
                    if not executed:
                        await self.sessions.acquire()
                    executed += 1  # counted before the call: a failed call may still have made the session
                    result = await self._execute(call.code, session_id)
                    output = shown_output(result, self.limits.max_output_chars)
                    executions.append(execution_record(call.code, output, result))
                else:
                    if refused >= MAX_REFUSED_CALLS:
                        finish = "max_code_executions"
                        break
                    refused += 1
                    output = limit_message(self.limits.max_code_executions) if call.runnable else ""
                    if call.runnable:
                        executions.append(execution_record(call.code, output))
                text += call.close + self.tags.render_output(call, output)
        finally:
            if executed:
                with contextlib.suppress(Exception):
                    await self.sandbox.delete_session(session_id)
                self.sessions.release()
        return {
            self.cfg.generation_key: text,
            "num_generated_tokens": tokens,
            "finish_reason": finish,
            "truncated": finish == "length",
            "error": None,
            "code_executions": executions,
        }

    async def _execute(self, code: str, session_id: str):
        import httpx

        from ..sandbox.client import SandboxHTTPError

        for attempt in range(FULL_SANDBOX_RETRIES + 1):
            try:
                return await self.sandbox.execute(
                    code,
                    session_id=session_id,
                    timeout=self.limits.code_execution_timeout,
                    max_output_chars=self.limits.max_output_chars,
                )
            except SandboxHTTPError as exc:
                # 503: the sandbox is full (other jobs share it) and ran nothing; wait and ask again.
                if exc.status_code != 503 or attempt == FULL_SANDBOX_RETRIES:
                    raise CodeExecutionError(f"sandbox at {self.sandbox.url} failed: {exc}") from None
                await asyncio.sleep(_retry_delay(attempt, exc.retry_after))
            except httpx.HTTPError as exc:  # the call may have run: never repeated on a stateful session
                raise CodeExecutionError(f"sandbox at {self.sandbox.url} failed: {type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def code_execution_loop(cfg, setup: Optional[CodeExecutionSetup]) -> AsyncIterator[Optional[CodeExecutionLoop]]:
    """The loop with its sandbox connection pool for the stage's lifetime; None when code execution is off."""
    if setup is None:
        yield None
        return
    from ..sandbox.client import AsyncSandboxClient

    async with AsyncSandboxClient(setup.sandbox_url, max_connections=max(8, cfg.max_concurrent_requests)) as sandbox:
        yield CodeExecutionLoop(cfg, setup.tags, sandbox, await sandbox_capacity(sandbox))


async def sandbox_capacity(sandbox) -> int:
    """How many sessions the sandbox holds at once (all its workers), from its /health."""
    try:
        health = await sandbox.health()
    except Exception:  # noqa: BLE001 - prepare_code_execution checked it answers; fall back to its default
        return 128
    workers = health.get("workers") or [health]
    total = sum(int(w.get("max_sessions") or 0) for w in workers if isinstance(w, dict))
    return total or 128


FULL_SANDBOX_RETRIES = 30
"""Attempts after a 503 (sandbox full) before a code call fails the sample: about 2 minutes of waiting."""


def _retry_delay(attempt: int, retry_after: Optional[str]) -> float:
    try:
        if retry_after is not None:
            return min(10.0, float(retry_after))
    except ValueError:
        pass
    return min(10.0, 0.25 * 2**attempt)
