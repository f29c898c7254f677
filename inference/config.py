"""Config of the generation stage: what `++inference.*`, `++server.*` and the top-level keys mean.

Field names follow NeMo-Skills where it has one, so its users' overrides keep working.
This module imports nothing heavy: the pipeline imports it at submit time to validate overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from ..core.config import MISSING, register_stage_config
from ..core.suggest import UnknownNameError
from .servers import get_server_type


@dataclass
class InferenceConfig:
    """Sampling parameters sent with every request."""

    temperature: float = 0.0
    """Sampling temperature; 0 is greedy."""
    top_p: float = 0.95
    """Nucleus sampling: keep the smallest set of tokens whose probability sums to top_p."""
    top_k: int = -1
    """Keep only the k most likely tokens; -1 disables it."""
    min_p: float = 0.0
    """Drop tokens whose probability is below min_p times the top token's."""
    repetition_penalty: float = 1.0
    """Penalty for repeated tokens; 1.0 disables it."""
    tokens_to_generate: Optional[int] = None
    """Most tokens generated per sample (with code_execution: over all its turns); a sample that hits it is
    recorded with finish_reason 'length'. Unset: up to the end of the model's context, as NeMo-Skills does; a
    value that does not fit with the prompt is cut to what the context leaves (one warning)."""
    random_seed: int = 0
    """Seed of the request; each seed of `benchmark:N` gets its own (rs0, rs1, ...)."""
    stop_phrases: Optional[list[str]] = None
    """Extra stop strings."""
    extra_body: dict[str, Any] = field(default_factory=dict)
    """Passed verbatim in the request body (server-specific options, e.g. ++inference.extra_body.min_tokens=8)."""
    endpoint_type: Optional[str] = None
    """NeMo-Skills' name for the request kind: `chat` (chat messages) or `text` (text completions rendered with the
    model's chat template, as ++use_completions_api=true). Unset: use_completions_api decides."""

    def __post_init__(self) -> None:
        checks = [
            ("temperature", self.temperature >= 0, "must be 0 (greedy) or more"),
            ("top_p", 0 < self.top_p <= 1, "must be in (0, 1]"),
            ("top_k", self.top_k == -1 or self.top_k >= 1, "must be -1 (off) or at least 1"),
            ("min_p", 0 <= self.min_p <= 1, "must be in [0, 1]"),
            ("repetition_penalty", self.repetition_penalty > 0, "must be above 0"),
            (
                "tokens_to_generate",
                self.tokens_to_generate is None or self.tokens_to_generate >= 1,
                "must be at least 1 (unset: the rest of the context)",
            ),
        ]
        check_fields("inference", self, checks)

    def request_body(self, server_type: str) -> dict[str, Any]:
        """The sampling fields of every request; knobs outside OpenAI's schema only when set (or when the server
        type takes them at their defaults), so hosted APIs accept the body.

        No `max_tokens` when tokens_to_generate is unset: the server generates up to the end of the context.
        """
        body: dict[str, Any] = {"temperature": self.temperature, "top_p": self.top_p, "seed": self.random_seed}
        if self.tokens_to_generate is not None:
            body["max_tokens"] = self.tokens_to_generate
        if self.stop_phrases:
            body["stop"] = list(self.stop_phrases)
        extras = {
            "top_k": (self.top_k, -1),
            "min_p": (self.min_p, 0.0),
            "repetition_penalty": (self.repetition_penalty, 1.0),
        }
        for key, (value, default) in extras.items():
            if value != default or get_server_type(server_type).sampling_extras:
                body[key] = value
        body.update(self.extra_body)
        return body


def check_fields(prefix: str, cfg: Any, checks: list[tuple[str, bool, str]]) -> None:
    """Reject out-of-range values with the field's full name, before anything runs."""
    for name, ok, rule in checks:
        if not ok:
            raise ValueError(f"{prefix + '.' if prefix else ''}{name}={getattr(cfg, name)!r} {rule}")


@dataclass
class CodeExecutionConfig:
    """Limits of the model's own code execution (`++code_execution=true`)."""

    max_code_executions: int = 8
    """Most code blocks executed per sample; later blocks get an error message instead of output."""
    code_execution_timeout: float = 10.0
    """Wall-clock seconds one code block may run in the sandbox."""
    max_output_chars: int = 1500
    """Output of one execution shown to the model; longer output keeps its head and tail."""


@dataclass
class ServerConfig:
    """Where the model is served and how requests reach it."""

    server_type: str = "vllm"
    """vllm, sglang, trtllm, or openai (any OpenAI-compatible endpoint, no server started); see inference/servers/."""
    model: str = MISSING
    """Model name as the server knows it (the pipeline fills it from --model)."""
    host: str = "127.0.0.1"
    """Host of the server started for this job."""
    port: int = 5000
    """Port of the server started for this job."""
    base_url: Optional[str] = None
    """Full base URL (e.g. https://host/v1); overrides host and port. Needed for server_type=openai."""
    api_key_env: Optional[str] = None
    """Name of the environment variable holding the API key (keys never live in configs on disk). Unset: the key
    is sent only to server_type=openai, from OPENAI_API_KEY. Never sent over plain http to another host."""
    request_timeout: float = 3600.0
    """Seconds one request may take before it is retried."""
    max_retries: int = 5
    """Retries of a request on connection errors and 5xx answers (never on 4xx), with backoff."""
    code_execution: CodeExecutionConfig = field(default_factory=CodeExecutionConfig)
    """Limits of the model's code execution."""

    def __post_init__(self) -> None:
        check_fields(
            "server",
            self,
            [
                ("request_timeout", self.request_timeout > 0, "must be above 0 seconds"),
                ("max_retries", self.max_retries >= 0, "must be 0 or more"),
            ],
        )
        try:
            get_server_type(self.server_type)
        except UnknownNameError as exc:
            raise ValueError(f"server.server_type: {exc}") from None


@register_stage_config
@dataclass
class GenerateConfig:
    """Generate one answer per input line with a served model, appending each to the output as it finishes."""

    KEY_ALIASES: ClassVar[dict[str, str]] = {
        "max_samples": "num_samples",
        "inference.timeout": "server.request_timeout",
    }
    """NeMo-Skills' names for the same fields."""
    ALIAS_VALUES: ClassVar[dict[str, dict[str, str]]] = {"max_samples": {"-1": "null"}}
    """NeMo-Skills' `max_samples=-1` means every line."""
    UNSUPPORTED_KEYS: ClassVar[dict[str, str]] = {
        "prompt_format": "prompts always come from a prompt config (++prompt_config=<name or .yaml path>)",
        "examples_type": "few-shot examples live in the prompt config itself (few_shot_examples:)",
        "start_assistant_response_key": "not supported; put the text in the prompt config's user template",
        "parse_reasoning": "graders read the answer after the reasoning themselves (evaluation/final_answer.py), "
        "and the whole generation is kept",
        "end_reasoning_string": "graders read the answer after </think> or gpt-oss's final channel themselves",
        "dry_run": "pass --dry_run to the pipeline command (it prints what would be submitted)",
        "eval_type": "grading is a stage of its own: assay eval --benchmarks=..., or assay evaluate_results",
        "eval_config": "grading is a stage of its own: assay evaluate_results ++grader=...",
        "add_generation_stats": "num_generated_tokens and generation_time are always recorded",
        "count_prompt_tokens": "not supported",
        "sandbox": "the sandbox is started with --with_sandbox, or reached with ++sandbox_url=...",
        "tool_modules": "gpt-oss's python tool runs with ++code_execution=true ++code_tags=gpt-oss",
        "tool_overrides": "code execution limits are under ++server.code_execution.*",
        "parallel_thinking": "not supported",
        "enable_litellm_cache": "not needed: every finished sample is on disk and a rerun resumes",
        "total_code_executions_in_prompt": "not supported; the limit is ++server.code_execution.max_code_executions",
        "override_max_code_executions": "not supported; the limit is ++server.code_execution.max_code_executions",
        "stop_phrase": "use ++inference.stop_phrases=[...] (a list)",
        "inference.top_logprobs": "log-probabilities are not recorded",
    }
    """NeMo-Skills keys assay has no such behaviour for: rejected with what to do instead."""

    input_file: str = MISSING
    """JSONL to read, one sample per line."""
    output_file: str = MISSING
    """JSONL to write: the input line plus the generation fields, flushed as each sample finishes."""
    prompt_config: str = "generic/default"
    """Prompt template: a name under prompt_configs/ (e.g. generic/math) or a path to a YAML file."""
    system_message: Optional[str] = None
    """Replaces the prompt config's system message when set."""
    prompt_suffix: str = ""
    """Appended to the user message (e.g. " /no_think")."""
    use_completions_api: bool = False
    """Send text completions rendered with the model's chat template instead of chat messages."""
    tokenizer: Optional[str] = None
    """Tokenizer (path or name) whose chat template renders completions; defaults to server.model."""
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    """Passed to the chat template (e.g. ++chat_template_kwargs.reasoning_effort=high)."""
    code_execution: bool = False
    """Let the model run the code it writes in the sandbox and continue with the output."""
    code_tags: Optional[str] = None
    """Code tag config for code_execution: generic (```python blocks) or gpt-oss (harmony python tool) from
    prompt_configs/code_tags/, or a path to a .yaml. Code execution always sends text completions, since the
    model's own text is continued after each output (see inference/code_execution.py)."""
    sandbox_url: Optional[str] = None
    """Sandbox service for code_execution; defaults to ASSAY_SANDBOX_URL (set by generate(with_sandbox=True))."""
    generation_key: str = "generation"
    """Name of the output field that holds the generated text."""
    max_concurrent_requests: int = 512
    """Requests in flight at once, over all the tasks of one stage process (as NeMo-Skills, sized for a GPU
    server; the server queues what it cannot batch)."""
    max_failed_fraction: float = 0.0
    """Requests that may still fail (after retries) with the output written anyway, as a fraction; above it
    the stage exits with an error, keeps what succeeded, and a rerun retries only the failed requests."""
    skip_filled: bool = True
    """Resume: keep the samples already generated and generate only the rest (false: start over)."""
    overwrite: bool = False
    """Start over when the output or its partial file was produced by different work (another input, config,
    num_samples); without it that is an error naming what changed."""
    num_samples: Optional[int] = None
    """Generate for the first N input lines only (quick checks); `max_samples` is the same key."""
    chunk_id: Optional[int] = None
    """This job's chunk of the input (0-based), with num_chunks."""
    num_chunks: Optional[int] = None
    """Split the input into this many chunks; this job does chunk_id."""
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    """Sampling parameters."""
    server: ServerConfig = field(default_factory=ServerConfig)
    """The model server."""

    def __post_init__(self) -> None:
        kind = self.inference.endpoint_type
        if kind is not None:
            if kind not in ("chat", "text"):
                raise ValueError(
                    f"inference.endpoint_type={kind!r} must be chat or text (the responses API is not supported)"
                )
            self.use_completions_api = kind == "text"
        if (self.chunk_id is None) != (self.num_chunks is None):
            raise ValueError("chunk_id and num_chunks go together: set both or neither")
        if self.num_chunks is not None and not 0 <= self.chunk_id < self.num_chunks:  # type: ignore[operator]
            raise ValueError(f"chunk_id must be in [0, {self.num_chunks}), got {self.chunk_id}")
        check_fields(
            "",
            self,
            [
                ("max_concurrent_requests", self.max_concurrent_requests >= 1, "must be at least 1"),
                ("max_failed_fraction", 0 <= self.max_failed_fraction <= 1, "must be in [0, 1]"),
                ("num_samples", self.num_samples is None or self.num_samples >= 1, "must be at least 1 (unset: all)"),
            ],
        )
        if self.code_execution and not self.code_tags:
            raise ValueError(
                "code_execution=true needs ++code_tags=<name>: generic (```python blocks) or gpt-oss "
                "(the harmony python tool), from prompt_configs/code_tags/, or a path to a .yaml"
            )
