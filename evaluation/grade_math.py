"""Math grading: is the extracted answer equal to the expected one? Adds `predicted_answer` and
`symbolic_correct` to each line.

Three steps, cheapest first:
1. Normalise both answers (`normalize_math_answer`): delimiters, `\\boxed{}`/`\\text{}` wrappers,
   spacing commands, `\\left`/`\\right`, `\\dfrac`, degrees, thousands separators, and numbers in a
   canonical form, so `73`, `073`, `\\boxed{73}`, `$73$` and `73.0` are all `73`. Equal strings match.
2. If both are plain numbers (integers, decimals, `a/b`, `\\frac{a}{b}`), compare them exactly as
   fractions and decide: `0.5` equals `\\frac{1}{2}`, `0.333` does not equal `\\frac{1}{3}`.
3. Otherwise ask `math-verify` (symbolic equivalence with sympy) in a worker process.

Why a worker process: sympy can spend minutes on an innocent-looking answer (`9^{9^{9^{9}}}`), and
math-verify's own timeout is a SIGALRM that cannot interrupt C code and only works in the main
thread. The worker gets `timeout` seconds per comparison; past that it is killed (and restarted for
the next call) and the answer counts as not equal. Nothing a model writes can hang the stage.
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import time
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Optional

from .extract_math import extract_math_answer

# ----------------------------------------------------------------------------- normalisation

_WRAPPERS = ("\\boxed", "\\fbox", "\\text", "\\textbf", "\\mathrm", "\\mbox")
_SPACING = re.compile(r"(?<!\\)\\[,;:! ]|\\quad|\\qquad")  # not the space after a `\\` line break
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?")
# thousands separated by commas (`1,000`) or by spaces (`1 000`)
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:[,\s]\d{3})+(?:\.\d+)?$")
_BRACED_COMMA = re.compile(r"\s*\{\s*,\s*\}\s*")
_PERCENT = re.compile(r"\s*(?:\\%|%|\\text\{\s*\\?%\s*\}|\bpct|\bpercent)\s*$", re.IGNORECASE)
_TRAILING_BACKSLASH = re.compile(r"(?<!\\)\\$")
_MATRIX = re.compile(r"\\(begin|end)\{bmatrix\}")
_MATRIX_GAPS = re.compile(r"\s*(&|\\\\|\\begin\{pmatrix\}|\\end\{pmatrix\})\s*")
# a mixed number, `4 4/9` = 40/9 (the whole part may carry space thousands: `1 000 4/9`)
_MIXED = re.compile(r"^([+-]?)(\d{1,3}(?:\s\d{3})+|\d+)\s+(\d+)\s*/\s*(\d+)$")
_DECIMAL = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_FRACTION = re.compile(r"^([+-]?)\\frac\{([+-]?\d+)\}\{([+-]?\d+)\}$")
_SLASH = re.compile(r"^([+-]?\d+)\s*/\s*([+-]?\d+)$")


def _unwrap_once(s: str) -> str:
    s = s.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
            return s[len(left) : len(s) - len(right)]
    for command in _WRAPPERS:
        if s.startswith(command + "{") and s.endswith("}") and _closes_at_end(s, len(command)):
            return s[len(command) + 1 : -1]
    if s.endswith(".") and not s.endswith(".."):
        return s[:-1]
    return s


def _closes_at_end(s: str, open_at: int) -> bool:
    """Whether the brace opening at `open_at` is the one the last character closes."""
    depth = 0
    i = open_at
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == "{":
            depth += 1
        elif s[i] == "}":
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
        i += 1
    return False


def _canonical_decimal(s: str) -> str:
    """`073` -> `73`, `73.0` -> `73`, `-0.50` -> `-0.5`, `+5` -> `5`, `-0` -> `0`."""
    value = Decimal(s)
    if value == value.to_integral_value():
        return str(int(value))
    text = format(value, "f").rstrip("0")
    return text


def normalize_math_answer(answer: Optional[object]) -> Optional[str]:
    """A canonical string for comparing and voting; None stays None."""
    if answer is None:
        return None
    s = str(answer).strip()
    while True:  # wrappers and a percent sign, outside in: `$28$ %`, `\\boxed{10\\%}`
        unwrapped = _PERCENT.sub("", _unwrap_once(s).strip()).strip()
        if unwrapped == s:
            break
        s = unwrapped
    s = _TRAILING_BACKSLASH.sub("", s).strip()
    s = re.sub(r",\\!\s*", ",", s)  # `11,\! 111`: a thousands comma with LaTeX's negative space
    s = _SPACING.sub("", s)
    s = _BRACED_COMMA.sub(",", s)
    s = _MATRIX.sub(r"\\\1{pmatrix}", s)  # brackets or parentheses: the same matrix
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _DEGREES.sub("", s)
    s = re.sub(r"\s+", " ", s).strip()
    if "pmatrix" in s:
        s = _MATRIX_GAPS.sub(r"\1", s)
    if _THOUSANDS.match(s):
        s = s.replace(",", "").replace(" ", "")
    mixed = _MIXED.match(s)
    if mixed and int(mixed.group(4)) != 0:
        sign, whole, numerator, denominator = mixed.groups()
        value = Fraction(int(whole.replace(" ", "")) * int(denominator) + int(numerator), int(denominator))
        s = f"{sign if sign == '-' else ''}{value.numerator}" + (
            f"/{value.denominator}" if value.denominator != 1 else ""
        )
    if _DECIMAL.match(s):
        try:
            s = _canonical_decimal(s)
        except InvalidOperation:
            pass
    return s


def as_number(normalized: str) -> Optional[Fraction]:
    """An exact value for plain numbers (after normalisation); None for anything else."""
    try:
        if _DECIMAL.match(normalized):
            return Fraction(Decimal(normalized))
        m = _FRACTION.match(normalized)
        if m:
            value = Fraction(int(m.group(2)), int(m.group(3)))
            return -value if m.group(1) == "-" else value
        m = _SLASH.match(normalized)
        if m:
            return Fraction(int(m.group(1)), int(m.group(2)))
    except (ValueError, ZeroDivisionError, InvalidOperation):
        return None
    return None


# ----------------------------------------------------------------------------- math-verify in a worker


def serve_worker(library_timeout: Optional[int]) -> None:
    """Worker loop (run by MathVerifier in its own process): one JSON request per stdin line,
    [expected, predicted]; one JSON answer per line, true/false, on the original stdout."""
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything the libraries print goes to stderr, never into the protocol
    logging.disable(logging.WARNING)  # math-verify logs every timeout and parse failure
    from math_verify import parse, verify

    protocol.write('"ready"\n')
    protocol.flush()
    for line in sys.stdin:
        expected, predicted = json.loads(line)
        try:
            gold = parse(f"\\boxed{{{expected}}}", parsing_timeout=library_timeout)
            pred = parse(f"\\boxed{{{predicted}}}", parsing_timeout=library_timeout)
            same = bool(gold) and bool(pred) and bool(verify(gold, pred, timeout_seconds=library_timeout))
        except Exception:  # noqa: BLE001 - any failure of the library means: not shown equal
            same = False
        protocol.write(json.dumps(same) + "\n")
        protocol.flush()


class MathVerifier:
    """math-verify in a worker process behind a hard per-call deadline; use as a context manager.

    The worker is a plain `python -c` subprocess (not multiprocessing: spawn would re-run the
    caller's main script, fork would copy its threads). `library_timeouts=False` turns off
    math-verify's own SIGALRM timeouts, so tests can show the hard deadline alone suffices.
    """

    def __init__(self, timeout: float = 10.0, library_timeouts: bool = True, start_timeout: float = 120.0):
        self.timeout = timeout
        self.library_timeout = max(1, int(timeout // 3)) if library_timeouts else None
        self.start_timeout = start_timeout
        self.timeouts = 0
        self._proc: Optional[subprocess.Popen] = None
        self._buffer = b""

    def _start(self) -> None:
        code = f"from assay.evaluation.grade_math import serve_worker; serve_worker({self.library_timeout!r})"
        self._proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._buffer = b""
        if self._read_line(self.start_timeout) != "ready":
            self.close()
            raise RuntimeError(f"the math-verify worker did not start within {self.start_timeout:g} s")

    def _read_line(self, timeout: float):
        """The next JSON answer of the worker, or None when none came within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        assert self._proc is not None and self._proc.stdout is not None  # read only after _start (stdout=PIPE)
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # the worker died
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def equivalent(self, expected: str, predicted: str) -> Optional[bool]:
        """math-verify's verdict; None when it ran past the deadline or its worker died."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        assert self._proc is not None and self._proc.stdin is not None  # _start succeeded (stdin=PIPE)
        try:
            self._proc.stdin.write((json.dumps([expected, predicted]) + "\n").encode())
            self._proc.stdin.flush()
            answer = self._read_line(self.timeout)
        except (BrokenPipeError, OSError):
            answer = None
        if isinstance(answer, bool):
            return answer
        self.timeouts += 1
        self.close()  # the next call starts a fresh worker
        return None

    def close(self) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is None:  # both are pipes (see _start): the check is for the type checker
                continue
            try:
                stream.close()
            except OSError:
                pass
        self._proc = None

    def __enter__(self) -> "MathVerifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------- grading


def math_equal(predicted: Optional[object], expected: Optional[object], verifier: MathVerifier) -> bool:
    """Whether a predicted answer equals the expected one (None is never equal)."""
    pred, gold = normalize_math_answer(predicted), normalize_math_answer(expected)
    if not pred or not gold:
        return False
    if pred == gold:
        return True
    pred_value, gold_value = as_number(pred), as_number(gold)
    if pred_value is not None and gold_value is not None:
        return pred_value == gold_value
    return verifier.equivalent(gold, pred) is True


def grade_math_line(line: dict, verifier: MathVerifier, generation_key: str = "generation") -> dict:
    """The line with `predicted_answer` and `symbolic_correct` set (all other fields kept)."""
    if "expected_answer" not in line:
        raise ValueError("a math line needs 'expected_answer'")
    predicted = extract_math_answer(line.get(generation_key))
    out = dict(line)
    out["predicted_answer"] = predicted
    out["symbolic_correct"] = math_equal(predicted, line["expected_answer"], verifier)
    return out
