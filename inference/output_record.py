"""What produced a generation output: recorded beside it, checked before any of it is reused.

`<output_file>.meta.json` holds the input's sha256 and line count, the slice of it (chunk,
num_samples), and every config field that changes the answers. It is written before the first
sample, so a partial file and the complete output both say what they are. A resume or a rerun whose
record differs is refused with the list of what changed (`++overwrite=true` starts over instead):
answers of another input or another temperature are never mixed in, and a `num_samples=2` quick
run never passes for the whole benchmark.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

RECORD_SUFFIX = ".meta.json"

NOT_THE_WORK = frozenset(
    {
        "input_file",  # its content is recorded, not its path
        "output_file",
        "skip_filled",
        "overwrite",
        "max_concurrent_requests",
        "max_failed_fraction",
        "sandbox_url",
        "chunk_id",
        "num_chunks",
        "num_samples",
        "server.host",
        "server.port",
        "server.base_url",
        "server.api_key_env",
        "server.request_timeout",
        "server.max_retries",
    }
)
"""Fields that say where or how fast the work runs, not what it is: a resume may change them."""


@dataclass
class InputDigest:
    sha256: str
    lines: int


def digest_input(path: str | os.PathLike) -> InputDigest:
    """sha256 of the file and its number of lines with content, in one streaming pass."""
    sha = hashlib.sha256()
    lines = 0
    with open(path, "rb") as f:
        for line in f:
            sha.update(line)
            if line.strip():
                lines += 1
    return InputDigest(sha.hexdigest(), lines)


def work_fields(cfg: Any) -> dict[str, Any]:
    """The flattened config fields that decide the answers."""
    flat: dict[str, Any] = {}

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            key = prefix + f.name
            if dataclasses.is_dataclass(value):
                walk(value, key + ".")
            elif key not in NOT_THE_WORK:
                flat[key] = value

    walk(cfg, "")
    return json.loads(json.dumps(flat, default=str))  # plain JSON values, as they will read back


@dataclass
class OutputRecord:
    input_sha256: str
    input_lines: int
    chunk_id: Optional[int]
    num_chunks: Optional[int]
    num_samples: Optional[int]
    config: dict[str, Any]
    config_sha256: str = ""

    def __post_init__(self) -> None:
        if not self.config_sha256:
            self.config_sha256 = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()

    @classmethod
    def of(cls, cfg: Any, digest: InputDigest) -> "OutputRecord":
        return cls(digest.sha256, digest.lines, cfg.chunk_id, cfg.num_chunks, cfg.num_samples, work_fields(cfg))

    def whole(self) -> "OutputRecord":
        """The record of the merged file its chunks make up."""
        return dataclasses.replace(self, chunk_id=None, num_chunks=None)

    def differences(self, earlier: "OutputRecord") -> list[str]:
        """What changed since `earlier`, one readable line each; empty when it is the same work."""
        out = []
        if earlier.input_sha256 != self.input_sha256:
            out.append(
                f"the input changed (sha256 {earlier.input_sha256[:12]}, {earlier.input_lines} lines -> "
                f"{self.input_sha256[:12]}, {self.input_lines} lines)"
            )
        for name in ("chunk_id", "num_chunks", "num_samples"):
            before, now = getattr(earlier, name), getattr(self, name)
            if before != now:
                out.append(f"{name}: {_show(before)} -> {_show(now)}")
        if earlier.config_sha256 != self.config_sha256:
            keys = sorted(set(earlier.config) | set(self.config))
            changed = [k for k in keys if earlier.config.get(k, "<absent>") != self.config.get(k, "<absent>")]
            out += [f"{k}: {_show(earlier.config.get(k))} -> {_show(self.config.get(k))}" for k in changed]
        return out


def other_work_message(subject: str, changed: list[str], remedy: str) -> str:
    """`<subject> from other work; changed since:` and one line per change, then what to do."""
    return f"{subject} from other work; changed since:\n  - " + "\n  - ".join(changed) + f"\n{remedy}"


def _show(value: Any) -> str:
    return "unset (all)" if value is None else json.dumps(value)


def record_path(output_file: str | os.PathLike) -> Path:
    return Path(str(output_file) + RECORD_SUFFIX)


def read_record(output_file: str | os.PathLike) -> Optional[OutputRecord]:
    path = record_path(output_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return OutputRecord(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        return None  # unreadable: treated as no record


def write_record(output_file: str | os.PathLike, record: OutputRecord) -> None:
    from ..core.jsonl import atomic_file

    with atomic_file(record_path(output_file)) as f:  # synced before the rename, as the output itself is
        f.write(json.dumps(dataclasses.asdict(record), indent=1, sort_keys=True) + "\n")
