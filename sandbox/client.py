"""Clients of the sandbox service: `SandboxClient` (sync) and `AsyncSandboxClient` (asyncio).

Both keep one HTTP connection pool for their lifetime (connection reuse matters at hundreds of
calls per second) and share the same surface:

    with SandboxClient() as sandbox:                 # ASSAY_SANDBOX_URL, ASSAY_SANDBOX_TOKEN
        sandbox.wait_until_healthy(60)
        sandbox.execute("x = 41", session_id="s1")
        print(sandbox.execute("x + 1", session_id="s1").result)   # '42'
        sandbox.delete_session("s1")

`execute` returns an `ExecutionResult` for every outcome of the code (ok, error, timeout,
killed); a rejected request (bad input, wrong token, session limit) raises `SandboxHTTPError`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time
from dataclasses import dataclass

import httpx

DEFAULT_URL = "http://127.0.0.1:6000"
SANDBOX_URL_ENV = "ASSAY_SANDBOX_URL"
"""Where a job's stage finds the sandbox the pipeline started beside it."""
SANDBOX_TOKEN_ENV = "ASSAY_SANDBOX_TOKEN"
"""The token of that sandbox (through the environment only, never a command line)."""


def configured_url(url: str | None = None) -> str | None:
    """The sandbox a stage was given: `url` when set, else $ASSAY_SANDBOX_URL; None when neither is."""
    return (url or os.environ.get(SANDBOX_URL_ENV) or "").rstrip("/") or None


# Seconds allowed beyond the cell's own timeout for the server to interrupt, kill and answer.
RESPONSE_MARGIN = 60.0


@dataclass
class ExecutionResult:
    status: str  # ok | error | timeout | killed
    stdout: str
    stderr: str
    result: str | None
    error: dict | None  # {"ename", "evalue", "traceback"}
    session_id: str
    duration: float
    restarted: bool = False  # the session's earlier state is gone (its kernel was replaced)
    restart_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_json(cls, data: dict) -> "ExecutionResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class SandboxHTTPError(RuntimeError):
    """The service rejected the request (HTTP 4xx/5xx); `status_code` and `message` say why."""

    def __init__(self, status_code: int, message: str, retry_after: str | None = None):
        super().__init__(f"sandbox answered HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.retry_after = retry_after


def _settings(url: str | None, token: str | None) -> tuple[str, dict]:
    url = configured_url(url) or DEFAULT_URL
    token = token if token is not None else os.environ.get(SANDBOX_TOKEN_ENV)
    return url, ({"Authorization": f"Bearer {token}"} if token else {})


def _payload(code, session_id, timeout, max_output_chars) -> dict:
    return {
        "code": code,
        "session_id": session_id,
        "timeout": timeout,
        "max_output_chars": max_output_chars,
        "language": "python",
    }


def _checked(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        data = {"message": response.text}
    if response.status_code >= 400:
        raise SandboxHTTPError(
            response.status_code, data.get("message", response.text), response.headers.get("Retry-After")
        )
    return data


def _grade_request(answer, tests, entry_point, timeout, max_output_chars) -> dict:
    """The keyword arguments of one POST /grade (grading is stateless, so a retry is always safe)."""
    return {
        "json": {
            "answer": answer,
            "tests": tests,
            "entry_point": entry_point,
            "timeout": timeout,
            "max_output_chars": max_output_chars,
        },
        "timeout": httpx.Timeout(timeout + RESPONSE_MARGIN, connect=10.0),
    }


def _program_request(answer, cases, timeout, max_output_chars) -> dict:
    """The keyword arguments of one POST /grade_program: `cases` are (stdin, expected_output) pairs; `timeout`
    is per case; `max_output_chars` None takes the service's largest cap."""
    return {
        "json": {
            "answer": answer,
            "cases": [{"stdin": stdin, "expected_output": expected} for stdin, expected in cases],
            "timeout": timeout,
            "max_output_chars": max_output_chars,
        },
        "timeout": httpx.Timeout(timeout * max(1, len(cases)) + RESPONSE_MARGIN, connect=10.0),
    }


RETRIES = 6
"""Attempts after the first for a /grade call that hit a transport error or a full sandbox (503)."""


def _backoff(attempt: int, retry_after: str | None = None) -> float:
    """Seconds before the next attempt: Retry-After when the service gave one, else exponential with jitter."""
    try:
        if retry_after is not None:
            return min(30.0, float(retry_after))
    except ValueError:
        pass
    return min(30.0, 0.25 * 2**attempt) * (0.5 + random.random() / 2)


def _retry_delay(exc: Exception, attempt: int) -> float:
    """Seconds to wait before attempt `attempt + 1`; re-raises `exc` when it is final or not worth retrying."""
    retryable = (
        exc.status_code in (502, 503, 504)
        if isinstance(exc, SandboxHTTPError)
        else isinstance(exc, httpx.TransportError)
    )
    if attempt == RETRIES or not retryable:
        raise exc
    return _backoff(attempt, getattr(exc, "retry_after", None))


def _limits(max_connections: int) -> httpx.Limits:
    return httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)


class SandboxClient:
    def __init__(self, url: str | None = None, token: str | None = None, max_connections: int = 64):
        self.url, headers = _settings(url, token)
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            limits=_limits(max_connections),
            timeout=httpx.Timeout(30.0, connect=10.0),
        )

    def execute(
        self, code: str, session_id: str | None = None, timeout: float = 10.0, max_output_chars: int = 10000
    ) -> ExecutionResult:
        response = self._http.post(
            "/execute",
            json=_payload(code, session_id, timeout, max_output_chars),
            timeout=httpx.Timeout(timeout + RESPONSE_MARGIN, connect=10.0),
        )
        return ExecutionResult.from_json(_checked(response))

    def grade(
        self,
        answer: str,
        tests: str,
        entry_point: str | None = None,
        timeout: float = 20.0,
        max_output_chars: int = 10000,
    ) -> dict:
        """Grade one answer against tests in a fresh process (POST /grade); transport errors are retried."""
        return self._post_retried("/grade", _grade_request(answer, tests, entry_point, timeout, max_output_chars))

    def grade_program(
        self, answer: str, cases: list[tuple[str, str]], timeout: float = 10.0, max_output_chars: int | None = None
    ) -> dict:
        """Grade a program on (stdin, expected_output) cases, a fresh process each (POST /grade_program)."""
        return self._post_retried("/grade_program", _program_request(answer, cases, timeout, max_output_chars))

    def _post_retried(self, path: str, request: dict) -> dict:
        """A stateless POST, retried on transport errors and a full sandbox (503)."""
        for attempt in range(RETRIES + 1):
            try:
                return _checked(self._http.post(path, **request))
            except (httpx.TransportError, SandboxHTTPError) as exc:
                time.sleep(_retry_delay(exc, attempt))
        raise AssertionError("unreachable")

    def create_session(self) -> str:
        """A new session with a service-made id (`w<worker>-<hex>`)."""
        return _checked(self._http.post("/sessions"))["session_id"]

    def delete_session(self, session_id: str) -> bool:
        """Delete a session and its kernel; False if there was no such session."""
        response = self._http.delete(f"/sessions/{session_id}")
        if response.status_code == 404:
            return False
        _checked(response)
        return True

    def sessions(self) -> list[dict]:
        return _checked(self._http.get("/sessions"))["sessions"]

    def health(self) -> dict:
        return _checked(self._http.get("/health"))

    def wait_until_healthy(self, timeout: float = 60.0, interval: float = 0.1) -> dict:
        end, last = time.monotonic() + timeout, None
        while True:
            try:
                return self.health()
            except (httpx.HTTPError, SandboxHTTPError) as exc:
                last = exc
            if time.monotonic() >= end:
                raise TimeoutError(f"sandbox at {self.url} not healthy after {timeout:g} s: {last}")
            time.sleep(interval)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "SandboxClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncSandboxClient:
    def __init__(self, url: str | None = None, token: str | None = None, max_connections: int = 256):
        self.url, headers = _settings(url, token)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            limits=_limits(max_connections),
            timeout=httpx.Timeout(30.0, connect=10.0),
        )

    async def execute(
        self, code: str, session_id: str | None = None, timeout: float = 10.0, max_output_chars: int = 10000
    ) -> ExecutionResult:
        response = await self._http.post(
            "/execute",
            json=_payload(code, session_id, timeout, max_output_chars),
            timeout=httpx.Timeout(timeout + RESPONSE_MARGIN, connect=10.0),
        )
        return ExecutionResult.from_json(_checked(response))

    async def grade(
        self,
        answer: str,
        tests: str,
        entry_point: str | None = None,
        timeout: float = 20.0,
        max_output_chars: int = 10000,
    ) -> dict:
        return await self._post_retried("/grade", _grade_request(answer, tests, entry_point, timeout, max_output_chars))

    async def grade_program(
        self, answer: str, cases: list[tuple[str, str]], timeout: float = 10.0, max_output_chars: int | None = None
    ) -> dict:
        return await self._post_retried("/grade_program", _program_request(answer, cases, timeout, max_output_chars))

    async def _post_retried(self, path: str, request: dict) -> dict:
        for attempt in range(RETRIES + 1):
            try:
                return _checked(await self._http.post(path, **request))
            except (httpx.TransportError, SandboxHTTPError) as exc:
                await asyncio.sleep(_retry_delay(exc, attempt))
        raise AssertionError("unreachable")

    async def create_session(self) -> str:
        return _checked(await self._http.post("/sessions"))["session_id"]

    async def delete_session(self, session_id: str) -> bool:
        response = await self._http.delete(f"/sessions/{session_id}")
        if response.status_code == 404:
            return False
        _checked(response)
        return True

    async def sessions(self) -> list[dict]:
        return _checked(await self._http.get("/sessions"))["sessions"]

    async def health(self) -> dict:
        return _checked(await self._http.get("/health"))

    async def wait_until_healthy(self, timeout: float = 60.0, interval: float = 0.1) -> dict:
        end, last = time.monotonic() + timeout, None
        while True:
            try:
                return await self.health()
            except (httpx.HTTPError, SandboxHTTPError) as exc:
                last = exc
            if time.monotonic() >= end:
                raise TimeoutError(f"sandbox at {self.url} not healthy after {timeout:g} s: {last}")
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncSandboxClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
