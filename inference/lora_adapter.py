"""Serving a LoRA checkpoint without merging it: vLLM loads the base model and the adapter (`--enable-lora`).

A model path that is a PEFT adapter folder (adapter_config.json and no config.json: what `sft` writes as
`checkpoint-<step>/` in LoRA runs) is served on the base model its adapter_config.json names, with the
adapter loaded under the name the stage sends (the path as given), so

    eval(model="runs/sft/checkpoint-*", server_type="vllm", ...)

evaluates every LoRA checkpoint as it is, with no merged copy on disk. The merged copies
(`merged/checkpoint-<step>/`, or `assay merge_lora`) serve with any server and are the faster choice for
long runs: vLLM applies an adapter as extra matrix products at every step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values vLLM accepts for --max-lora-rank (its LoRAConfig.max_lora_rank)."""


@dataclass(frozen=True)
class LoraAdapter:
    """A PEFT LoRA adapter folder and what serving it needs."""

    path: str
    base_model: str
    """The base model as recorded at training time (a path or an alias such as smollm2)."""
    rank: int
    """The largest rank of any adapted module."""


def adapter_base_model(adapter_dir: str | Path) -> str:
    """The base model recorded in an adapter folder's adapter_config.json."""
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    return config["base_model_name_or_path"]


def read_adapter(path: str | Path) -> Optional[LoraAdapter]:
    """The LoRA adapter in `path`, or None when it is a whole model (or not a local folder)."""
    folder = Path(path)
    config_file = folder / "adapter_config.json"
    if not config_file.is_file() or (folder / "config.json").is_file():
        return None
    config = json.loads(config_file.read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{folder} holds a {config['peft_type']} adapter; only LoRA adapters are served")
    ranks = [int(config.get("r") or 0), *(int(r) for r in (config.get("rank_pattern") or {}).values())]
    return LoraAdapter(str(folder), config["base_model_name_or_path"], max(ranks))


def vllm_lora_args(adapter: LoraAdapter, served_name: str, base_served_name: str) -> list[str]:
    """vLLM flags that load `adapter` beside the base model, answering requests for `served_name`."""
    rank = next((r for r in VLLM_LORA_RANKS if r >= adapter.rank), None)
    if rank is None:
        raise ValueError(
            f"LoRA rank {adapter.rank} of {adapter.path} is above vLLM's largest "
            f"({VLLM_LORA_RANKS[-1]}); merge it first (assay merge_lora) and serve the merged folder"
        )
    # JSON, not name=path: names and paths may hold '=' (vLLM reads JSON whenever the value has a comma)
    module = json.dumps({"name": served_name, "path": adapter.path, "base_model_name": base_served_name})
    return ["--enable-lora", "--max-lora-rank", str(rank), "--lora-modules", module]
