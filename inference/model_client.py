"""An async client for OpenAI-compatible servers (vLLM, SGLang, hosted APIs).

Retries, with backoff, what may succeed later: connection errors, timeouts, 5xx, 408 and 429 (waiting
at least the server's Retry-After), and 200 answers that are not a well-formed completion. Other 4xx
mean the request itself is wrong and are not retried. One request that does not fit the model's
context is not a failure of the run: when only `max_tokens` is too large it is resent with what is
left of the context (one warning), and a prompt that alone fills the context raises
ContextLengthError, which the stage records on that sample's line.

One aiohttp connection pool per stage: on this class of machine aiohttp sends chat requests about
15 times faster than httpx (which the `openai` package uses), so the client is never what limits a
generation run (perf/generation_overhead.py).

The API key goes only where it belongs: to `server_type=openai` (from OPENAI_API_KEY unless
`server.api_key_env` names another variable) or wherever `api_key_env` is set, and never over plain
http to a host other than this machine.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit

import aiohttp

from .config import ServerConfig


class RequestFailedError(RuntimeError):
    """A request that failed for good (a 4xx, or every retry used up)."""


class ContextLengthError(RequestFailedError):
    """The prompt alone does not fit the model's context: that sample cannot be generated, the run goes on."""


RETRIED_4XX = frozenset({408, 429})
"""Client errors that mean "not now" (timeout, rate limit), not "never"."""

MAX_RETRY_AFTER_S = 300.0
"""The longest Retry-After honoured; a server asking for more is waited on this long."""

_CONTEXT = re.compile(
    r"context length|context window|max_model_len|maximum model length|too long|context_length_exceeded", re.I
)
_MAX_CONTEXT = re.compile(r"maximum context length is (\d+)|maximum model length of (\d+)|limit of (\d+)", re.I)
_OVER_MODEL_LEN = re.compile(r"max_tokens=\d+ cannot be greater than max_model_len=(\d+)", re.I)
"""vLLM's refusal of a max_tokens over the whole context, before it looks at the prompt."""
_CLAMP_WARNED: set[int] = set()
_INPUT_TOKENS = re.compile(r"(\d+) in the messages|has (\d+) input tokens|(\d+) input tokens|prompt \(length (\d+)\)")


@dataclass
class Completion:
    text: str
    num_generated_tokens: Optional[int]
    finish_reason: Optional[str]


def base_url(server: ServerConfig) -> str:
    if server.base_url:
        return server.base_url.rstrip("/")
    return f"http://{server.host}:{server.port}/v1"


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_headers(server: ServerConfig) -> dict[str, str]:
    """The Authorization header, where a key belongs and may travel (see the module docstring)."""
    env = server.api_key_env or ("OPENAI_API_KEY" if server.server_type == "openai" else None)
    key = os.environ.get(env) if env else None
    if not key:
        return {}
    url = urlsplit(base_url(server))
    if url.scheme != "https" and not is_loopback(url.hostname or ""):
        print(
            f"[assay] warning: not sending the API key from ${env} to {url.scheme}://{url.hostname}: plain http to "
            "another host would expose it on the network; use an https URL",
            file=sys.stderr,
            flush=True,
        )
        return {}
    return {"Authorization": f"Bearer {key}"}


class ModelClient:
    """Sends chat or text-completion requests; use as an async context manager."""

    def __init__(self, server: ServerConfig, max_connections: int = 64):
        self.server = server
        self._url = base_url(server)
        self._headers = auth_headers(server)
        self._max_connections = max_connections
        self._session: Optional[aiohttp.ClientSession] = None

    async def __aenter__(self) -> "ModelClient":
        self._session = aiohttp.ClientSession(
            headers=self._headers,
            timeout=aiohttp.ClientTimeout(total=self.server.request_timeout, connect=30.0),
            connector=aiohttp.TCPConnector(limit=self._max_connections),
        )
        return self

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()

    async def chat(self, messages: list[dict], body: dict[str, Any], chat_template_kwargs: dict) -> Completion:
        payload = {"model": self.server.model, "messages": messages, **body}
        if chat_template_kwargs:
            payload["chat_template_kwargs"] = dict(chat_template_kwargs)
        data = await self._post("/chat/completions", payload, lambda choice: choice["message"].get("content"))
        choice = data["choices"][0]
        return Completion(choice["message"].get("content") or "", _tokens(data), choice.get("finish_reason"))

    async def complete(self, prompt: str, body: dict[str, Any]) -> Completion:
        payload = {"model": self.server.model, "prompt": prompt, **body}
        data = await self._post("/completions", payload, lambda choice: choice.get("text"))
        choice = data["choices"][0]
        return Completion(choice.get("text") or "", _tokens(data), choice.get("finish_reason"))

    async def _post(self, path: str, payload: dict, text_of) -> dict:
        attempt = 0
        while True:
            wait = 0.0
            try:
                async with self._session.post(self._url + path, json=payload) as response:  # type: ignore[union-attr]
                    text = await response.text()
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                if response.status < 400:
                    return _well_formed(text, text_of)
                if response.status == 400 and _CONTEXT.search(text):
                    clamped = self._clamped(payload, text)
                    if clamped is None:
                        raise ContextLengthError(f"context_length: {text[:500]}")
                    payload = clamped
                    continue
                if response.status < 500 and response.status not in RETRIED_4XX:
                    raise RequestFailedError(f"HTTP {response.status} from {path}: {text[:500]}")
                wait = retry_after
                raise _Retryable(f"HTTP {response.status} from {path}: {text[:300]}")
            except (aiohttp.ClientError, asyncio.TimeoutError, _Retryable) as exc:
                attempt += 1
                if attempt > self.server.max_retries:
                    raise RequestFailedError(f"gave up after {attempt} attempts: {type(exc).__name__}: {exc}") from None
                backoff = min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random())
                await asyncio.sleep(max(backoff, wait))

    def _clamped(self, payload: dict, error: str) -> Optional[dict]:
        """The same request with max_tokens cut to what the context leaves, if the prompt itself fits.

        A server that refuses a max_tokens over the whole context without counting the prompt (vLLM) is asked
        again with the whole context; its next refusal says how much the prompt leaves."""
        asked = payload.get("max_tokens")
        whole = _first_int(_OVER_MODEL_LEN, error)
        if whole is not None and asked is not None and asked > whole:
            self._warn_clamp(asked, whole)
            return {**payload, "max_tokens": whole}
        limit = _first_int(_MAX_CONTEXT, error)
        used = _first_int(_INPUT_TOKENS, error)
        if limit is None or used is None or asked is None or used >= limit or limit - used >= asked:
            return None
        self._warn_clamp(asked, limit)
        return {**payload, "max_tokens": limit - used}

    def _warn_clamp(self, asked: int, limit: int) -> None:
        if limit not in _CLAMP_WARNED:  # once per context size and process, however many clients a stage makes
            _CLAMP_WARNED.add(limit)
            print(
                f"[assay] warning: tokens_to_generate={asked} does not fit the model's context of {limit} tokens "
                "with the prompt; each such request asks for what is left of the context instead",
                file=sys.stderr,
                flush=True,
            )


class _Retryable(Exception):
    pass


def _well_formed(text: str, text_of) -> dict:
    """The parsed answer, or _Retryable when it is not a completion (bad JSON, no choices, no text)."""
    try:
        data = json.loads(text)
        choice = data["choices"][0]
        if not isinstance(text_of(choice), (str, type(None))):
            raise TypeError("text is not a string")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise _Retryable(f"malformed answer ({type(exc).__name__}): {text[:200]!r}") from None
    return data


def _retry_after(value: Optional[str]) -> float:
    """Seconds from a Retry-After header (seconds, or an HTTP date); 0 when absent or unreadable."""
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return 0.0
        seconds = when.timestamp() - time.time()
    return max(0.0, min(MAX_RETRY_AFTER_S, seconds))


def _first_int(pattern: re.Pattern, text: str) -> Optional[int]:
    match = pattern.search(text)
    if not match:
        return None
    return int(next(g for g in match.groups() if g is not None))


def _tokens(data: dict) -> Optional[int]:
    usage = data.get("usage") or {}
    return usage.get("completion_tokens")
