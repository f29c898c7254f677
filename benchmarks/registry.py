"""The benchmarks assay knows, each with its defaults, and `prepare_data`, which writes their test split.

Prepared data lives in a cache outside the installed package (`$ASSAY_CACHE_DIR/data/<name>/test.jsonl`,
default `~/.cache/assay/data`), beside a `test.jsonl.sha256` checksum that every later read verifies,
so a prepared file that changed under the user's feet is noticed instead of silently evaluated.

A user's own benchmarks need no change to assay: a folder `<dir>/<name>/` with a `benchmark.yaml`
(grader, prompt_config, tokens_to_generate, required_fields, description) and its `test.jsonl`, where
`<dir>` is in `$ASSAY_EXTRA_DATASETS` (paths separated by `:`; `eval(extra_datasets=...)` sets it). A
`<dir>/<name>/group.yaml` with `benchmarks: [a, b]` is a group: one name for several benchmarks, as
the built-in groups in BENCHMARK_GROUPS are.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Optional

from ..core.jsonl import read_jsonl, write_jsonl_atomic
from ..core.paths import cache_dir
from ..core.registry import Registry
from ..core.suggest import UnknownNameError
from ..evaluation.graders import get_grader


class BenchmarkError(ValueError):
    """A benchmark that is unknown, cannot be prepared, or whose prepared data is damaged."""


@dataclass(frozen=True)
class Benchmark:
    """What eval needs to know about one benchmark."""

    name: str
    grader: str
    """A grader of evaluation/graders/: math (expected_answer vs the boxed answer), code (hidden tests run in the
    sandbox), mcq (the chosen letter), judge (an LLM judge's verdict), ifeval (verifiable instructions)."""
    prompt_config: str
    tokens_to_generate: Optional[int]
    """The benchmark's token budget; None leaves it to the stage (the rest of the model's context)."""
    required_fields: tuple[str, ...]
    description: str
    shipped_file: Optional[str] = None
    """A JSONL inside the package (relative to assay.benchmarks), e.g. smallmath/smallmath.jsonl."""
    data_file: Optional[str] = None
    """A user benchmark's own test.jsonl, used where it is (no prepare step)."""
    download: Optional[Callable[[], list[dict]]] = None
    """Fetches the test split from its public source (needs the network), as rows in the upstream format."""
    from_upstream: Optional[Callable[[dict, int], dict]] = None
    """Turns one upstream row (and its index) into assay's fields. Applied to what `download` returns, and to a
    `--data_file` whose lines are in the upstream format (lines that already carry the required fields are kept)."""

    @property
    def needs_sandbox(self) -> bool:
        return get_grader(self.grader).needs_sandbox

    @property
    def needs_judge(self) -> bool:
        return get_grader(self.grader).needs_judge


BENCHMARKS: Registry[Benchmark] = Registry(
    "benchmark",
    "assay.benchmarks",
    "Add one with a folder in assay/benchmarks/ whose __init__.py registers it (see smallmath/).",
    packages_only=True,
)
"""Each folder of assay/benchmarks/ is one benchmark: its __init__.py adds a `Benchmark` here."""


def fetch(url: str) -> bytes:
    """The body of a public URL (a benchmark's download); an offline machine gets a clear error from prepare_data."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return response.read()


DOWNLOAD_TIMEOUT_S = 30


def fetch_jsonl(url: str) -> list[dict]:
    """The JSON lines of a public URL (a benchmark's upstream file)."""
    import json

    return [json.loads(line) for line in fetch(url).decode("utf-8").splitlines() if line.strip()]


BENCHMARK_GROUPS: dict[str, tuple[str, ...]] = {
    "aime": ("aime24", "aime25"),
    "small": ("smallmath", "smallcode"),
}
"""One name for several benchmarks: `--benchmarks=aime:16` is aime24:16 and aime25:16."""

EXTRA_DATASETS_ENV = "ASSAY_EXTRA_DATASETS"
USER_BENCHMARK_KEYS = ("grader", "prompt_config", "tokens_to_generate", "required_fields", "description")


def extra_dirs() -> list[Path]:
    """Folders of user benchmarks, from $ASSAY_EXTRA_DATASETS."""
    return [Path(p) for p in os.environ.get(EXTRA_DATASETS_ENV, "").split(os.pathsep) if p]


def get_benchmark(name: str) -> Benchmark:
    if name in BENCHMARKS:
        return BENCHMARKS.get(name)
    for root in extra_dirs():
        spec = root / name / "benchmark.yaml"
        if spec.is_file():
            return _user_benchmark(name, spec)
    known = {n: None for n in [*BENCHMARKS.names(), *BENCHMARK_GROUPS, *_user_names()]}
    hint = (
        BENCHMARKS.how_to_add
        + f" Or, without changing assay: a folder <dir>/{name}/ with benchmark.yaml and test.jsonl, <dir> in ${EXTRA_DATASETS_ENV} (--extra_datasets)."
    )
    raise BenchmarkError(str(UnknownNameError("benchmark", name, known, hint)))


def group_members(name: str) -> Optional[tuple[str, ...]]:
    """The benchmarks a group name stands for (built-in, or a user's group.yaml); None for a benchmark."""
    if name in BENCHMARK_GROUPS:
        return BENCHMARK_GROUPS[name]
    for root in extra_dirs():
        spec = root / name / "group.yaml"
        if spec.is_file():
            import yaml

            data = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
            members = data.get("benchmarks") if isinstance(data, dict) else None
            if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
                raise BenchmarkError(f"{spec}: needs `benchmarks:`, a list of benchmark names")
            return tuple(members)
    return None


def _user_names() -> list[str]:
    names = []
    for root in extra_dirs():
        if root.is_dir():
            names += [
                p.name for p in root.iterdir() if (p / "benchmark.yaml").is_file() or (p / "group.yaml").is_file()
            ]
    return names


def _user_benchmark(name: str, spec: Path) -> Benchmark:
    """A benchmark described by a user's benchmark.yaml; every problem is an error naming the file and key."""
    import yaml

    from ..core.suggest import did_you_mean
    from ..evaluation.graders import GRADERS

    try:
        data = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise BenchmarkError(f"{spec}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise BenchmarkError(f"{spec}: expected a mapping of {', '.join(USER_BENCHMARK_KEYS)}")
    for key in data:
        if key not in USER_BENCHMARK_KEYS:
            raise BenchmarkError(f"{spec}: unknown key '{key}'.{did_you_mean(str(key), USER_BENCHMARK_KEYS)}")
    grader = str(data.get("grader"))
    if grader not in GRADERS:
        raise BenchmarkError(f"{spec}: grader must be one of {', '.join(GRADERS.names())}, got {data.get('grader')!r}")
    tokens = data.get("tokens_to_generate")
    if tokens is not None and (not isinstance(tokens, int) or tokens < 1):
        raise BenchmarkError(f"{spec}: tokens_to_generate must be a positive integer, got {tokens!r}")
    fields = data.get("required_fields", list(get_grader(grader).required_fields))
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise BenchmarkError(f"{spec}: required_fields must be a list of field names")
    data_file = spec.parent / "test.jsonl"
    if not data_file.is_file():
        raise BenchmarkError(f"{spec.parent}: no test.jsonl beside benchmark.yaml")
    return Benchmark(
        name=name,
        grader=grader,
        prompt_config=str(data.get("prompt_config", "generic/default")),
        tokens_to_generate=tokens,
        required_fields=tuple(fields),
        description=str(data.get("description", f"user benchmark from {spec.parent}")),
        data_file=str(data_file),
    )


# ----------------------------------------------------------------------------- prepared data


def data_dir() -> Path:
    root = cache_dir()
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


def _converted(bench: Benchmark, line: dict, index: int) -> dict:
    """A line in assay's fields: kept when it has them, else converted from the upstream format."""
    if bench.from_upstream is None or all(field in line for field in bench.required_fields):
        return line
    try:
        return bench.from_upstream(line, index)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BenchmarkError(
            f"line {index + 1} is neither in assay's fields ({', '.join(bench.required_fields)}) nor in "
            f"{bench.name}'s upstream format ({type(exc).__name__}: {exc})"
        ) from None


def prepare_data(name: str, data_file: Optional[str] = None) -> Path:
    """Write `<cache>/data/<name>/test.jsonl` (and its checksum) from the shipped file, a download, or `data_file`."""
    bench = get_benchmark(name)
    if data_file:
        lines = [_converted(bench, line, index) for index, line in enumerate(read_jsonl(data_file))]
        origin = str(data_file)
    elif bench.shipped_file:
        origin = f"shipped {bench.shipped_file}"
        lines = list(read_jsonl(Path(str(resources.files("assay.benchmarks"))) / bench.shipped_file))
    else:
        try:
            lines = bench.download()  # type: ignore[misc]
        except BenchmarkError:
            raise  # the benchmark's own message says what to do
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            raise BenchmarkError(
                f"cannot download {name} from its public source ({type(exc).__name__}: {exc}); this machine may be "
                f"offline. Pass a local copy instead: assay prepare_data {name} --data_file=/path/{name}.jsonl "
                f"(one JSON object per line with fields {', '.join(bench.required_fields)})"
            ) from None
        origin = f"source of {name}"
        lines = [_converted(bench, line, index) for index, line in enumerate(lines)]
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
    if bench.data_file:
        return Path(bench.data_file)  # the user's own file, read where it is
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
