"""Prompt configs: a YAML with a `system` message, a `user` template with `{field}` placeholders filled
from the input line, and optional `few_shot_examples` (a list of {user, assistant} pairs shown first).

A name such as `generic/math` is looked up in `prompt_configs/`; anything ending in .yaml is a path.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Optional

import yaml

from ..core.config import ConfigError


class PromptError(ConfigError):
    """A prompt config that cannot be found or filled; the message names the field."""


@dataclass
class PromptConfig:
    user: str
    system: str = ""
    few_shot_examples: list[dict] = field(default_factory=list)

    def fields(self) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(self.user) if name}

    def messages(self, sample: dict, system_message: Optional[str] = None) -> list[dict]:
        """Chat messages for one input line."""
        missing = sorted(self.fields() - sample.keys())
        if missing:
            raise PromptError(
                f"the prompt needs field(s) {', '.join(missing)} but the input line has {', '.join(sorted(sample)) or 'no fields'}"
            )
        messages = []
        system = self.system if system_message is None else system_message
        if system:
            messages.append({"role": "system", "content": system})
        for example in self.few_shot_examples:
            messages.append({"role": "user", "content": example["user"]})
            messages.append({"role": "assistant", "content": example["assistant"]})
        messages.append({"role": "user", "content": self.user.format(**sample)})
        return messages


def prompt_config_path(name: str) -> Path:
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
    else:
        path = Path(str(resources.files("assay.prompt_configs"))) / f"{name}.yaml"
    if not path.is_file():
        root = Path(str(resources.files("assay.prompt_configs")))
        known = sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))
        raise PromptError(f"no prompt config '{name}'; known: {', '.join(known)} (or pass a path to a .yaml file)")
    return path


def load_prompt_config(name: str) -> PromptConfig:
    data = yaml.safe_load(prompt_config_path(name).read_text()) or {}
    unknown = set(data) - {"user", "system", "few_shot_examples"}
    if unknown or "user" not in data:
        raise PromptError(f"prompt config '{name}' needs a `user` template; unknown keys: {sorted(unknown)}")
    return PromptConfig(
        user=data["user"], system=data.get("system") or "", few_shot_examples=data.get("few_shot_examples") or []
    )
