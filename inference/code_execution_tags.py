"""Code tag configs: how a model writes code to run and how the output is written back into its text.

A config in `prompt_configs/code_tags/<name>.yaml` (or any .yaml path) names a `format`:

- `fenced` (generic.yaml): the model writes a ```python block. Generation stops at the closing fence
  (a stop string), the block runs, and its output is appended as an ```output block; the model then
  continues its own text. The prompt is rendered with the tokenizer's chat template.
- `harmony` (gpt-oss.yaml): the model calls the python tool (`to=python ... <|call|>`); the output
  goes back as a `python` tool message. The prompt is rendered in harmony by assay.inference.harmony.

Each format answers the same questions for the loop in code_execution.py: the prompt, the stop
strings and request fields, whether the text so far ends in a call (`pending_call`), and how an
output is written back (`render_output`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import ClassVar, Optional, Union

import yaml

from ..core.config import ConfigError
from . import harmony
from .model_client import RequestFailedError
from .servers import get_server_type


class CodeExecutionError(RequestFailedError):
    """A sample that cannot go on (the sandbox failed, or the server's text cannot be continued): recorded
    as the sample's error, like a failed request, and redone on resume."""


@dataclass
class CodeCall:
    """A block or tool call at the end of the model's text, waiting for its output."""

    code: str
    close: str = ""  # what the transcript needs after the model's text to close the call (a stripped stop string)
    recipient: Optional[str] = None  # harmony: who answers (python, functions.python)
    channel: Optional[str] = None  # harmony: the channel the answer goes to
    runnable: bool = True  # False: a tool this loop does not have; the model is told so


@dataclass
class FencedTags:
    """The model writes code between `code_begin` and `code_end`; output comes back between the output tags."""

    code_begin: str = "```python\n"
    code_end: str = "```\n"
    output_begin: str = "```output\n"
    output_end: str = "```\n"
    name: str = "generic"
    needs_chat_template: ClassVar[bool] = True  # the prompt is the tokenizer's chat template

    def __post_init__(self) -> None:
        if not self.code_end.strip():
            raise ConfigError(f"code tags '{self.name}': code_end must contain more than white space")

    @property
    def stop(self) -> list[str]:
        return [self.code_end]

    def request_fields(self, server_type: str) -> dict:
        """Ask the server to keep the stop string in its answer, so a stop at a closing fence is told apart
        from the end of the answer (vLLM: include_stop_str_in_output, SGLang: no_stop_trim)."""
        return dict(get_server_type(server_type).keep_stop_string)

    def render_prompt(self, renderer, sample: dict, cfg) -> str:
        return renderer.text(sample)

    def pending_call(self, text: str) -> Optional[CodeCall]:
        """The last code block, when the text ends inside it or right after its closing fence.

        Three endings count: the closing fence kept by the server (`...```\\n`), a closing fence at the
        end of the answer (`...```` then end of sequence), and no closing fence at all (the server cut the
        stop string off). A block closed earlier, with text or an output after it, is not pending.
        """
        start = text.rfind(self.code_begin)
        if start < 0:
            return None
        body = text[start + len(self.code_begin) :]
        fence = self.code_end.strip()
        stripped = body.rstrip()
        if stripped.endswith(fence):
            code = stripped[: -len(fence)]
            close = "" if body.endswith("\n") else "\n"
        else:
            code = body
            close = ("" if body.endswith("\n") or not body else "\n") + self.code_end
        if fence in code or not code.strip():
            return None
        return CodeCall(code=code, close=close)

    def stopped_midway(self, text: str) -> bool:
        """The server stopped at a fence that closed no code block (a plain ``` block): go on generating."""
        return text.endswith(self.code_end)

    def render_output(self, call: CodeCall, output: str) -> str:
        if output and not output.endswith("\n"):
            output += "\n"
        return self.output_begin + output + self.output_end


@dataclass
class HarmonyTags:
    """gpt-oss's built-in python tool in the harmony format (see assay.inference.harmony)."""

    tool_names: list[str] = field(default_factory=lambda: ["python", "functions.python"])
    current_date: Optional[str] = "today"
    name: str = "gpt-oss"
    needs_chat_template: ClassVar[bool] = False  # harmony is rendered here, no tokenizer needed

    @property
    def stop(self) -> list[str]:
        # gpt-oss ends its turn at these two anyway; named here for servers whose config lacks them.
        return [harmony.CALL, harmony.RETURN]

    def request_fields(self, server_type: str) -> dict:
        """The loop must read and send back the special tokens; by default servers strip them from answers."""
        return {"skip_special_tokens": False} if get_server_type(server_type).honours_skip_special_tokens else {}

    def render_prompt(self, renderer, sample: dict, cfg) -> str:
        kwargs = cfg.chat_template_kwargs
        tools = kwargs.get("builtin_tools")
        # the python tool is described unless builtin_tools is given without it (as the chat template does)
        described = tools is None or "python" in [str(t) for t in tools]
        return harmony.render_prompt(
            renderer.messages(sample),
            reasoning_effort=str(kwargs.get("reasoning_effort", "medium")),
            python_timeout_s=cfg.server.code_execution.code_execution_timeout if described else None,
            current_date=kwargs.get("current_date", self.current_date),
            model_identity=kwargs.get("model_identity"),
        )

    def pending_call(self, text: str) -> Optional[CodeCall]:
        """The last message of the turn, when it is a tool call that was not answered yet."""
        if harmony.looks_stripped(text):
            raise CodeExecutionError(
                "the server returned harmony text without its special tokens (e.g. 'analysis...assistantfinal'), "
                "so tool calls cannot be found or answered; send skip_special_tokens=false (vLLM and SGLang "
                "take it; set ++server.server_type accordingly)"
            )
        messages = harmony.parse_messages(harmony.START + "assistant" + text)
        if not messages:
            return None
        last = messages[-1]
        if last.role != "assistant" or not last.recipient or last.terminator not in (None, harmony.CALL):
            return None
        close = "" if last.terminator == harmony.CALL else harmony.CALL
        return CodeCall(
            code=harmony.call_code(last),
            close=close,
            recipient=last.recipient,
            channel=last.channel,
            runnable=last.recipient in self.tool_names,
        )

    def stopped_midway(self, text: str) -> bool:
        return False

    def render_output(self, call: CodeCall, output: str) -> str:
        if not call.runnable:
            output = f"Error: there is no tool '{call.recipient}'; the only tool is python."
        return harmony.tool_response(call.recipient or "python", call.channel, output)


CodeTags = Union[FencedTags, HarmonyTags]
FORMATS = {"fenced": FencedTags, "harmony": HarmonyTags}


def code_tags_path(name: str) -> Path:
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
    else:
        path = Path(str(resources.files("assay.prompt_configs"))) / "code_tags" / f"{name}.yaml"
    if not path.is_file():
        folder = Path(str(resources.files("assay.prompt_configs"))) / "code_tags"
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(f"no code tags '{name}'; known: {', '.join(known)} (or pass a path to a .yaml file)")
    return path


def load_code_tags(name: str) -> CodeTags:
    """The code tag config `name` (prompt_configs/code_tags/<name>.yaml, or a path), checked field by field."""
    data = yaml.safe_load(code_tags_path(name).read_text()) or {}
    fmt = data.pop("format", None)
    if fmt not in FORMATS:
        raise ConfigError(f"code tags '{name}': `format` must be one of {', '.join(FORMATS)}, got {fmt!r}")
    cls = FORMATS[fmt]
    known = {f.name for f in dataclasses.fields(cls)} - {"name"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"code tags '{name}' (format {fmt}): unknown keys {sorted(unknown)}; known: {sorted(known)}")
    return cls(name=Path(name).stem if name.endswith((".yaml", ".yml")) else name, **data)


def describe(tags: CodeTags) -> str:
    """One line for the stage's log."""
    if isinstance(tags, FencedTags):
        return f"code tags {tags.name}: {json.dumps(tags.code_begin)} ... {json.dumps(tags.code_end)}"
    return f"code tags {tags.name}: harmony tool calls to {', '.join(tags.tool_names)}"
