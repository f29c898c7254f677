"""Shared fixtures: every test gets its own job registry, so expnames never leak between tests."""

import pytest

from assay.pipeline import registry


@pytest.fixture(autouse=True)
def isolated_job_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_STATE_DIR", str(tmp_path / "assay-state"))
    registry.forget_in_memory()
    yield
    registry.forget_in_memory()
