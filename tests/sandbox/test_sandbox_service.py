"""The HTTP contract of the sandbox, against a real server with real IPython kernels."""

from __future__ import annotations

import asyncio
import http.client
import json

import httpx
import pytest

from assay.sandbox.client import AsyncSandboxClient, SandboxClient, SandboxHTTPError


def test_named_session_keeps_variables_between_calls(client):
    assert client.execute("x = 41", session_id="keeps-state").status == "ok"
    r = client.execute("print(x + 1)\nx + 1", session_id="keeps-state")
    assert (r.status, r.stdout, r.result, r.session_id) == ("ok", "42\n", "42", "keeps-state")
    assert r.restarted is False and r.error is None
    assert client.delete_session("keeps-state")


def test_null_session_runs_in_a_fresh_kernel_that_is_discarded(client):
    first = client.execute("secret = 1")
    second = client.execute("print(secret)")
    assert first.status == "ok"
    assert second.status == "error" and second.error["ename"] == "NameError"
    assert first.session_id.startswith("w0-") and first.session_id != second.session_id
    listed = {s["session_id"] for s in client.sessions()}
    assert first.session_id not in listed and second.session_id not in listed


def test_unknown_session_id_creates_that_session_and_delete_removes_it(client):
    r = client.execute("y = 'made'", session_id="brand-new-id")
    assert (r.status, r.session_id) == ("ok", "brand-new-id")
    assert "brand-new-id" in {s["session_id"] for s in client.sessions()}
    assert client.delete_session("brand-new-id") is True
    assert client.delete_session("brand-new-id") is False
    again = client.execute("print(y)", session_id="brand-new-id")
    assert again.error["ename"] == "NameError"  # a deleted id starts over empty
    client.delete_session("brand-new-id")


def test_service_made_session_ids_name_their_worker(client):
    session_id = client.create_session()
    assert session_id.startswith("w0-")
    client.execute("z = 3", session_id=session_id)
    assert client.execute("z * 2", session_id=session_id).result == "6"
    client.delete_session(session_id)


def test_python_errors_come_back_with_name_value_and_plain_traceback(client):
    r = client.execute("def f():\n    return 1 / 0\nf()")
    assert r.status == "error"
    assert r.error["ename"] == "ZeroDivisionError" and r.error["evalue"] == "division by zero"
    text = "\n".join(r.error["traceback"])
    assert "return 1 / 0" in text and "\x1b[" not in text


def test_syntax_errors_are_reported_as_syntax_errors(client):
    r = client.execute("def f(:\n    pass")
    assert r.status == "error" and r.error["ename"] == "SyntaxError"


def test_stdout_stderr_result_and_subprocess_output_are_separated(client):
    code = (
        "import sys, subprocess\nprint('out')\nprint('err', file=sys.stderr)\nsubprocess.run(['echo', 'child'])\n'res'"
    )
    r = client.execute(code)
    assert r.status == "ok"
    assert r.stdout == "out\nchild\n" and r.stderr == "err\n" and r.result == "'res'"


def test_long_output_keeps_head_and_tail_with_a_marker(client):
    r = client.execute("print('HEAD' + 'x' * 1_000_000 + 'TAIL')", max_output_chars=1000)
    assert r.status == "ok"
    assert r.stdout.startswith("HEAD") and r.stdout.endswith("TAIL\n")
    assert "...[truncated " in r.stdout and len(r.stdout) < 1100


def test_calls_on_one_session_run_one_at_a_time(server):
    async def main():
        async with AsyncSandboxClient(server.url, token=server.token) as c:
            await c.execute("n = 0", session_id="serial")
            bump = "import time\ncurrent = n\ntime.sleep(0.2)\nn = current + 1"
            await asyncio.gather(*(c.execute(bump, session_id="serial") for _ in range(3)))
            r = await c.execute("print(n)", session_id="serial")
            await c.delete_session("serial")
            return r

    assert asyncio.run(main()).stdout == "3\n"


def test_parallel_sessions_keep_their_own_state(server):
    async def main():
        async with AsyncSandboxClient(server.url, token=server.token) as c:
            ids = [f"parallel-{i}" for i in range(6)]
            await asyncio.gather(*(c.execute(f"v = {i} * 10", session_id=s) for i, s in enumerate(ids)))
            results = await asyncio.gather(*(c.execute("print(v)", session_id=s) for s in ids))
            await asyncio.gather(*(c.delete_session(s) for s in ids))
            return [r.stdout for r in results]

    assert asyncio.run(main()) == [f"{i * 10}\n" for i in range(6)]


def test_one_client_connection_serves_many_requests(client):
    for i in range(15):
        r = client.execute(f"print({i})", session_id="keepalive")
        assert r.stdout == f"{i}\n"
        assert client.health()["status"] == "ok"
    client.delete_session("keepalive")


def test_raw_keep_alive_connection_is_reused_for_every_request(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    conn.connect()
    sock = conn.sock
    for i in range(5):
        conn.request("POST", "/execute", body=json.dumps({"code": f"{i} + 1", "session_id": "raw"}), headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["result"] == str(i + 1)
        conn.request("GET", "/health", headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
        assert conn.sock is sock  # the same TCP connection throughout
    conn.request("DELETE", "/sessions/raw", headers=headers)
    assert conn.getresponse().status == 200
    conn.close()


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"session_id": null}', "'code' is required"),
        (b'{"code": 5}', "'code' is required"),
        (b'{"code": "1", "timeout": "soon"}', "'timeout' must be a number"),
        (b'{"code": "1", "timeout": -1}', "'timeout' must be between"),
        (b'{"code": "1", "max_output_chars": 1.5}', "'max_output_chars' must be an integer"),
        (b'{"code": "1", "language": "bash"}', "Python only"),
        (b'{"code": "1", "session_id": "../etc"}', "session_id must be"),
    ],
)
def test_malformed_requests_get_400_with_a_reason_and_service_goes_on(server, client, assert_serving, body, message):
    resp = httpx.post(f"{server.url}/execute", content=body, headers={"Authorization": f"Bearer {server.token}"})
    assert resp.status_code == 400
    assert message in resp.json()["message"]
    assert_serving(client)


def test_wrong_or_missing_token_gets_401_and_service_goes_on(server, client, assert_serving):
    for token in ("wrong-token", ""):
        with SandboxClient(server.url, token=token) as bad:
            with pytest.raises(SandboxHTTPError) as err:
                bad.execute("print(1)")
            assert err.value.status_code == 401
            with pytest.raises(SandboxHTTPError):
                bad.sessions()
            assert bad.health()["status"] == "ok"  # health checks need no token
    assert_serving(client)


def test_health_reports_limits_and_pool(client):
    h = client.health()
    assert h["status"] == "ok" and h["worker"] == 0
    assert h["max_sessions"] >= 1 and "processes" in h["limits"] and "memory" in h["limits"]


def test_client_reads_address_and_token_from_environment(server, monkeypatch):
    monkeypatch.setenv("ASSAY_SANDBOX_URL", server.url)
    monkeypatch.setenv("ASSAY_SANDBOX_TOKEN", server.token)
    with SandboxClient() as c:
        assert c.wait_until_healthy(30)["status"] == "ok"
        assert c.execute("2 ** 10").result == "1024"


def test_async_client_waits_for_health_and_executes(server):
    async def main():
        async with AsyncSandboxClient(server.url, token=server.token) as c:
            await c.wait_until_healthy(30)
            return await c.execute("print('async')")

    assert asyncio.run(main()).stdout == "async\n"


def test_wait_until_healthy_gives_up_on_an_address_with_no_server():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with SandboxClient(f"http://127.0.0.1:{port}") as c:
        with pytest.raises(TimeoutError, match="not healthy"):
            c.wait_until_healthy(timeout=0.5)


def test_output_is_capped_in_the_session_and_the_cap_has_a_maximum(client):
    r = client.execute("print('x' * 10**8)", timeout=60, max_output_chars=1000)
    assert r.status == "ok" and len(r.stdout) < 1100 and "truncated" in r.stdout
    with pytest.raises(SandboxHTTPError) as err:
        client.execute("1", max_output_chars=10**9)
    assert err.value.status_code == 400 and "max_output_chars" in err.value.message
