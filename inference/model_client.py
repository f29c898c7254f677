"""An async client for OpenAI-compatible servers (vLLM, SGLang, hosted APIs).

Retries with exponential backoff on connection errors, timeouts and 5xx answers; never on 4xx,
which mean the request itself is wrong and would fail again. One aiohttp connection pool per stage:
on this class of machine aiohttp sends chat requests about 15 times faster than httpx (which the
`openai` package uses), so the client is never what limits a generation run (perf/generation_overhead.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from dataclasses import dataclass
from typing import Any, Optional

import aiohttp

from .config import InferenceConfig, ServerConfig
from .servers import get_server_type


class RequestFailedError(RuntimeError):
    """A request that failed for good (a 4xx, or every retry used up)."""


@dataclass
class Completion:
    text: str
    num_generated_tokens: Optional[int]
    finish_reason: Optional[str]


def base_url(server: ServerConfig) -> str:
    if server.base_url:
        return server.base_url.rstrip("/")
    return f"http://{server.host}:{server.port}/v1"


def sampling_body(inference: InferenceConfig, server_type: str) -> dict[str, Any]:
    """Sampling fields of the request; non-OpenAI knobs only when set, so hosted APIs accept the body."""
    body: dict[str, Any] = {
        "temperature": inference.temperature,
        "top_p": inference.top_p,
        "max_tokens": inference.tokens_to_generate,
        "seed": inference.random_seed,
    }
    if inference.stop_phrases:
        body["stop"] = list(inference.stop_phrases)
    extras = {
        "top_k": (inference.top_k, -1),
        "min_p": (inference.min_p, 0.0),
        "repetition_penalty": (inference.repetition_penalty, 1.0),
    }
    for key, (value, default) in extras.items():
        if value != default or get_server_type(server_type).sampling_extras:
            body[key] = value
    body.update(inference.extra_body)
    return body


class ModelClient:
    """Sends chat or text-completion requests; use as an async context manager."""

    def __init__(self, server: ServerConfig, max_connections: int = 64):
        self.server = server
        self._url = base_url(server)
        self._headers = {"Authorization": f"Bearer {os.environ.get(server.api_key_env, 'EMPTY')}"}
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
        data = await self._post("/chat/completions", payload)
        choice = data["choices"][0]
        return Completion(choice["message"].get("content") or "", _tokens(data), choice.get("finish_reason"))

    async def complete(self, prompt: str, body: dict[str, Any]) -> Completion:
        data = await self._post("/completions", {"model": self.server.model, "prompt": prompt, **body})
        choice = data["choices"][0]
        return Completion(choice.get("text") or "", _tokens(data), choice.get("finish_reason"))

    async def _post(self, path: str, payload: dict) -> dict:
        attempt = 0
        while True:
            try:
                async with self._session.post(self._url + path, json=payload) as response:  # type: ignore[union-attr]
                    text = await response.text()
                if response.status < 400:
                    try:
                        return json.loads(text)
                    except ValueError:
                        raise _Retryable(f"malformed JSON in the answer: {text[:200]!r}") from None
                if response.status < 500:
                    raise RequestFailedError(f"HTTP {response.status} from {path}: {text[:500]}")
                raise _Retryable(f"HTTP {response.status} from {path}: {text[:300]}")
            except (aiohttp.ClientError, asyncio.TimeoutError, _Retryable) as exc:
                attempt += 1
                if attempt > self.server.max_retries:
                    raise RequestFailedError(f"gave up after {attempt} attempts: {type(exc).__name__}: {exc}") from None
                await asyncio.sleep(min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random()))


class _Retryable(Exception):
    pass


def _tokens(data: dict) -> Optional[int]:
    usage = data.get("usage") or {}
    return usage.get("completion_tokens")
