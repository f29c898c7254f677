"""Prompt templates (YAML) selected by name, e.g. `++prompt_config=generic/default`."""
