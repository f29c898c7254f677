"""Merge a LoRA adapter into its base model: a normal Hugging Face folder that vLLM or SGLang serves.

    python -m assay.training.merge_lora ++adapter_dir=run/checkpoint-100 ++output_dir=run/merged/checkpoint-100

The base model is the one named in the adapter's `adapter_config.json` unless `++base_model` says
otherwise (an alias such as smollm2, or a path: the same model on another machine). The merge runs
in float32 (base weights plus the low-rank product, without rounding the product to bfloat16 first)
and the result is saved in the base model's own dtype, with the tokenizer and chat template the
checkpoint was trained with. The folder is written under a temporary name and renamed when
complete, so a sweep never serves a half-written model.

A LoRA checkpoint can also be served without merging: give its folder as the model of eval() or
generate() with server_type=vllm, and vLLM loads it on its base model (`--enable-lora`, see
inference/lora_adapter.py). The adapter folders are standard PEFT folders.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..core.config import MISSING, ConfigError, register_stage_config, run_stage
from ..inference.lora_adapter import adapter_base_model
from .checkpoints import make_readable

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


@register_stage_config
@dataclass
class MergeLoraConfig:
    """Merge a LoRA adapter folder into its base model and save a servable folder."""

    adapter_dir: str = MISSING
    """A LoRA checkpoint (adapter_config.json + adapter_model.safetensors), e.g. <sft output>/checkpoint-100."""
    output_dir: str = MISSING
    """Where the merged model goes (must not exist, unless overwrite=true)."""
    base_model: Optional[str] = None
    """The base model (path or alias); default: the adapter config's base_model_name_or_path."""
    dtype: str = "auto"
    """Dtype of the saved weights: auto (the base model's own), bfloat16, float16 or float32."""
    overwrite: bool = False
    """Replace an existing output_dir."""

    def __post_init__(self) -> None:
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ValueError(f"dtype must be auto, bfloat16, float16 or float32, got '{self.dtype}'")


def _saved_dtype(base: str, dtype: str):
    """The torch dtype to save in: the base model's own (read before loading it in float32) unless given."""
    import torch
    from transformers import AutoConfig

    if dtype != "auto":
        if dtype not in ("bfloat16", "float16", "float32"):
            raise ConfigError(f"dtype must be auto, bfloat16, float16 or float32, got '{dtype}'")
        return getattr(torch, dtype)
    own = getattr(AutoConfig.from_pretrained(base), "dtype", None)
    if isinstance(own, str):
        own = getattr(torch, own, None)
    return own if isinstance(own, torch.dtype) else torch.float32


def merge_lora(
    adapter_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    base_model: Optional[str] = None,
    dtype: str = "auto",
    overwrite: bool = False,
) -> Path:
    """Write the merged model of `adapter_dir` to `output_dir` (atomically); return output_dir."""
    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ConfigError(f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json)")
    if output_dir.exists() and not overwrite:
        raise ConfigError(f"{output_dir} exists; pass ++overwrite=true to replace it")
    import warnings

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..inference.embedded_model import readable_by_older_transformers, resolve_model

    # transformers' own deprecated call inside peft, printed on every merge
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    base = resolve_model(base_model or adapter_base_model(adapter_dir))
    saved_dtype = _saved_dtype(base, dtype)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged = merged.to(saved_dtype)
    has_tokenizer = all((adapter_dir / name).is_file() for name in TOKENIZER_FILES)
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir if has_tokenizer else base)
    tmp = output_dir.with_name(f".{output_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        readable_by_older_transformers(tmp)  # servers pinned to transformers 4.x read it too
        make_readable(tmp)
        (tmp / "assay-merged-from.json").write_text(
            json.dumps({"adapter_dir": str(adapter_dir.absolute()), "base_model": base}, indent=1) + "\n"
        )
        if output_dir.exists():
            shutil.rmtree(output_dir)
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output_dir


def _main(cfg: MergeLoraConfig) -> None:
    out = merge_lora(cfg.adapter_dir, cfg.output_dir, cfg.base_model, cfg.dtype, cfg.overwrite)
    print(f"merge_lora: {cfg.adapter_dir} -> {out}")


def main(argv=None) -> None:
    run_stage(MergeLoraConfig, _main, argv=argv, prog="python -m assay.training.merge_lora")


if __name__ == "__main__":
    main()
