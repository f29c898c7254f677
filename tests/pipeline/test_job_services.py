"""Services beside a job's command: started first, healthy before the command runs, always stopped."""

import sys

import pytest

from assay.pipeline import JobFailedError
from assay.pipeline.cluster import load_cluster_config
from assay.pipeline.experiment import submit_experiment
from assay.pipeline.job import Job
from assay.pipeline.services import ServiceSpec


def http_service(**kw):
    # a real HTTP server process, the smallest service with a health URL
    return ServiceSpec(
        name="web",
        command=[sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
        health_url="http://127.0.0.1:{port}/",
        **kw,
    )


def run(tmp_path, command, services, name="svc"):
    job = Job(name=name, command=command, output_dir=tmp_path, services=services)
    exp = submit_experiment(load_cluster_config("local"), name, [job])
    return exp, exp.wait


def test_command_reaches_the_service_on_its_port_and_the_service_is_stopped(tmp_path):
    probe = (
        "import urllib.request,sys,os; port=sys.argv[1]; "
        "print('status', urllib.request.urlopen(f'http://127.0.0.1:{port}/').status); "
        "open(sys.argv[2],'w').write(port)"
    )
    exp, wait = run(tmp_path, [sys.executable, "-c", probe, "{web_port}", str(tmp_path / "port.txt")], [http_service()])
    wait()
    handle = exp.final[0]
    assert "status 200" in handle.stdout_path.read_text()
    port = int((tmp_path / "port.txt").read_text())
    log = tmp_path / "logs" / "svc" / f"{handle.job_id}_web.log"
    assert log.exists()
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)


def test_a_service_that_dies_fails_the_job_with_its_log_tail(tmp_path):
    dying = ServiceSpec(
        name="server",
        command=[sys.executable, "-c", "import sys; print('cannot load weights', file=sys.stderr); sys.exit(7)"],
        health_url="http://127.0.0.1:{port}/health",
    )
    exp, wait = run(tmp_path, ["echo", "never runs"], [dying], name="dies")
    with pytest.raises(JobFailedError) as exc:
        wait()
    assert "exited with status 7" in str(exc.value) and "cannot load weights" in str(exc.value)
    assert "never runs" not in exp.final[0].stdout_path.read_text().split("running")[-1]


def test_a_service_that_never_gets_healthy_times_out(tmp_path):
    silent = ServiceSpec(
        name="server",
        command=[sys.executable, "-c", "import time; print('loading'); time.sleep(600)"],
        health_url="http://127.0.0.1:{port}/health",
        startup_timeout_s=3,
        poll_interval_s=0.5,
    )
    _, wait = run(tmp_path, ["echo", "x"], [silent], name="slow")
    with pytest.raises(JobFailedError, match=r"not healthy .* after 3s"):
        wait()


def test_a_worker_node_keeps_its_services_up_until_the_head_is_done(tmp_path):
    import threading
    import time

    from assay.pipeline.job_runner import wait_for_head
    from assay.pipeline.services import start_service

    service = start_service(http_service(all_nodes=True), tmp_path / "web_node1.log")
    head_result = tmp_path / "123_0_result.pkl"
    threading.Timer(1.0, head_result.write_bytes, args=(b"done",)).start()
    start = time.monotonic()
    try:
        assert wait_for_head(head_result, [service], poll_s=0.1)["worker"] is True
        assert time.monotonic() - start >= 0.9 and service.process.poll() is None
    finally:
        service.process.kill()
        service.process.wait()


def test_a_worker_node_whose_service_dies_fails_with_its_log(tmp_path):
    from assay.pipeline.job_runner import CommandFailedError, wait_for_head
    from assay.pipeline.services import start_service

    dying = ServiceSpec(
        name="server",
        command=[sys.executable, "-c", "print('worker lost the head'); raise SystemExit(3)"],
        health_url="http://127.0.0.1:{port}/",
        all_nodes=True,
    )
    service = start_service(dying, tmp_path / "server_node1.log")
    with pytest.raises(CommandFailedError, match="(?s)status 3.*worker lost the head"):
        wait_for_head(tmp_path / "never.pkl", [service], poll_s=0.1)


def test_multi_node_server_dry_run(tmp_path, capsys):
    import json

    from assay.pipeline import generate

    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"question": "q"}) + "\n")
    generate(
        input_file=str(inp),
        output_dir=str(tmp_path),
        model="/models/big",
        cluster="test-slurm",
        server_gpus=2,
        server_nodes=2,
        dry_run=True,
    )
    text = capsys.readouterr().out
    assert "#SBATCH --nodes=2" in text and "#SBATCH --gpus-per-node=2" in text
    assert "--server_gpus=2 --server_nodes=2" in text


def test_serve_builds_each_nodes_part_of_a_multi_node_vllm(monkeypatch, capsys):
    import shutil

    if not shutil.which("scontrol"):
        pytest.skip("needs scontrol to expand the node list")
    from assay.inference import serve

    monkeypatch.setenv("SLURM_JOB_NODELIST", "nodea,nodeb")
    for rank, headless in [("0", False), ("1", True)]:
        monkeypatch.setenv("SLURM_NODEID", rank)
        serve.main(
            [
                "--server_type=vllm",
                "--model=/models/big",
                "--port=5000",
                "--server_gpus=8",
                "--server_nodes=2",
                "--dry_run",
            ]
        )
        line = capsys.readouterr().out
        assert "--nnodes 2" in line and f"--node-rank {rank}" in line and "--master-addr nodea" in line
        assert ("--headless" in line) == headless


def test_a_service_token_reaches_the_command_through_the_environment_only(tmp_path):
    # The service sees its token in its environment; so does the command. Neither log holds it.
    service = ServiceSpec(
        name="web",
        health_url="http://127.0.0.1:{port}/",
        secret_env="ASSAY_TEST_TOKEN",
        command=[
            sys.executable,
            "-c",
            "import os, sys, http.server, functools; "
            "open(sys.argv[2], 'w').write(os.environ['ASSAY_TEST_TOKEN']); "
            "http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, port=int(sys.argv[1]), "
            "bind='127.0.0.1')",
            "{port}",
            str(tmp_path / "service_token.txt"),
        ],
    )
    probe = "import os, sys; open(sys.argv[1], 'w').write(os.environ.get('ASSAY_TEST_TOKEN', ''))"
    exp, wait = run(
        tmp_path, [sys.executable, "-c", probe, str(tmp_path / "command_token.txt")], [service], name="secret"
    )
    wait()
    token = (tmp_path / "command_token.txt").read_text()
    assert len(token) >= 32 and token == (tmp_path / "service_token.txt").read_text()
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*") if p.is_file())
    assert token not in logs
