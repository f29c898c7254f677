"""The distributed harness of mlcode retries joining the process group, and nothing else.

gloo's connect can fail under load ("Connection closed by peer"), which once made the validator's
determinism check see a reference solution fail. Joining is infrastructure, so a failed join starts the
ranks again on a fresh port; a failure in the body (the answer's code) is never retried. Real gloo,
real forked ranks; the failed join is made by failing the first call in each rank (a marker file per rank).
"""

from __future__ import annotations

import pytest

from assay.benchmarks.mlcode import build

pytest.importorskip("torch.distributed")


def _harness(tmp_path, failing_joins):
    """The harness, with init_process_group failing the first `failing_joins` calls of each rank."""
    namespace: dict = {}
    exec(compile((build.HARNESS_DIR / "distributed.py").read_text(), "distributed.py", "exec"), namespace)
    real_init = namespace["_dist"].init_process_group

    def flaky_init(*args, rank, **kwargs):
        marker = tmp_path / f"joins-{rank}"
        tries = len(marker.read_text()) if marker.exists() else 0
        marker.write_text("x" * (tries + 1))
        if tries < failing_joins:
            raise RuntimeError("Gloo connectFullMesh failed with ... Connection closed by peer")
        return real_init(*args, rank=rank, **kwargs)

    namespace["_dist"] = type("dist", (), {})()
    namespace["_dist"].init_process_group = flaky_init
    namespace["_dist"].destroy_process_group = __import__("torch.distributed").distributed.destroy_process_group
    return namespace


def test_a_failed_join_is_retried_on_a_fresh_port(tmp_path):
    harness = _harness(tmp_path, failing_joins=1)
    assert harness["_mlc_run_ranks"](lambda rank, world_size: (rank, world_size)) == [(0, 2), (1, 2)]
    assert (tmp_path / "joins-0").read_text() == "xx"


def test_joins_that_keep_failing_are_reported_after_three_tries(tmp_path):
    harness = _harness(tmp_path, failing_joins=5)
    with pytest.raises(AssertionError, match="could not join the process group"):
        harness["_mlc_run_ranks"](lambda rank, world_size: rank)
    assert (tmp_path / "joins-0").read_text() == "xxx"


def test_a_failing_body_is_not_retried(tmp_path):
    harness = _harness(tmp_path, failing_joins=0)
    calls = tmp_path / "calls"

    def body(rank, world_size):
        with open(calls, "a") as handle:
            handle.write(str(rank))
        raise ValueError("the answer is wrong")

    with pytest.raises(AssertionError, match="the answer is wrong"):
        harness["_mlc_run_ranks"](body)
    assert sorted(calls.read_text()) == ["0", "1"]
