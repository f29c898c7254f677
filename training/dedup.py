"""Exact and near-duplicate detection for SFT examples: deterministic, dependency-free (numpy only).

SDG produces the same answer many times (several seeds of one problem, templated problems), and
duplicates weigh those examples more than the data's author meant; near-duplicates (whitespace, a
renamed variable, a changed number in the prose) do the same.

- Exact: a hash of the normalized text (lowercased, whitespace collapsed).
- Near: MinHash signatures of word 5-gram shingles, locality-sensitive hashing in bands to find
  candidate pairs, then the exact Jaccard similarity of the two shingle sets decides. The first
  example (input order) of a group is kept, so the result does not depend on anything but the input.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

_MERSENNE = (1 << 61) - 1
_WORD = re.compile(r"\w+|[^\w\s]")


def normalize(text: str) -> str:
    """Lowercase, whitespace collapsed: what the exact-duplicate hash sees."""
    return " ".join(text.lower().split())


def exact_key(text: str) -> str:
    return hashlib.sha1(normalize(text).encode("utf-8")).hexdigest()


def _hash32(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=4).digest(), "little")


def shingles(text: str, size: int = 5) -> set[int]:
    """Hashed word n-grams of the normalized text (the whole text as one shingle when it is shorter)."""
    words = _WORD.findall(normalize(text))
    if len(words) <= size:
        return {_hash32(" ".join(words))}
    return {_hash32(" ".join(words[i : i + size])) for i in range(len(words) - size + 1)}


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass
class NearDuplicateIndex:
    """Finds, for each new text, an earlier one whose shingle sets have Jaccard >= threshold.

    `num_perm` hash functions split into `bands` bands: two texts become candidates when one band of
    their signatures is equal. With 128 permutations in 32 bands of 4 rows, pairs at Jaccard 0.8 are
    candidates with probability 1 - (1 - 0.8^4)^32 > 0.9999; the exact Jaccard check removes false
    candidates, so the threshold is exact for every candidate found.
    """

    threshold: float = 0.8
    num_perm: int = 128
    bands: int = 32
    shingle_size: int = 5
    seed: int = 0
    _buckets: list[dict] = field(default_factory=list, init=False)
    _sets: list[set[int]] = field(default_factory=list, init=False)
    _ids: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.num_perm % self.bands:
            raise ValueError("num_perm must be a multiple of bands")
        rng = np.random.default_rng(self.seed)
        self._a = rng.integers(1, (1 << 31) - 1, size=self.num_perm, dtype=np.uint64)
        self._b = rng.integers(0, (1 << 31) - 1, size=self.num_perm, dtype=np.uint64)
        self._buckets = [dict() for _ in range(self.bands)]

    def signature(self, hashed: set[int]) -> np.ndarray:
        values = np.fromiter(hashed, dtype=np.uint64, count=len(hashed))
        # a, b < 2^31 and values < 2^32: a * v + b < 2^63, no overflow in uint64
        permuted = (self._a[:, None] * values[None, :] + self._b[:, None]) % np.uint64(_MERSENNE)
        return permuted.min(axis=1)

    def find_or_add(self, text: str, example_id: int) -> Optional[tuple[int, float]]:
        """(id of the earlier near-duplicate, its Jaccard), or None after adding this text to the index."""
        hashed = shingles(text, self.shingle_size)
        rows = self.num_perm // self.bands
        sig = self.signature(hashed)
        keys = [sig[i * rows : (i + 1) * rows].tobytes() for i in range(self.bands)]
        seen: set[int] = set()
        best: Optional[tuple[int, float]] = None
        for band, key in enumerate(keys):
            for slot in self._buckets[band].get(key, ()):
                if slot in seen:
                    continue
                seen.add(slot)
                similarity = jaccard(hashed, self._sets[slot])
                if similarity >= self.threshold and (best is None or similarity > best[1]):
                    best = (self._ids[slot], similarity)
        if best is not None:
            return best
        slot = len(self._sets)
        self._sets.append(hashed)
        self._ids.append(example_id)
        for band, key in enumerate(keys):
            self._buckets[band].setdefault(key, []).append(slot)
        return None
