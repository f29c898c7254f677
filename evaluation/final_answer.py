"""The part of a generation that is the model's final answer, before any answer is extracted from it.

Reasoning models write drafts, tool calls and half-ideas before they answer. Extracting from the
whole text grades those drafts; extracting from the final answer grades what the model committed to.
Both the math and the code extractors call `final_answer_region` first, so they agree on what
"the final answer" is:

- CRLF and lone CR become LF (Windows line ends must not change which fence closes which block).
- gpt-oss (harmony) raw output: the text of the LAST `<|channel|>final<|message|>` message
  (`<|channel|>final <|constrain|>json<|message|>` too), up to `<|return|>`, `<|end|>`, `<|call|>` or
  `<|start|>`. Harmony markup without a final channel means the model never answered: None.
- harmony with its special tokens stripped by the server: the text after the last `assistantfinal`.
  A text that begins `analysis` glued to a capitalised word (`analysisWe need to ...`) and has no
  `assistantfinal` is stripped reasoning that never reached its answer: None.
- `<think>...</think>`: the text after the last `</think>` (a chat template may have opened the
  think block in the prompt, so a closing tag alone counts). `<think>` without `</think>` means the
  reasoning never finished: None.

- An end-of-turn token left in the text (`<|im_end|>`, `<|im_start|>`, `<|endoftext|>`, `<|eot_id|>`) ends the
  answer: a model that runs past it writes the next turn, not its answer.

Nothing is added or rewritten beyond the line-end normalisation.
"""

from __future__ import annotations

import re
from typing import Optional

_HARMONY_FINAL = re.compile(r"<\|channel\|>\s*final\b[^<]*(?:<\|constrain\|>[^<]*)?<\|message\|>")
_HARMONY_END = re.compile(r"<\|(?:return|end|call|start)\|>")
_HARMONY_ANY = re.compile(r"<\|(?:channel|message|start)\|>")
_STRIPPED_FINAL = "assistantfinal"
# end-of-turn tokens of ChatML, Llama 3 and GPT-2-style tokenizers, left in by servers that keep special tokens
_TURN_END = re.compile(r"<\|(?:im_end|im_start|endoftext|eot_id|end_of_text)\|>")
_STRIPPED_ANALYSIS = re.compile(r"^\s*analysis(?=[A-Z])")


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _harmony_final(text: str) -> Optional[str]:
    matches = list(_HARMONY_FINAL.finditer(text))
    if not matches:
        return None
    body = text[matches[-1].end() :]
    end = _HARMONY_END.search(body)
    return body[: end.start()] if end else body


def final_answer_region(text: Optional[str]) -> Optional[str]:
    """The final answer part of a generation, or None when the model never reached one."""
    if text is None:
        return None
    text = normalize_newlines(text)
    if _HARMONY_ANY.search(text):
        region = _harmony_final(text)
        if region is None:
            return None
        text = region
    elif _STRIPPED_FINAL in text:
        text = text[text.rindex(_STRIPPED_FINAL) + len(_STRIPPED_FINAL) :]
    elif _STRIPPED_ANALYSIS.match(text):
        return None
    if "</think>" in text:
        text = text[text.rindex("</think>") + len("</think>") :]
    elif "<think>" in text:
        return None
    turn_end = _TURN_END.search(text)
    if turn_end:  # the answer ends with the turn; a model that runs on writes the next turn, not its answer
        text = text[: turn_end.start()]
    return text if text.strip() else None
