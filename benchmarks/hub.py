"""Rows of a public dataset on the Hugging Face Hub, for the benchmarks' `download` steps.

With the `datasets` library installed (it comes with assay's training dependencies) the split is loaded
with `datasets.load_dataset`, which uses the user's Hub cache and token. Without it, the rows come from the
Hub's public rows API, 100 per request. A machine that cannot resolve the Hub's name fails at once (not
after `datasets`' half minute of retries) unless HF_HUB_OFFLINE=1 asks for the local Hub cache; prepare_data
turns the error into "pass --data_file=...".
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
from typing import Optional

from .registry import fetch

HUB_HOST = "huggingface.co"
ROWS_API = "https://datasets-server.huggingface.co/rows"
PAGE = 100


def hub_rows(dataset: str, split: str, config: Optional[str] = None) -> list[dict]:
    """Every row of `dataset` (config `config`, split `split`), as plain dicts in the upstream format."""
    if os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false"):
        try:
            socket.getaddrinfo(HUB_HOST, 443)
        except OSError as exc:
            raise OSError(f"{HUB_HOST} cannot be reached ({exc}; HF_HUB_OFFLINE=1 reads the local Hub cache)") from None
    try:
        import datasets
    except ImportError:
        return _rows_api(dataset, split, config or "default")
    loaded = datasets.load_dataset(dataset, config, split=split)
    return [dict(row) for row in loaded]


def _rows_api(dataset: str, split: str, config: str) -> list[dict]:
    rows: list[dict] = []
    while True:
        query = urllib.parse.urlencode(
            {"dataset": dataset, "config": config, "split": split, "offset": len(rows), "length": PAGE}
        )
        page = json.loads(fetch(f"{ROWS_API}?{query}"))
        rows += [item["row"] for item in page["rows"]]
        if not page["rows"] or len(rows) >= page.get("num_rows_total", 0):
            return rows
