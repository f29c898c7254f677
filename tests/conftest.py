"""Shared fixtures: every test gets its own job registry, so expnames never leak between tests."""

import os
import shutil
import subprocess

import pytest

from assay.pipeline import registry


@pytest.fixture(autouse=True)
def isolated_job_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_STATE_DIR", str(tmp_path / "assay-state"))
    registry.forget_in_memory()
    yield
    registry.forget_in_memory()


STANDIN_SCRIPT = __import__("pathlib").Path(__file__).parent / "inference" / "openai_standin.py"


@__import__("contextlib").contextmanager
def running_standin():
    """The OpenAI-compatible stand-in server (tests/inference/openai_standin.py) on a free port; yields the port."""
    import subprocess
    import sys
    import time
    import urllib.request

    from assay.pipeline.services import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, str(STANDIN_SCRIPT), str(port)])
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def standin_url():
    """Base URL (…/v1) of a fresh stand-in server, for pipeline tests that need an endpoint but no model."""
    with running_standin() as port:
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def standin_port():
    """Port of a stand-in server shared by a module's tests (they tell their requests apart by prompt)."""
    with running_standin() as port:
        yield port


# The real test Slurm cluster: tests that use it need tests/slurm/start_local_slurm.sh to have run.
# Without it they are skipped, unless ASSAY_REQUIRE_SLURM=1 (set by .ci/run), where a missing cluster is
# a failure: CI must never pass by skipping them.

def _cluster_idle() -> bool:
    if not shutil.which("sinfo"):
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return out.returncode == 0 and any(s.strip() in ("idle", "mixed", "allocated") for s in out.stdout.splitlines())


@pytest.fixture(scope="session")
def slurm_cluster():
    if not _cluster_idle():
        message = "the test Slurm cluster is not running (run tests/slurm/start_local_slurm.sh)"
        if os.environ.get("ASSAY_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return "test-slurm"
