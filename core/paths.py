"""Where assay keeps things outside a run's output folder; each environment variable has one meaning.

- `ASSAY_CACHE_DIR` (default `~/.cache/assay`): what can be rebuilt: prepared benchmark data (`data/`),
  converted models (`models/`), the vLLM CPU venv (`venvs/`).
- `ASSAY_STATE_DIR` (default: the cache folder): what launchers share: job records for `run_after` (`jobs/`)
  and the local clusters' slots (`local_slots/`).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$ASSAY_CACHE_DIR`, or `~/.cache/assay`."""
    return Path(os.environ.get("ASSAY_CACHE_DIR") or Path.home() / ".cache" / "assay")


def state_dir() -> Path:
    """`$ASSAY_STATE_DIR`, or the cache folder."""
    state = os.environ.get("ASSAY_STATE_DIR")
    return Path(state) if state else cache_dir()
