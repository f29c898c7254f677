"""Stage configs: unknown keys and bad values fail before any work, with the key and the fix named."""

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest

from assay.core.config import MISSING, ConfigError, compose_stage_config, format_help, run_stage, validate_overrides
from assay.inference.config import GenerateConfig

REQUIRED = ["++input_file=in.jsonl", "++output_file=out.jsonl", "++server.model=m"]


def compose(*overrides):
    return compose_stage_config(GenerateConfig, list(overrides) + REQUIRED)


def test_misspelt_nested_key_names_the_closest_valid_key():
    with pytest.raises(ConfigError, match=r"'inference.temprature'.*Did you mean 'inference.temperature'"):
        compose("++inference.temprature=1")


def test_leaf_at_the_wrong_level_suggests_where_it_lives():
    with pytest.raises(ConfigError, match=r"Did you mean 'inference.temperature'"):
        compose("++temperature=1")


def test_bad_type_names_the_field_and_expected_type():
    with pytest.raises(ConfigError, match=r"'inference.temperature' expects float, got 'hot'"):
        compose("++inference.temperature=hot")


def test_sub_key_of_a_scalar_is_rejected():
    with pytest.raises(ConfigError, match=r"'inference.temperature' is a float"):
        compose("++inference.temperature.x=1")


def test_nested_values_reach_the_typed_config():
    cfg = compose(
        "++inference.temperature=0.7",
        "++server.code_execution.max_code_executions=100",
        "++chat_template_kwargs.reasoning_effort=high",
        "++chat_template_kwargs.builtin_tools=[python]",
        "++inference.extra_body.top_a.value=1",
    )
    assert isinstance(cfg, GenerateConfig)
    assert cfg.inference.temperature == 0.7
    assert cfg.server.code_execution.max_code_executions == 100
    assert cfg.chat_template_kwargs == {"reasoning_effort": "high", "builtin_tools": ["python"]}
    assert cfg.inference.extra_body == {"top_a": {"value": 1}}


@pytest.mark.parametrize(
    "override, expected",
    [
        ("++system_message=two words", "two words"),
        ("++system_message=key=value", "key=value"),
        ("++system_message='quoted=kept'", "quoted=kept"),
        ("++system_message=it's", "it's"),
    ],
)
def test_string_values_survive_as_typed(override, expected):
    assert compose(override).system_message == expected


def test_missing_required_fields_are_listed():
    with pytest.raises(ConfigError, match=r"\+\+input_file=\.\.\..*\+\+output_file=\.\.\."):
        compose_stage_config(GenerateConfig, ["++server.model=m"])


def test_submit_time_validation_allows_fields_the_pipeline_fills():
    validate_overrides(GenerateConfig, ["++inference.temperature=1.0"])
    with pytest.raises(ConfigError, match="inference.top_p"):
        validate_overrides(GenerateConfig, ["++inference.topp=1.0"])


def test_post_init_checks_reach_the_user():
    with pytest.raises(ConfigError, match="unknown server type .tgi.* Known: openai, sglang, trtllm, vllm"):
        compose("++server.server_type=tgi")


@dataclass
class _Tiny:
    """A tiny stage."""

    name: str = MISSING
    """Who to greet."""
    times: int = 1
    """How often."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything."""
    note: Optional[str] = None
    """A note."""


def test_help_lists_every_field_with_type_default_and_doc():
    text = format_help(_Tiny, "python -m tiny")
    assert "name: str (required)" in text and "Who to greet." in text
    assert "times: int = 1" in text and "How often." in text
    assert "note: str or null = None" in text


def test_run_stage_exits_2_with_the_message(capsys):
    with pytest.raises(SystemExit) as exc:
        run_stage(_Tiny, lambda cfg: cfg, argv=["++nmae=x"])
    assert exc.value.code == 2
    assert "Did you mean 'name'" in capsys.readouterr().err
    assert run_stage(_Tiny, lambda cfg: cfg, argv=["++name=x", "++times=3"]).times == 3


def test_generate_module_rejects_a_typo_before_doing_anything():
    proc = subprocess.run(
        [sys.executable, "-m", "assay.inference.generate", "++inference.temprature=1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "inference.temperature" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_generate_module_help_documents_its_fields():
    proc = subprocess.run(
        [sys.executable, "-m", "assay.inference.generate", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0
    assert "inference.temperature: float = 0.0" in proc.stdout
    assert "server.code_execution.max_code_executions: int = 8" in proc.stdout


def test_nemo_skills_keys_keep_their_meaning_or_say_what_to_do_instead():
    base = ["++input_file=i", "++output_file=o", "++server.model=m"]
    cfg = compose_stage_config(GenerateConfig, [*base, "++inference.endpoint_type=text", "++max_samples=3"])
    assert cfg.use_completions_api and cfg.num_samples == 3
    assert compose_stage_config(GenerateConfig, [*base, "++max_samples=-1"]).num_samples is None  # NeMo-Skills: all
    assert compose_stage_config(GenerateConfig, [*base, "++inference.timeout=60"]).server.request_timeout == 60
    with pytest.raises(ConfigError, match="endpoint_type='responses' must be chat or text"):
        compose_stage_config(GenerateConfig, [*base, "++inference.endpoint_type=responses"])
    with pytest.raises(ConfigError, match="'parse_reasoning' is a NeMo-Skills key assay does not take: graders read"):
        compose_stage_config(GenerateConfig, [*base, "++parse_reasoning=true"])
    with pytest.raises(ConfigError, match="num_samples=-1 must be at least 1"):
        compose_stage_config(GenerateConfig, [*base, "++num_samples=-1"])
