"""Output capping that keeps the head and the tail of a stream.

Cutting output to its first N characters loses the last lines, which is where a traceback or the
printed answer usually is. `CappedText` keeps the first half and the last half of the budget while
the stream is still being written (so an endless `print` loop costs bounded memory) and marks what
it dropped in between.
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (IPython colours tracebacks unless told not to)."""
    return _ANSI.sub("", text)


def truncation_marker(dropped: int) -> str:
    return f"\n...[truncated {dropped} chars]...\n"


class CappedText:
    """An append-only text buffer that keeps at most `limit` characters: head and tail."""

    def __init__(self, limit: int):
        self.limit = max(0, limit)
        self._head_limit = (self.limit + 1) // 2
        self._tail_limit = self.limit - self._head_limit
        self._head: list[str] = []
        self._head_len = 0
        self._tail = ""
        self.total = 0

    def write(self, text: str) -> None:
        if not text:
            return
        self.total += len(text)
        room = self._head_limit - self._head_len
        if room > 0:
            self._head.append(text[:room])
            self._head_len += min(room, len(text))
            text = text[room:]
        if text and self._tail_limit:
            # Only the last `_tail_limit` characters can survive; slice before concatenating so
            # a flood of output never builds a large string.
            self._tail = (self._tail + text[-self._tail_limit :])[-self._tail_limit :]

    @property
    def dropped(self) -> int:
        return self.total - self._head_len - len(self._tail)

    def getvalue(self) -> str:
        head = "".join(self._head)
        if self.dropped <= 0:
            return head + self._tail
        return head + truncation_marker(self.dropped) + self._tail


def cap(text: str, limit: int) -> str:
    """Cap one finished string the same way."""
    buf = CappedText(limit)
    buf.write(text)
    return buf.getvalue()
