"""The benchmarks assay knows, each with its defaults, and `prepare_data`, which writes their test split.

Prepared data lives in a cache outside the installed package (`$ASSAY_CACHE_DIR/data/<name>/test.jsonl`,
default `~/.cache/assay/data`), beside a `test.jsonl.sha256` checksum that every later read verifies,
so a prepared file that changed under the user's feet is noticed instead of silently evaluated.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Optional

from ..core.jsonl import read_jsonl, write_jsonl_atomic
from ..core.suggest import did_you_mean
from ..evaluation.graders import get_grader


class BenchmarkError(ValueError):
    """A benchmark that is unknown, cannot be prepared, or whose prepared data is damaged."""


@dataclass(frozen=True)
class Benchmark:
    """What eval needs to know about one benchmark."""

    name: str
    grader: str
    """A grader of evaluation/graders/: math (expected_answer vs the boxed answer), code (hidden tests run in the
    sandbox), mcq (the chosen letter)."""
    prompt_config: str
    tokens_to_generate: int
    required_fields: tuple[str, ...]
    description: str
    shipped_file: Optional[str] = None
    """A JSONL inside the package (relative to assay.benchmarks)."""
    download: Optional[Callable[[], list[dict]]] = None
    """Fetches the test split from its public source (needs the network)."""

    @property
    def needs_sandbox(self) -> bool:
        return get_grader(self.grader).needs_sandbox


# ----------------------------------------------------------------------------- public sources

AIME24_URL = (
    "https://datasets-server.huggingface.co/rows?dataset=HuggingFaceH4%2Faime_2024"
    "&config=default&split=train&offset=0&length=100"
)
AIME25_URLS = (
    "https://huggingface.co/datasets/opencompass/AIME2025/resolve/main/aime2025-I.jsonl",
    "https://huggingface.co/datasets/opencompass/AIME2025/resolve/main/aime2025-II.jsonl",
)
DOWNLOAD_TIMEOUT_S = 30


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return response.read()


def download_aime24() -> list[dict]:
    rows = json.loads(_fetch(AIME24_URL))["rows"]
    return [
        {"id": f"aime24-{i}", "problem": r["row"]["problem"], "expected_answer": str(r["row"]["answer"])}
        for i, r in enumerate(rows)
    ]


def download_aime25() -> list[dict]:
    lines = []
    for url in AIME25_URLS:
        lines += [json.loads(x) for x in _fetch(url).decode().splitlines() if x.strip()]
    return [
        {"id": f"aime25-{i}", "problem": x["question"], "expected_answer": str(x["answer"])}
        for i, x in enumerate(lines)
    ]


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark(
            "smallmath",
            "math",
            "generic/math",
            512,
            ("problem", "expected_answer"),
            "24 arithmetic and word problems with integer answers (shipped; for CPU runs and tests)",
            shipped_file="smallmath/smallmath.jsonl",
        ),
        Benchmark(
            "aime24",
            "math",
            "generic/math",
            16384,
            ("problem", "expected_answer"),
            "AIME 2024, 30 problems (downloaded from its public source, or --data_file)",
            download=download_aime24,
        ),
        Benchmark(
            "aime25",
            "math",
            "generic/math",
            16384,
            ("problem", "expected_answer"),
            "AIME 2025, 30 problems (downloaded from its public source, or --data_file)",
            download=download_aime25,
        ),
        Benchmark(
            "mlcode",
            "code",
            "mlcode/default",
            2048,
            ("prompt", "entry_point", "tests"),
            "87 executable ML research coding tasks in six categories (shipped)",
            shipped_file="mlcode/mlcode.jsonl",
        ),
        Benchmark(
            "smallcode",
            "code",
            "mlcode/default",
            256,
            ("prompt", "entry_point", "tests"),
            "12 one-line Python function tasks (shipped; for CPU runs and GRPO tests)",
            shipped_file="smallcode/smallcode.jsonl",
        ),
    ]
}


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise BenchmarkError(
            f"unknown benchmark '{name}'.{did_you_mean(name, BENCHMARKS)} Known: {', '.join(BENCHMARKS)}"
        )
    return BENCHMARKS[name]


# ----------------------------------------------------------------------------- prepared data


def data_dir() -> Path:
    root = os.environ.get("ASSAY_CACHE_DIR") or Path.home() / ".cache" / "assay"
    return Path(root) / "data"


def test_file(name: str) -> Path:
    return data_dir() / name / "test.jsonl"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_fields(bench: Benchmark, lines: list[dict], origin: str) -> None:
    if not lines:
        raise BenchmarkError(f"{origin}: no lines for {bench.name}")
    for number, line in enumerate(lines, start=1):
        missing = [f for f in bench.required_fields if f not in line]
        if missing:
            raise BenchmarkError(f"{origin}:{number}: {bench.name} needs field(s) {', '.join(missing)}")


def prepare_data(name: str, data_file: Optional[str] = None) -> Path:
    """Write `<cache>/data/<name>/test.jsonl` (and its checksum) from the shipped file, a download, or `data_file`."""
    bench = get_benchmark(name)
    if data_file:
        lines = list(read_jsonl(data_file))
        origin = str(data_file)
    elif bench.shipped_file:
        origin = f"shipped {bench.shipped_file}"
        lines = list(read_jsonl(Path(str(resources.files("assay.benchmarks"))) / bench.shipped_file))
    else:
        try:
            lines = bench.download()  # type: ignore[misc]
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            raise BenchmarkError(
                f"cannot download {name} from its public source ({type(exc).__name__}: {exc}); this machine may be "
                f"offline. Pass a local copy instead: assay prepare_data {name} --data_file=/path/{name}.jsonl "
                f"(one JSON object per line with fields {', '.join(bench.required_fields)})"
            ) from None
        origin = f"download of {name}"
    _check_fields(bench, lines, origin)
    target = test_file(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(target, lines)
    target.with_name("test.jsonl.sha256").write_text(_sha256(target) + "\n")
    print(f"prepared {name}: {len(lines)} lines from {origin} -> {target}")
    return target


def prepared_test_file(name: str, prepare_if_missing: bool = True) -> Path:
    """The verified test file of a benchmark, preparing shipped benchmarks on first use."""
    bench = get_benchmark(name)
    path = test_file(name)
    checksum = path.with_name("test.jsonl.sha256")
    if not path.exists():
        if prepare_if_missing and bench.shipped_file:
            return prepare_data(name)
        raise BenchmarkError(f"{name} is not prepared: run `assay prepare_data {name}` (offline: add --data_file=...)")
    if not checksum.exists() or checksum.read_text().strip() != _sha256(path):
        raise BenchmarkError(
            f"{path} does not match its checksum (changed since it was prepared): run `assay prepare_data {name}` again"
        )
    return path


def copy_for_run(name: str, target_dir: Path) -> Path:
    """Snapshot the test file into the run's folder, so the run reads a file nothing else rewrites."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "test.jsonl"
    shutil.copyfile(prepared_test_file(name), target)
    return target
