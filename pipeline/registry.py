"""Which jobs an experiment name stands for, so `run_after="sdg"` finds the jobs of the `sdg` stage.

Jobs submitted by this process are remembered in memory (dry runs included); every real submission is
also recorded on disk, in `$ASSAY_STATE_DIR/jobs` (default `~/.cache/assay/jobs`), one JSON file per
cluster and expname, so a launcher started later can chain after jobs submitted earlier.
An expname that names no known job is an error: a chain must never run on missing inputs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from ..core.paths import state_dir
from .job import JobHandle
from .mounts import parse_mounts

_IN_MEMORY: dict[tuple[str, str], list[JobHandle]] = {}


def records_dir() -> Path:
    """`<state dir>/jobs` (core/paths.py): one JSON file per cluster and expname."""
    return state_dir() / "jobs"


def _record_path(cluster: str, expname: str) -> Path:
    return records_dir() / cluster / f"{expname}.json"


def record(cluster: str, expname: str, handles: list[JobHandle]) -> None:
    """Remember that `expname` now stands for `handles` (the last job of each chain it submitted)."""
    _IN_MEMORY[(cluster, expname)] = list(handles)
    real = [h for h in handles if not h.dry_run]
    if not real:
        return
    path = _record_path(cluster, expname)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "expname": expname,
        "submitted_at": time.time(),
        "jobs": [
            {
                "name": h.name,
                "job_id": h.job_id,
                "executor": h.executor,
                "log_dir": str(h.log_dir),
                "mounts": [f"{m.host}:{m.container}" for m in h.mounts],
            }
            for h in real
        ],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


def lookup(cluster: str, expname: str) -> Optional[list[JobHandle]]:
    """The jobs `expname` stands for on `cluster`, or None when it was never submitted."""
    if (cluster, expname) in _IN_MEMORY:
        return _IN_MEMORY[(cluster, expname)]
    path = _record_path(cluster, expname)
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    return [
        JobHandle(
            name=j["name"],
            job_id=j["job_id"],
            executor=j["executor"],
            log_dir=Path(j["log_dir"]),
            mounts=parse_mounts(j.get("mounts", [])),
        )
        for j in payload["jobs"]
    ]


def forget_in_memory() -> None:
    """Drop what this process remembers (tests use it to act as a fresh launcher)."""
    _IN_MEMORY.clear()
