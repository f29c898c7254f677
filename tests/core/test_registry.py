"""The registry behind every extension point: one module per implementation, found by importing the package;
an unknown name lists the known ones with the closest first."""

from __future__ import annotations

import sys
import textwrap

import pytest

from assay.core.registry import Registry
from assay.core.suggest import UnknownNameError, did_you_mean, suggestions
from assay.pipeline.executors import EXECUTORS


def test_each_module_of_the_package_registers_itself(tmp_path, monkeypatch):
    package = tmp_path / "kinds_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from assay.core.registry import Registry\nKINDS = Registry('kind', __name__)\n"
    )
    for name in ("alpha", "beta"):
        (package / f"{name}.py").write_text(
            textwrap.dedent(f"""
                from . import KINDS

                @KINDS.register("{name}")
                class Kind:
                    label = "{name}!"
            """)
        )
    (package / "_private.py").write_text("raise RuntimeError('modules starting with _ are not imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    kinds = __import__("kinds_pkg").KINDS
    try:
        assert kinds.names() == ["alpha", "beta"]
        assert kinds.get("beta").label == "beta!"
        with pytest.raises(UnknownNameError, match=r"unknown kind 'alpa'\. Did you mean 'alpha'\?.*Known: alpha, beta"):
            kinds.get("alpa")
    finally:
        for module in [m for m in sys.modules if m.startswith("kinds_pkg")]:
            del sys.modules[module]


def test_two_implementations_under_one_name_are_refused():
    registry: Registry[object] = Registry("thing", "assay.core")
    registry.add("a", object())
    with pytest.raises(ValueError, match="two things are registered as 'a'"):
        registry.add("a", object())


def test_the_shipped_executors_are_found():
    assert {"local", "slurm"} <= set(EXECUTORS.names())
    assert EXECUTORS.get("local").waits_by_default and not EXECUTORS.get("slurm").waits_by_default


def test_suggestions_cover_misspelt_and_misplaced_keys():
    keys = ["inference.temperature", "inference.top_p", "server.port"]
    assert suggestions("inference.temprature", keys)[0] == "inference.temperature"
    assert suggestions("temperature", keys) == ["inference.temperature"]
    assert did_you_mean("zzz", keys) == ""
