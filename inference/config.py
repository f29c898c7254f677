"""Config of the generation stage: what `++inference.*`, `++server.*` and the top-level keys mean.

Field names follow NeMo-Skills where it has one, so its users' overrides keep working.
This module imports nothing heavy: the pipeline imports it at submit time to validate overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

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
    tokens_to_generate: int = 2048
    """Most tokens generated per sample (with code_execution: over all its turns); a sample that hits it is
    recorded with finish_reason 'length'."""
    random_seed: int = 0
    """Seed of the request; each seed of `benchmark:N` gets its own (rs0, rs1, ...)."""
    stop_phrases: Optional[list[str]] = None
    """Extra stop strings."""
    extra_body: dict[str, Any] = field(default_factory=dict)
    """Passed verbatim in the request body (server-specific options, e.g. ++inference.extra_body.min_tokens=8)."""


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
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key; keys never live in configs on disk."""
    request_timeout: float = 3600.0
    """Seconds one request may take before it is retried."""
    max_retries: int = 5
    """Retries of a request on connection errors and 5xx answers (never on 4xx), with backoff."""
    code_execution: CodeExecutionConfig = field(default_factory=CodeExecutionConfig)
    """Limits of the model's code execution."""

    def __post_init__(self) -> None:
        try:
            get_server_type(self.server_type)
        except UnknownNameError as exc:
            raise ValueError(f"server.server_type: {exc}") from None


@register_stage_config
@dataclass
class GenerateConfig:
    """Generate one answer per input line with a served model, appending each to the output as it finishes."""

    input_file: str = MISSING
    """JSONL to read, one sample per line."""
    output_file: str = MISSING
    """JSONL to write: the input line plus the generation fields, flushed as each sample finishes."""
    prompt_config: str = "generic/default"
    """Prompt template: a name under prompt_configs/ (e.g. generic/math) or a path to a YAML file."""
    system_message: Optional[str] = None
    """Replaces the prompt config's system message when set."""
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
    max_concurrent_requests: int = 64
    """Requests in flight at once."""
    max_failed_fraction: float = 0.0
    """Requests that may still fail (after retries) with the output written anyway, as a fraction; above it
    the stage exits with an error, keeps what succeeded, and a rerun retries only the failed requests."""
    skip_filled: bool = True
    """Resume: keep samples already in output_file and generate only the rest."""
    num_samples: Optional[int] = None
    """Generate for the first N input lines only (quick checks)."""
    chunk_id: Optional[int] = None
    """This job's chunk of the input (0-based), with num_chunks."""
    num_chunks: Optional[int] = None
    """Split the input into this many chunks; this job does chunk_id."""
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    """Sampling parameters."""
    server: ServerConfig = field(default_factory=ServerConfig)
    """The model server."""

    def __post_init__(self) -> None:
        if (self.chunk_id is None) != (self.num_chunks is None):
            raise ValueError("chunk_id and num_chunks go together: set both or neither")
        if self.num_chunks is not None and not 0 <= self.chunk_id < self.num_chunks:  # type: ignore[operator]
            raise ValueError(f"chunk_id must be in [0, {self.num_chunks}), got {self.chunk_id}")
        if self.max_concurrent_requests < 1:
            raise ValueError("max_concurrent_requests must be at least 1")
        if self.code_execution and not self.code_tags:
            raise ValueError(
                "code_execution=true needs ++code_tags=<name>: generic (```python blocks) or gpt-oss "
                "(the harmony python tool), from prompt_configs/code_tags/, or a path to a .yaml"
            )
