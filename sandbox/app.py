"""The HTTP surface of one worker (aiohttp): request validation, auth, and JSON responses.

Every malformed request gets a 400 with a message that says what to fix; every unexpected server
error becomes a JSON 500 for that request only. Neither stops the service.
"""

from __future__ import annotations

import ast
import hmac
import json
import logging
import re

from aiohttp import web

from .config import SandboxConfig
from .kernel import KernelStartError
from .sessions import SessionGoneError, SessionLimitError, SessionManager

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
LANGUAGES = {"python", "python3", "ipython"}
MAX_BODY = 64 * 2**20
MANAGER = web.AppKey("manager", SessionManager)


class BadRequest(ValueError):
    pass


def _number(body: dict, key: str, default, kind, minimum, maximum=None):
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise BadRequest(f"field '{key}' must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise BadRequest(f"field '{key}' must be {bounds}, got {value!r}")
    return kind(value)


def valid_session_id(value) -> str:
    if not isinstance(value, str) or not SESSION_ID.match(value):
        raise BadRequest(
            f"session_id must be null or 1-128 characters of letters, digits and _.:- "
            f"(starting with a letter or digit), got {value!r}"
        )
    return value


def _json_object(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def parse_execute(raw: bytes, cfg: SandboxConfig) -> dict:
    """Validate an /execute body; return the arguments of SessionManager.execute."""
    body = _json_object(raw)
    code = body.get("code")
    if not isinstance(code, str):
        raise BadRequest("field 'code' is required and must be a string of Python source")
    language = body.get("language")
    if language is not None and (not isinstance(language, str) or language.lower() not in LANGUAGES):
        raise BadRequest(f"language {language!r} is not supported: this sandbox runs Python only")
    session_id = body.get("session_id")
    return {
        "code": code,
        "session_id": None if session_id is None else valid_session_id(session_id),
        "timeout": _number(body, "timeout", cfg.default_timeout, float, 0.001, cfg.max_timeout),
        "max_output_chars": _number(
            body, "max_output_chars", cfg.default_max_output_chars, int, 0, cfg.max_output_chars
        ),
    }


def test_names(tests: str) -> list[str]:
    """Top-level `def test_*` functions of a tests source, in order, read here (outside the sandbox)."""
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise BadRequest(f"field 'tests' is not valid Python: {type(exc).__name__}: {exc}") from None
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")
    ]


def parse_grade(raw: bytes, cfg: SandboxConfig) -> dict:
    """Validate a /grade body; return the arguments of SessionManager.grade."""
    body = _json_object(raw)
    for key in ("answer", "tests"):
        if not isinstance(body.get(key), str):
            raise BadRequest(f"field '{key}' is required and must be a string of Python source")
    entry_point = body.get("entry_point")
    if entry_point is not None and not isinstance(entry_point, str):
        raise BadRequest("field 'entry_point' must be null or a string")
    return {
        "answer": body["answer"],
        "tests": body["tests"],
        "test_names": test_names(body["tests"]),
        "entry_point": entry_point or None,
        "timeout": _number(body, "timeout", cfg.default_timeout, float, 0.001, cfg.max_timeout),
        "max_output_chars": _number(
            body, "max_output_chars", cfg.default_max_output_chars, int, 0, cfg.max_output_chars
        ),
    }


def parse_grade_program(raw: bytes, cfg: SandboxConfig) -> dict:
    """Validate a /grade_program body; return the arguments of SessionManager.grade_program."""
    body = _json_object(raw)
    if not isinstance(body.get("answer"), str):
        raise BadRequest("field 'answer' is required and must be a string of Python source")
    cases = body.get("cases")
    if not isinstance(cases, list) or not cases:
        raise BadRequest("field 'cases' is required: a non-empty list of {stdin, expected_output}")
    for number, case in enumerate(cases):
        if not (isinstance(case, dict) and isinstance(case.get("stdin"), str)):
            raise BadRequest(f"cases[{number}] needs 'stdin', a string")
        if not isinstance(case.get("expected_output"), str):
            raise BadRequest(f"cases[{number}] needs 'expected_output', a string")
        try:
            case["stdin"].encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"cases[{number}]: 'stdin' is not valid Unicode (a lone surrogate)") from None
    return {
        "answer": body["answer"],
        "cases": [{"stdin": c["stdin"], "expected_output": c["expected_output"]} for c in cases],
        "timeout": _number(body, "timeout", cfg.default_timeout, float, 0.001, cfg.max_timeout),
        "max_output_chars": _number(body, "max_output_chars", cfg.max_output_chars, int, 0, cfg.max_output_chars),
    }


def error_response(status: int, message: str, **headers) -> web.Response:
    return web.json_response({"status": "rejected", "message": message}, status=status, headers=headers)


def auth_middleware(token: str | None):
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def check(request: web.Request, handler):
        # /health says only whether the service is up and how it isolates sessions; health checks
        # (the job runner's, a load balancer's) need no token.
        if expected is not None and request.path != "/health":
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return error_response(
                    401,
                    "missing or wrong bearer token (Authorization: Bearer <token>)",
                    **{"WWW-Authenticate": "Bearer"},
                )
        return await handler(request)

    return check


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except BadRequest as exc:
        return error_response(400, str(exc))
    except SessionLimitError as exc:
        return error_response(503, str(exc), **{"Retry-After": "1"})
    except SessionGoneError as exc:
        return error_response(409, str(exc))
    except KernelStartError as exc:
        return error_response(503, str(exc), **{"Retry-After": "5"})
    except web.HTTPException:
        raise
    except Exception as exc:  # one request fails, the service goes on
        log.exception("error handling %s %s", request.method, request.path)
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}")


async def execute(request: web.Request) -> web.Response:
    args = parse_execute(await request.read(), request.app[MANAGER].cfg)
    return web.json_response(await request.app[MANAGER].execute(**args))


async def grade(request: web.Request) -> web.Response:
    args = parse_grade(await request.read(), request.app[MANAGER].cfg)
    return web.json_response(await request.app[MANAGER].grade(**args))


async def grade_program(request: web.Request) -> web.Response:
    args = parse_grade_program(await request.read(), request.app[MANAGER].cfg)
    return web.json_response(await request.app[MANAGER].grade_program(**args))


async def create_session(request: web.Request) -> web.Response:
    manager = request.app[MANAGER]
    session = manager.get_or_create(manager.new_id())
    return web.json_response(session.describe(), status=201)


async def list_sessions(request: web.Request) -> web.Response:
    sessions = request.app[MANAGER].list()
    return web.json_response({"sessions": sessions, "count": len(sessions)})


async def delete_session(request: web.Request) -> web.Response:
    session_id = valid_session_id(request.match_info["session_id"])
    if not await request.app[MANAGER].delete(session_id):
        return error_response(404, f"no session {session_id!r}")
    return web.json_response({"status": "deleted", "session_id": session_id})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", **request.app[MANAGER].health()})


def make_app(cfg: SandboxConfig, worker: int = 0, token: str | None = None) -> web.Application:
    """The worker's application; the manager starts and stops with it."""
    app = web.Application(middlewares=[auth_middleware(token), errors_middleware], client_max_size=MAX_BODY)
    manager = app[MANAGER] = SessionManager(cfg, worker)

    async def lifecycle(_app):
        await manager.start()
        yield
        await manager.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/execute", execute)
    app.router.add_post("/grade", grade)
    app.router.add_post("/grade_program", grade_program)
    app.router.add_post("/sessions", create_session)
    app.router.add_get("/sessions", list_sessions)
    app.router.add_delete("/sessions/{session_id}", delete_session)
    app.router.add_get("/health", health)
    return app
