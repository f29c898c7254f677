"""The harmony format of gpt-oss as text: render a prompt, read the model's messages, answer its python calls.

Why text and not the `openai-harmony` package: that package needs its o200k vocabulary, which it
downloads when an encoding is loaded, and compute nodes often have no way out. Text completions need
no token ids at all: vLLM reads the special tokens (`<|start|>`, `<|channel|>`, ...) back from the
prompt string. What is rendered here is what openai-harmony and the model's own chat template render
for a conversation with the built-in python tool:

    <|start|>system<|message|>You are ChatGPT, ...\\nKnowledge cutoff: 2024-06\\nCurrent date: ...
        \\n\\nReasoning: medium\\n\\n# Tools\\n\\n## python\\n\\n<description>\\n\\n# Valid channels: ...<|end|>
    <|start|>developer<|message|># Instructions\\n\\n<system prompt><|end|>
    <|start|>user<|message|><question><|end|>
    <|start|>assistant                                   <- the model continues from here

A python call ends the model's turn with `<|call|>` (an end-of-turn token of gpt-oss, so the server
stops there); the answer goes back as a message from the tool, in the channel of the call:

    <|start|>assistant<|channel|>analysis to=python code<|message|>print(2**10)<|call|>
    <|start|>python to=assistant<|channel|>analysis<|message|>1024\\n<|end|><|start|>assistant

The recipient may stand in the channel part (`<|channel|>analysis to=python`) or after the role
(`<|start|>assistant to=python<|channel|>analysis`); a call may also go to `functions.python` in
the commentary channel with JSON arguments (`<|constrain|>json<|message|>{"code": "..."}`), and is
then answered by `functions.python`. The turn ends for good with a `final` message (`<|return|>`).
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from typing import Optional

START, END, MESSAGE, CHANNEL, CONSTRAIN = "<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>"
CALL, RETURN = "<|call|>", "<|return|>"
TERMINATORS = (END, CALL, RETURN)

DEFAULT_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
KNOWLEDGE_CUTOFF = "2024-06"
VALID_CHANNELS = "# Valid channels: analysis, commentary, final. Channel must be included for every message."


def python_tool_description(timeout_s: float) -> str:
    """The built-in python tool's description, with the sandbox's real timeout in place of 120 s."""
    return (
        "Use this tool to execute Python code in your chain of thought. The code will not be shown to the user. "
        "This tool should be used for internal reasoning, but not for code that is intended to be visible to the "
        "user (e.g. when creating plots, tables, or files).\n\n"
        "When you send a message containing Python code to python, it will be executed in a stateful Jupyter "
        f"notebook environment. python will respond with the output of the execution or time out after "
        f"{float(timeout_s)} seconds. The drive at '/mnt/data' can be used to save and persist user files. "
        "Internet access for this session is UNKNOWN. Depends on the cluster."
    )


def system_message(
    reasoning_effort: str = "medium",
    python_timeout_s: Optional[float] = 120.0,
    current_date: Optional[str] = None,
    model_identity: Optional[str] = None,
) -> str:
    """The system message: identity, dates, reasoning effort, the python tool (when given a timeout), channels."""
    lines = [model_identity or DEFAULT_IDENTITY, f"Knowledge cutoff: {KNOWLEDGE_CUTOFF}"]
    if current_date:
        lines.append(f"Current date: {current_date}")
    text = "\n".join(lines) + f"\n\nReasoning: {reasoning_effort.lower()}\n\n"
    if python_timeout_s is not None:
        text += "# Tools\n\n## python\n\n" + python_tool_description(python_timeout_s) + "\n\n"
    return text + VALID_CHANNELS


def render_prompt(
    messages: list[dict],
    reasoning_effort: str = "medium",
    python_timeout_s: Optional[float] = 120.0,
    current_date: Optional[str] = "today",
    model_identity: Optional[str] = None,
) -> str:
    """A chat (system/user/assistant messages) as a harmony prompt that opens the assistant's turn.

    A `system` message becomes the developer message's instructions, as the chat template does;
    assistant messages (few-shot answers) are rendered as `final` messages, since earlier turns'
    reasoning is never shown to the model. `current_date="today"` writes today's date; None leaves it out.
    """
    if current_date == "today":
        current_date = datetime.date.today().isoformat()
    parts = [
        START
        + "system"
        + MESSAGE
        + system_message(reasoning_effort, python_timeout_s, current_date, model_identity)
        + END
    ]
    for message in messages:
        role, content = message["role"], message["content"]
        if role in ("system", "developer"):
            parts.append(START + "developer" + MESSAGE + "# Instructions\n\n" + content + END)
        elif role == "user":
            parts.append(START + "user" + MESSAGE + content + END)
        elif role == "assistant":
            parts.append(START + "assistant" + CHANNEL + "final" + MESSAGE + content + END)
        else:
            raise ValueError(f"harmony prompts take system, user and assistant messages, not '{role}'")
    return "".join(parts) + START + "assistant"


@dataclass
class HarmonyMessage:
    """One message of the model's turn."""

    role: str
    channel: Optional[str]
    recipient: Optional[str]
    content_type: Optional[str]  # `code`, `json`, `<|constrain|>json` reduced to `json`
    content: str
    terminator: Optional[str]  # <|end|>, <|call|>, <|return|>, or None where the text stopped


_RECIPIENT = re.compile(r"\bto=([^\s<]+)")


def _parse_header(header: str) -> tuple[str, Optional[str], Optional[str], Optional[str]]:
    """role, channel, recipient, content type of a header such as `assistant<|channel|>analysis to=python code`."""
    role_part, _, channel_part = header.partition(CHANNEL)
    role = role_part.split()[0] if role_part.split() else ""
    recipient = None
    for part in (role_part, channel_part):
        if match := _RECIPIENT.search(part):
            recipient = match[1]
    channel_words = _RECIPIENT.sub(" ", channel_part).replace(CONSTRAIN, " ").split()
    channel = channel_words[0] if channel_words else None
    content_type = channel_words[-1] if len(channel_words) > 1 else None
    if content_type is None and CONSTRAIN not in channel_part:
        rest = _RECIPIENT.sub(" ", role_part).split()[1:]
        content_type = rest[-1] if rest else None
    return role, channel, recipient, content_type


def parse_messages(text: str) -> list[HarmonyMessage]:
    """The messages of a harmony text (each begins at `<|start|>`); a last one without a terminator is kept."""
    messages = []
    for chunk in text.split(START)[1:]:
        header, sep, body = chunk.partition(MESSAGE)
        if not sep:  # a header the model had not finished
            messages.append(HarmonyMessage(*_parse_header(header), content="", terminator=None))
            continue
        ends = [(body.find(t), t) for t in TERMINATORS if t in body]
        at, terminator = min(ends) if ends else (len(body), None)
        messages.append(HarmonyMessage(*_parse_header(header), content=body[:at], terminator=terminator))
    return messages


def looks_stripped(generated: str) -> bool:
    """True when a server removed the special tokens (`analysis...assistantfinal...`): nothing can be continued."""
    if "<|" in generated:
        return False
    head = generated.lstrip()
    return head.startswith(("analysis", "commentary", "final")) or "assistantfinal" in generated


def call_code(message: HarmonyMessage) -> str:
    """The code of a python call: the content itself, or the `code` field of JSON arguments."""
    content = message.content
    if message.content_type == "json" or content.lstrip().startswith("{"):
        try:
            args = json.loads(content)
        except ValueError:
            return content
        if isinstance(args, dict):
            for key in ("code", "source", "input", "script"):
                if isinstance(args.get(key), str):
                    return args[key]
    return content


def tool_response(recipient: str, channel: Optional[str], output: str) -> str:
    """The tool's answer to a call, followed by the opening of the assistant's next message."""
    return (
        START
        + f"{recipient} to=assistant"
        + CHANNEL
        + (channel or "analysis")
        + MESSAGE
        + output
        + END
        + START
        + "assistant"
    )
