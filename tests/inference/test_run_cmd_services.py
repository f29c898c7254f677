"""run_cmd with a model server and a sandbox beside the command: started in the job, found through the environment.

The command is a small client: it asks the real vLLM (CPU) server for a completion at $ASSAY_SERVER_URL, under
$ASSAY_SERVER_MODEL, and runs code in the real sandbox at $ASSAY_SANDBOX_URL with its token, then writes what it
got; nothing is stood in for.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from assay.core.config import ConfigError
from assay.pipeline.run_cmd import run_cmd
from assay.pipeline.start_server import READY

CLIENT = """
import json, os, sys, urllib.request

def post(url, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.load(response)

chat = post(os.environ["ASSAY_SERVER_URL"] + "/chat/completions", {
    "model": os.environ["ASSAY_SERVER_MODEL"],
    "messages": [{"role": "user", "content": "Say hello."}],
    "max_tokens": 8,
})
run = post(os.environ["ASSAY_SANDBOX_URL"] + "/execute", {"code": "print(6 * 7)"}, os.environ["ASSAY_SANDBOX_TOKEN"])
json.dump({"model": chat["model"], "tokens": chat["usage"]["completion_tokens"], "stdout": run["stdout"]},
          open(sys.argv[1], "w"))
"""


@pytest.mark.timeout(900)
def test_run_cmd_starts_a_server_and_a_sandbox_and_tells_the_command(
    embedded_cache, vllm_cpu_python, monkeypatch, tmp_path
):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(embedded_cache))
    monkeypatch.setenv("ASSAY_VLLM_PYTHON", vllm_cpu_python)
    client, result = tmp_path / "client.py", tmp_path / "result.json"
    client.write_text(CLIENT)
    run_cmd(
        f"{sys.executable} {client} {result}",
        output_dir=str(tmp_path / "out"),
        model="smollm2",
        with_sandbox=True,
        expname="with-services",
    )
    got = json.loads(result.read_text())
    assert got["model"] == "smollm2" and got["tokens"] > 0
    assert got["stdout"] == "42\n"


def test_run_cmd_checks_the_server_before_submitting(tmp_path, capsys):
    with pytest.raises(ConfigError, match="server_type: .*'vlm'"):
        run_cmd("true", model="smollm2", server_type="vlm", output_dir=str(tmp_path), dry_run=True)
    with pytest.raises(ConfigError, match="needs --server_address"):
        run_cmd("true", model="smollm2", server_type="openai", output_dir=str(tmp_path), dry_run=True)
    run_cmd(
        "true", model="m", server_type="openai", server_address="http://h:5/v1", output_dir=str(tmp_path), dry_run=True
    )
    text = capsys.readouterr().out
    assert "ASSAY_SERVER_URL=http://h:5/v1" in text and "service server" not in text


@pytest.mark.timeout(900)
def test_start_server_prints_how_to_reach_it_and_chats(embedded_cache, vllm_cpu_python, tmp_path):
    """`assay start_server --chat` as a user types it: the ready line, a reply from the model, and the server gone
    once the chat ends (on a local cluster the job lives as long as the launcher)."""
    env = dict(os.environ, ASSAY_CACHE_DIR=str(embedded_cache), ASSAY_VLLM_PYTHON=vllm_cpu_python)
    command = [sys.executable, "-m", "assay.pipeline.cli", "start_server", "--model=smollm2", "--chat"]
    done = subprocess.run(
        [*command, f"--output_dir={tmp_path}"],
        input="Say hello.\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ready = next(line for line in done.stdout.splitlines() if line.startswith(READY))
    url = ready.split()[3]
    assert url.startswith("http://") and url.endswith("/v1") and ready.endswith("serving smollm2")
    assert "smollm2> " in done.stdout and "chat ended, server stopped" in done.stdout
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_the_announcement_names_the_node_and_a_chat_that_fails_goes_on(tmp_path):
    from assay.pipeline.start_server import announce, chat_loop

    token_file = tmp_path / "sandbox_token"
    text = announce(
        {
            "ASSAY_SERVER_URL": "http://127.0.0.1:5000/v1",
            "ASSAY_SERVER_MODEL": "m",
            "ASSAY_SANDBOX_URL": "http://127.0.0.1:6000",
            "ASSAY_SANDBOX_TOKEN": "t0k",
            "ASSAY_SANDBOX_TOKEN_FILE": str(token_file),
        }
    )
    assert text.startswith(f"{READY} http://{socket.getfqdn()}:5000/v1 serving m")
    assert f"curl http://{socket.getfqdn()}:5000/v1/models" in text and f"its token is in {token_file}" in text
    assert "t0k" not in text and token_file.read_text() == "t0k\n" and token_file.stat().st_mode & 0o777 == 0o600
    said: list[str] = []
    typed = iter(["hello", ""])
    replies = chat_loop("http://127.0.0.1:9/v1", "m", read=lambda _: next(typed), write=said.append)
    assert replies == 0 and said and said[0].startswith("[assay] the request failed")
