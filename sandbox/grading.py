"""The worker's side of one grading run: send the sample, verify every signed frame, decide.

The verdict is decided here, outside the process that ran the answer. That process (harness.py)
can only report through frames signed with a key made here for this one run; this side checks each
signature, that the sequence numbers run 0, 1, 2, ... with no gap, that every frame comes from the
grading process itself, that the frames follow the protocol (loaded, then one result per test in
order, then done), and that the process ends after `done`. Anything else (an unsigned or altered
frame, a frame from a fork, a process that dies or runs out of time) is never a pass.

The time limit counts from the moment the sample is handed to a ready process: waiting for a free
process, when the node is busy, is not charged to the task.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import marshal
import secrets
import time
from typing import Any

from .kernel import Kernel, _Died
from .output import cap

SEALED = b"S"
MAC_SIZE = 32


class _Forged(Exception):
    pass


def _open(body: bytes, key: bytes) -> dict:
    if body[:1] != SEALED or len(body) < 1 + MAC_SIZE:
        raise _Forged("an unsigned frame on the result channel")
    mac, payload = body[1 : 1 + MAC_SIZE], body[1 + MAC_SIZE :]
    if not hmac.compare_digest(mac, hmac.new(key, payload, hashlib.sha256).digest()):
        raise _Forged("a frame with a wrong signature on the result channel")
    try:
        message = marshal.loads(payload)
    except (ValueError, EOFError, TypeError) as exc:
        raise _Forged(f"an unreadable signed frame ({exc})") from None
    if not isinstance(message, dict):
        raise _Forged("a signed frame that is not a record")
    return message


async def grade_in(
    kernel: Kernel,
    answer: str,
    tests: str,
    test_names: list[str],
    entry_point: str | None,
    timeout: float,
    max_output_chars: int,
    stdin: str | None = None,
) -> dict:
    """Run one sample in `kernel` (fresh, never used before) and return the verdict record.

    With `stdin` (a program run, no tests) the answer is run once as a program reading it, and the
    record's `stdout` is what the program wrote, uncapped up to `max_output_chars` (`stdout_truncated`
    when it wrote more); comparing it with the expected output is the caller's (program_output.py)."""
    key = secrets.token_bytes(32)
    loop = asyncio.get_running_loop()
    result: dict[str, Any] = {
        "status": "completed",
        "answer_error": None,
        "answer_syntax_error": None,
        "defines_entry_point": None,
        "tests": [{"name": n, "ok": False, "error": None} for n in test_names],
        "tests_total": len(test_names),
        "tests_passed": 0,
        "tampering": None,
        "tests_error": None,
        "stdout": "",
        "stderr": "",
        "reason": None,
        "duration": 0.0,
    }
    started = time.perf_counter()
    if stdin is None:
        request = {"tests": tests, "test_names": test_names, "entry_point": entry_point}
    else:
        request = {"mode": "program", "stdin": stdin}
        result["stdout_truncated"] = False
    kernel.send({"op": "grade", "key": key.hex(), "answer": answer, "max_output_chars": max_output_chars, **request})
    deadline = loop.time() + timeout
    seq, pid, loaded, done = 0, None, False, False
    try:
        while not done:
            try:
                body = await kernel._until(kernel.raw_frame(), deadline)
            except asyncio.TimeoutError:
                result["status"] = "timeout"
                result["reason"] = f"the sample ran past its time limit of {timeout:g} s"
                break
            message = _open(body, key)
            if message.get("seq") != seq:
                raise _Forged("result frames out of order")
            if pid is None:
                pid = message.get("pid")
            elif message.get("pid") != pid:
                raise _Forged("result frames from more than one process")
            seq += 1
            kind = message.get("kind")
            if kind in ("tests_error", "answer_syntax_error"):
                result[kind] = message.get("message")
                done = True
            elif kind == "loaded" and not loaded:
                loaded = True
                result["answer_error"] = message.get("error")
                result["defines_entry_point"] = message.get("defines_entry_point") is True
                result["tampering"] = message.get("tampering")
            elif kind == "test" and loaded:
                index = message.get("index")
                expected = sum(1 for t in result["tests"] if t.get("_seen"))
                if index != expected or index >= len(test_names):
                    raise _Forged("test results out of order")
                entry = result["tests"][index]
                entry["_seen"] = True
                entry["ok"] = message.get("ok") is True
                result["tampering"] = result["tampering"] or message.get("tampering")
            elif kind == "info" and loaded:
                index = message.get("index")
                if isinstance(index, int) and 0 <= index < len(test_names):
                    result["tests"][index]["error"] = message.get("error")
            elif kind == "done" and loaded:
                result["tampering"] = result["tampering"] or message.get("tampering")
                stdout = str(message.get("stdout") or "")
                if stdin is None:
                    result["stdout"] = cap(stdout, max_output_chars)
                else:
                    result["stdout"] = stdout[:max_output_chars]
                    result["stdout_truncated"] = len(stdout) > max_output_chars
                result["stderr"] = cap(str(message.get("stderr") or ""), max_output_chars)
                done = True
            else:
                raise _Forged(f"an unexpected result frame ({kind!r})")
        if done:
            # After `done` the process exits at once; more frames, or a process that stays, is tampering.
            try:
                extra = await kernel._until(kernel.raw_frame(), loop.time() + 5.0)
                raise _Forged(f"a frame after the end of the run ({len(extra)} bytes)")
            except _Died:
                pass
            except asyncio.TimeoutError:
                result["tampering"] = result["tampering"] or "the grading process did not exit after its run"
    except _Died as died:
        result["status"] = "killed"
        result["reason"] = died.reason
    except _Forged as forged:
        result["tampering"] = str(forged)
    result["duration"] = round(time.perf_counter() - started, 6)
    for entry in result["tests"]:
        entry.pop("_seen", None)
    if result["tampering"]:
        result["status"] = "tampering"
        for entry in result["tests"]:
            entry["ok"] = False
    result["tests_passed"] = sum(1 for t in result["tests"] if t["ok"])
    ran = bool(  # the answer loaded (a program: ran to its end) with nothing refused
        result["status"] == "completed"
        and done
        and not result["tampering"]
        and not result["answer_syntax_error"]
        and result["answer_error"] is None
    )
    if stdin is not None:
        result["ran"] = ran
    result["passed"] = bool(
        ran
        and not result["tests_error"]
        and result["defines_entry_point"]
        and result["tests_total"] > 0
        and result["tests_passed"] == result["tests_total"]
    )
    return result
