"""ServerSetup.attach: what a job gets from the server options (services, GPU and node request, environment, the
stage's overrides), the one place every pipeline function takes them from. The services themselves run for real in
tests/inference/test_run_cmd_services.py and the eval tests; here, what is put into the job."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.core.config import ConfigError
from assay.pipeline.job import Job
from assay.pipeline.server_options import SANDBOX_URL_ENV, ServerSetup, add_sandbox


def job(**kwargs) -> Job:
    return Job(name="t", command=["true"], output_dir=Path("/tmp/t"), **kwargs)


def test_a_started_server_grows_the_jobs_request_and_points_the_stage_at_it():
    j = job(gpus_per_node=1)
    setup = ServerSetup(model="/models/m", server_gpus=4, server_nodes=2, server_args="--async-scheduling")
    overrides = setup.attach(j, "/env/python")
    assert (j.gpus_per_node, j.nodes) == (4, 2)
    [server] = j.services
    assert server.name == "server" and server.all_nodes
    assert server.command == [
        "/env/python",
        "-m",
        "assay.inference.serve",
        "--server_type=vllm",
        "--model=/models/m",
        "--served_model_name=/models/m",
        "--port={port}",
        "--server_gpus=4",
        "--server_nodes=2",
        "--server_args=--async-scheduling",
    ]
    assert overrides == [
        "++server.server_type=vllm",
        "++server.host=127.0.0.1",
        "++server.port={server_port}",
        "++server.model=/models/m",
    ]
    assert SANDBOX_URL_ENV not in j.env


def test_the_commands_own_gpus_win_when_it_needs_more():
    j = job(gpus_per_node=8, nodes=3)
    ServerSetup(model="m", server_gpus=2).attach(j, "py")
    assert (j.gpus_per_node, j.nodes) == (8, 3)


def test_an_existing_endpoint_starts_nothing_and_asks_for_no_gpus():
    j = job()
    overrides = ServerSetup(model="m", server_address="http://h:5000/v1", server_gpus=8).attach(j, "py")
    assert j.services == [] and j.gpus_per_node == 0
    assert overrides == ["++server.server_type=vllm", "++server.base_url=http://h:5000/v1", "++server.model=m"]


def test_the_sandbox_alone_without_a_model_and_beside_a_server():
    j = job()
    ServerSetup(with_sandbox=True).attach(j, "py")
    assert [s.name for s in j.services] == ["sandbox"] and j.env == {SANDBOX_URL_ENV: "http://127.0.0.1:{sandbox_port}"}
    j = job()
    ServerSetup(model="m", with_sandbox=True).attach(j, "py", host="0.0.0.0")
    assert [s.name for s in j.services] == ["server", "sandbox"]
    assert all("--host=0.0.0.0" in s.command for s in j.services)
    j = job()
    add_sandbox(j, "py")
    assert j.services[0].secret_env == "ASSAY_SANDBOX_TOKEN"


@pytest.mark.parametrize(
    "setup, message",
    [
        (ServerSetup(model="m", server_type="vlm"), "server_type: .*vllm"),
        (ServerSetup(model="m", server_type="openai"), "needs --server_address"),
        (ServerSetup(model="m", server_gpus=-1), "server_gpus >= 0"),
        (ServerSetup(), "--model is required"),
    ],
)
def test_check_refuses_before_anything_is_submitted(setup, message):
    with pytest.raises(ConfigError, match=message):
        setup.check()
