"""The one did-you-mean of assay: every check of a name (a config key, a cluster field, a benchmark, a
server type, an executor) suggests the closest valid name the same way."""

from __future__ import annotations

import difflib
from typing import Iterable


def suggestions(name: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """Up to `n` valid names like `name`, the closest first.

    For dotted keys a misplaced leaf counts as close (`temperature` -> `inference.temperature`), and when
    nothing is close by spelling a looser match is tried, so a long key with one wrong part still finds its
    intended neighbour.
    """
    name, candidates = str(name), [str(v) for v in valid]
    close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)
    if not close:
        leaf = name.rsplit(".", 1)[-1]
        close = [c for c in candidates if "." in c and c.rsplit(".", 1)[-1] == leaf][:n]
    if not close:
        close = difflib.get_close_matches(name, candidates, n=n, cutoff=0.4)
    return close


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """` Did you mean 'x'?` (with the leading space, and the other close names if any), or an empty string."""
    close = suggestions(name, valid)
    if not close:
        return ""
    others = f" (other close names: {', '.join(close[1:])})" if len(close) > 1 else ""
    return f" Did you mean '{close[0]}'?{others}"


class UnknownNameError(ValueError):
    """A name that is not one of the known ones; the message lists them and the closest."""

    def __init__(self, kind: str, name: str, known: Iterable[str], how_to_add: str = ""):
        self.kind, self.name, self.known = kind, name, sorted(known)
        message = f"unknown {kind} '{name}'.{did_you_mean(name, self.known)} Known: {', '.join(self.known) or 'none'}."
        super().__init__(message + (f" {how_to_add}" if how_to_add else ""))
