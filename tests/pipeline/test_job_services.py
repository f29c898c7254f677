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
    return ServiceSpec(name="web", command=[sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
                       health_url="http://127.0.0.1:{port}/", **kw)


def run(tmp_path, command, services, name="svc"):
    job = Job(name=name, command=command, output_dir=tmp_path, services=services)
    exp = submit_experiment(load_cluster_config("local"), name, [job])
    return exp, exp.wait


def test_command_reaches_the_service_on_its_port_and_the_service_is_stopped(tmp_path):
    probe = ("import urllib.request,sys,os; port=sys.argv[1]; "
             "print('status', urllib.request.urlopen(f'http://127.0.0.1:{port}/').status); "
             "open(sys.argv[2],'w').write(port)")
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
    dying = ServiceSpec(name="server", command=[sys.executable, "-c", "import sys; print('cannot load weights', file=sys.stderr); sys.exit(7)"],
                        health_url="http://127.0.0.1:{port}/health")
    exp, wait = run(tmp_path, ["echo", "never runs"], [dying], name="dies")
    with pytest.raises(JobFailedError) as exc:
        wait()
    assert "exited with status 7" in str(exc.value) and "cannot load weights" in str(exc.value)
    assert "never runs" not in exp.final[0].stdout_path.read_text().split("running")[-1]


def test_a_service_that_never_gets_healthy_times_out(tmp_path):
    silent = ServiceSpec(name="server", command=[sys.executable, "-c", "import time; print('loading'); time.sleep(600)"],
                         health_url="http://127.0.0.1:{port}/health", startup_timeout_s=3, poll_interval_s=0.5)
    _, wait = run(tmp_path, ["echo", "x"], [silent], name="slow")
    with pytest.raises(JobFailedError, match=r"not healthy .* after 3s"):
        wait()
