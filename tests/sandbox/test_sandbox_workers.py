"""Several worker processes behind one port: requests reach the worker that owns the session."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture(scope="module")
def multi(server_factory):
    srv = server_factory("workers", "--workers", "2", "--pool-size", "1")
    with srv.client() as c:
        yield srv, c


def test_sessions_keep_state_whichever_worker_owns_them(multi):
    _, c = multi
    made = [c.create_session(), c.create_session()]
    assert {m.split("-")[0] for m in made} == {"w0", "w1"}  # new sessions go round-robin
    ids = made + ["alpha", "beta", "gamma"]
    for i, session_id in enumerate(ids):
        assert c.execute(f"v = {i}", session_id=session_id).status == "ok"
    for i, session_id in enumerate(ids):
        assert c.execute("print(v)", session_id=session_id).stdout == f"{i}\n"
    listed = {s["session_id"] for s in c.sessions()}
    assert set(ids) <= listed
    for session_id in ids:
        assert c.delete_session(session_id)
    assert not set(ids) & {s["session_id"] for s in c.sessions()}


def test_health_covers_every_worker_and_throwaway_calls_work(multi):
    _, c = multi
    health = c.health()
    assert health["status"] == "ok" and [w["worker"] for w in health["workers"]] == [0, 1]
    assert c.execute("print('fresh')").stdout == "fresh\n"


def test_router_passes_on_bad_requests_and_auth_failures(multi):
    srv, c = multi
    bad = httpx.post(f"{srv.url}/execute", content=b"{oops", headers={"Authorization": f"Bearer {srv.token}"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["message"]
    assert httpx.get(f"{srv.url}/sessions").status_code == 401
    assert httpx.get(f"{srv.url}/health").status_code == 200  # health checks need no token
    assert c.execute("1 + 1").result == "2"
