"""What the model sees of one execution, and what the output line records of it.

The model gets one text per execution: stdout, stderr, the value of the last expression, then the
error (the traceback as IPython prints it, without colours, or `ename: evalue` for a timeout or a
killed kernel), capped at `max_output_chars` with the head and the tail kept: the last lines hold
the result or the error, which a cut after the first N characters would lose. The line's
`code_executions` keeps each stream apart, so an analysis can tell a crash from a wrong answer.
"""

from __future__ import annotations

from ..sandbox.client import ExecutionResult
from ..sandbox.output import cap

RESTARTED_NOTE = "[the Python session was restarted: variables defined before are gone]"


def limit_message(max_code_executions: int) -> str:
    """Shown instead of output for a block past the limit."""
    return (
        f"Code execution limit reached: {max_code_executions} blocks were run, this one was not. "
        "No more code will be run; continue without it."
    )


def _error_text(error: dict) -> str:
    lines = [line for line in error.get("traceback") or [] if line.strip() and set(line.strip()) != {"-"}]
    if lines:
        return "\n".join(line.rstrip("\n") for line in lines)
    return f"{error.get('ename', 'Error')}: {error.get('evalue', '')}".rstrip()


def shown_output(result: ExecutionResult, max_chars: int) -> str:
    """The text appended for the model: every part of the output on its own lines, capped head and tail."""
    parts = [result.stdout, result.stderr]
    if result.result is not None:
        parts.append(result.result)
    if result.error:
        parts.append(_error_text(result.error))
    if result.restarted:
        parts.append(RESTARTED_NOTE)
    text = "".join(part if part.endswith("\n") else part + "\n" for part in parts if part)
    return cap(text, max_chars)


def execution_record(code: str, output: str, result: ExecutionResult | None = None) -> dict:
    """One entry of the line's `code_executions`; without a result, the block was not run (status `skipped`)."""
    if result is None:
        return {
            "code": code,
            "output": output,
            "status": "skipped",
            "stdout": "",
            "stderr": "",
            "result": None,
            "error": None,
            "duration": 0.0,
        }
    error = None
    if result.error:
        error = {"ename": result.error.get("ename"), "evalue": result.error.get("evalue")}
    record = {
        "code": code,
        "output": output,
        "status": result.status,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "result": result.result,
        "error": error,
        "duration": result.duration,
    }
    if result.restarted:
        record["restart_reason"] = result.restart_reason or "restarted"
    return record
