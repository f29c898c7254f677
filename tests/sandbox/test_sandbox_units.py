"""Pieces of the sandbox that need no server: output capping, request parsing, routing, config."""

from __future__ import annotations

import argparse

import pytest

from assay.sandbox.app import BadRequest, parse_execute
from assay.sandbox.config import SandboxConfig, add_arguments, from_namespace
from assay.sandbox.output import CappedText, cap, strip_ansi, truncation_marker
from assay.sandbox.router import worker_command, worker_for


def test_text_under_the_cap_is_returned_unchanged():
    assert cap("hello\n", 100) == "hello\n"
    assert cap("", 0) == ""


def test_capped_text_keeps_head_and_tail_and_counts_what_it_dropped():
    buf = CappedText(10)
    for chunk in ["abc", "defgh", "ijklmnop", "qrstuvwxyz"]:
        buf.write(chunk)
    assert buf.total == 26 and buf.dropped == 16
    assert buf.getvalue() == "abcde" + truncation_marker(16) + "vwxyz"


def test_capped_text_handles_one_huge_write_like_many_small_ones():
    text = "".join(chr(65 + i % 26) for i in range(100_000))
    small = CappedText(1000)
    for i in range(0, len(text), 7):
        small.write(text[i : i + 7])
    assert small.getvalue() == cap(text, 1000)
    assert cap(text, 1000).startswith(text[:500]) and cap(text, 1000).endswith(text[-500:])


def test_ansi_colour_codes_are_removed():
    assert strip_ansi("\x1b[0;31mZeroDivisionError\x1b[0m: x") == "ZeroDivisionError: x"


def test_execute_request_defaults_come_from_the_config():
    cfg = SandboxConfig(default_timeout=7.0, default_max_output_chars=123)
    assert parse_execute(b'{"code": "1"}', cfg) == {
        "code": "1",
        "session_id": None,
        "timeout": 7.0,
        "max_output_chars": 123,
    }


@pytest.mark.parametrize(
    "body",
    [
        b'{"code": "1", "timeout": true}',
        b'{"code": "1", "timeout": 1e9}',
        b'{"code": "1", "max_output_chars": -1}',
        b'{"code": "1", "session_id": ""}',
        b'{"code": "1", "session_id": 3}',
        b'"code"',
        b"\xff",
    ],
)
def test_invalid_execute_requests_are_rejected(body):
    with pytest.raises(BadRequest):
        parse_execute(body, SandboxConfig())


def test_session_ids_route_to_their_worker_or_a_stable_hash():
    assert worker_for("w1-abc", 2) == 1 and worker_for("w0-abc", 2) == 0
    assert worker_for("w7-abc", 2) == worker_for("w7-abc", 2) in (0, 1)  # out of range: hashed
    assert worker_for("sample-17", 4) == worker_for("sample-17", 4)
    assert len({worker_for(f"s{i}", 4) for i in range(100)}) == 4
    assert worker_for(None, 2) is None


def test_worker_command_carries_every_setting_but_the_public_ones():
    cfg = SandboxConfig(workers=3, port=1234, token="t", memory_mb=777, cgroups=False, work_dir="/tmp")
    argv = worker_command(cfg, 2, "/run/w2.sock")
    assert "--token" not in argv and "--port" not in argv and "--workers" not in argv
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for flag in ("--worker-index", "--unix-socket", "--parent-pid"):
        parser.add_argument(flag)
    parsed = from_namespace(parser.parse_args(argv[3:]))
    assert parsed.memory_mb == 777 and parsed.cgroups is False and parsed.work_dir == "/tmp"


def test_config_rejects_impossible_settings():
    with pytest.raises(ValueError, match="max_sessions"):
        SandboxConfig(max_sessions=0)
    with pytest.raises(ValueError, match="session_ttl"):
        SandboxConfig(session_ttl=0)
