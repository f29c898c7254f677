"""The session cap and the CPU-time limit, on a server that allows one session and 3 CPU seconds."""

from __future__ import annotations

import pytest

from assay.sandbox.client import SandboxHTTPError


@pytest.fixture(scope="module")
def capped(server_factory):
    srv = server_factory("capped", "--max-sessions", "1", "--pool-size", "0", "--cpu-seconds", "3")
    with srv.client() as c:
        yield c


def test_session_cap_rejects_new_sessions_with_503_until_one_is_deleted(capped):
    assert capped.execute("a = 1", session_id="only").status == "ok"
    for session_id in ("second", None):  # a named session, and a throw-away call
        with pytest.raises(SandboxHTTPError) as err:
            capped.execute("1", session_id=session_id)
        assert err.value.status_code == 503 and "session limit reached" in err.value.message
    assert capped.execute("print(a)", session_id="only").stdout == "1\n"  # existing ones go on
    assert capped.delete_session("only")
    assert capped.execute("b = 2", session_id="second").status == "ok"
    assert capped.delete_session("second")


def test_cpu_time_limit_kills_a_kernel_that_spends_it(capped):
    r = capped.execute("while True:\n    pass", timeout=120)
    assert r.status == "killed" and "CPU time limit" in r.error["evalue"]
    assert capped.execute("print('next')").stdout == "next\n"


def test_kernels_that_cannot_start_give_503_with_the_reason(server_factory):
    srv = server_factory("no-python", "--python", "/nonexistent/python", "--pool-size", "1")
    with srv.client() as c:
        assert c.health()["status"] == "ok"
        with pytest.raises(SandboxHTTPError) as err:
            c.execute("1")
        assert err.value.status_code == 503 and "kernel did not start" in err.value.message
        assert "/nonexistent/python" in err.value.message
