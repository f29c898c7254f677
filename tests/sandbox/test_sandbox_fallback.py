"""Limits without cgroups (--no-cgroups): a watcher over /proc kills sessions, and idle TTL."""

from __future__ import annotations

import time

import pytest

BOUNDED_FORK_BOMB = """
import os, time
for _ in range(6):  # up to 64 processes, each then sleeping
    os.fork()
time.sleep(60)
"""


@pytest.fixture(scope="module")
def watched(server_factory):
    srv = server_factory(
        "watched",
        "--no-cgroups",
        "--memory-mb",
        "300",
        "--max-processes",
        "24",
        "--session-ttl",
        "1",
        "--pool-size",
        "1",
    )
    with srv.client() as c:
        yield c


def test_health_says_limits_are_enforced_by_watching(watched):
    limits = watched.health()["limits"]
    assert limits["processes"].startswith("process-group watch") and limits["memory"].startswith("RSS watch")


def test_fork_bomb_is_killed_by_the_process_watch(watched):
    r = watched.execute(BOUNDED_FORK_BOMB, timeout=60)
    assert r.status == "killed" and "process limit" in r.error["evalue"]
    assert watched.execute("print(1)").stdout == "1\n"


def test_resident_memory_over_the_limit_is_killed_by_the_rss_watch(watched):
    r = watched.execute("x = b'x' * (600 * 1024**2)\nimport time\ntime.sleep(30)", timeout=60)
    assert r.status == "killed" and "memory" in r.error["evalue"]
    assert watched.execute("print(1)").stdout == "1\n"


def test_idle_sessions_are_deleted_after_the_ttl(watched):
    watched.execute("kept = 1", session_id="idle")
    for _ in range(300):  # TTL is 1 s; the reaper looks every 0.25 s
        if "idle" not in {s["session_id"] for s in watched.sessions()}:
            break
        time.sleep(0.1)
    assert "idle" not in {s["session_id"] for s in watched.sessions()}
    r = watched.execute("print(kept)", session_id="idle")
    assert r.error["ename"] == "NameError"
    watched.delete_session("idle")
