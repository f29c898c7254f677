"""The real test Slurm cluster: tests here need tests/slurm/start_local_slurm.sh to have run.

Without it they are skipped, unless ASSAY_REQUIRE_SLURM=1 (set by .ci/run), where a missing
cluster is a failure: CI must never pass by skipping them.
"""

import os
import shutil
import subprocess

import pytest


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
