"""A conversation as the model sees it: token ids through the exact chat template, and which ones it is trained on.

Used by data preparation (the length filter counts these tokens) and by SFT (these ids and labels are
what it trains on), so a length checked when the data is prepared is the length trained on.

Why not tokenize the whole rendered text at once: BPE merges characters across the boundary between
the prompt and the answer (`assistant\\n` + `\\nhello` becomes `ĊĊ` + `Ċ`), so the prompt would be
tokenized differently from what a server feeds the model at inference (it tokenizes the rendered
prompt alone), and the first answer tokens would be ones the model never produces. Each piece is
tokenized on its own instead: the text the template adds before an assistant turn (rendered with
`add_generation_prompt=True`), then that turn's text, and so on. The concatenation is exactly a prompt
as served followed by the tokens the model should generate.

Why not trl's `assistant_only_loss`: it needs `{% generation %}` markers in the chat template, which
most templates (SmolLM2's included) lack; trl patches only the templates it knows. Rendering prefixes
works for any template whose rendering of a conversation's beginning is a prefix of the whole
rendering, which is checked, with a clear error when a template breaks it.

The labels cover each assistant turn's text up to and including the end-of-turn token (so the model
learns to stop); what the template writes after that token (a newline) is not trained, since
generation stops at the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

IGNORE_INDEX = -100
"""The label of a token that does not count in the loss (PyTorch's cross-entropy default)."""


class ChatTemplateError(ValueError):
    """The template renders a conversation's beginning differently from the whole (no prefix property)."""


@dataclass
class TokenizedConversation:
    input_ids: list[int]
    assistant_mask: list[int]
    """1 for tokens the model is trained to produce (assistant turns), 0 for the rest."""

    @property
    def labels(self) -> list[int]:
        return [t if m else IGNORE_INDEX for t, m in zip(self.input_ids, self.assistant_mask)]

    def __len__(self) -> int:
        return len(self.input_ids)


def _render(tokenizer, messages: list[dict], generation_prompt: bool, template_kwargs: dict) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt, **template_kwargs
    )


def _split_end_of_turn(text: str, end_token: Optional[str]) -> tuple[str, str]:
    """(trained part up to the last end-of-turn token, untrained rest such as a newline)."""
    if end_token and end_token in text:
        cut = text.rindex(end_token) + len(end_token)
        return text[:cut], text[cut:]
    return text, ""


def conversation_segments(
    tokenizer, messages: list[dict], template_kwargs: Optional[dict] = None
) -> list[tuple[str, bool]]:
    """The rendered conversation as (text, trained) pieces, in order; their join is the full rendering."""
    kwargs = dict(template_kwargs or {})
    if not any(m.get("role") == "assistant" for m in messages):
        raise ValueError("the conversation has no assistant message to train on")
    end_token = tokenizer.eos_token
    segments: list[tuple[str, bool]] = []
    done = ""  # the text rendered so far
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], True, kwargs)
        whole = _render(tokenizer, messages[: i + 1], False, kwargs)
        if not prompt.startswith(done) or not whole.startswith(prompt):
            raise ChatTemplateError(
                "the chat template does not render the beginning of a conversation as a prefix of the whole "
                f"(at message {i}); assistant tokens cannot be located. Use a template without that behaviour "
                "or pass already rendered data."
            )
        trained, rest = _split_end_of_turn(whole[len(prompt) :], end_token)
        segments += [(prompt[len(done) :], False), (trained, True)]
        done = whole[: len(whole) - len(rest)]
    tail = _render(tokenizer, messages, False, kwargs)
    if not tail.startswith(done):
        raise ChatTemplateError("the chat template's full rendering does not extend its rendering of the last turn")
    segments.append((tail[len(done) :], False))
    return [(text, trained) for text, trained in segments if text]


def tokenize_conversation(
    tokenizer, messages: list[dict], template_kwargs: Optional[dict] = None
) -> TokenizedConversation:
    """Token ids of the conversation through the chat template, with the assistant mask (see the module doc)."""
    ids: list[int] = []
    mask: list[int] = []
    for text, trained in conversation_segments(tokenizer, messages, template_kwargs):
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        mask += [int(trained)] * len(piece)
    return TokenizedConversation(ids, mask)


def load_tokenizer(model: str, tokenizer: Optional[str] = None) -> Any:
    """The tokenizer (with its chat template) of a model path or alias such as `smollm2`."""
    from transformers import AutoTokenizer

    from ..inference.embedded_model import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model(tokenizer or model))
    if not tok.chat_template:
        raise ChatTemplateError(f"the tokenizer of {tokenizer or model} has no chat template")
    return tok
