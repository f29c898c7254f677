"""Decontamination: drop training examples whose prompt overlaps an evaluation benchmark's prompt.

Training on a test question (or a light rewording of it) inflates exactly the score used to decide
whether the training helped. Each benchmark item's prompt (its user message, rendered with the
benchmark's own prompt template, as the model sees it at evaluation) and each training prompt are
normalized (lowercase, words and punctuation only) and cut into word n-grams. An example matches an
item when the share of shared n-grams, relative to the smaller of the two prompts, reaches the
threshold: a training prompt that contains a test prompt, or is contained in one, matches fully.
A benchmark's prompt is the value of the fields its prompt template fills (`{problem}`, `{prompt}`),
not the rendered template, so the template's instructions do not count as overlap.

Boilerplate shared by many items of one benchmark (mlcode's answer-format paragraph, which a
training set built from the same prompt template repeats) would make every example match; n-grams
found in more than `common_fraction` of a benchmark's items (for benchmarks of 10 items or more) are
therefore ignored. A benchmark prompt shorter than n words ("What is 7 + 5?") matches a training
prompt that contains its whole word sequence; a training prompt shorter than n words is compared as
one n-gram.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

_TOKEN = re.compile(r"\w+|[^\w\s]")
PROMPT_FIELDS = ("prompt", "problem", "question")
"""Fields tried, in order, for the prompt of a JSONL given by path instead of a benchmark name."""


def words(text: str) -> list[str]:
    """Lowercased words and punctuation marks: `What is 7+5?` -> what, is, 7, +, 5, ?."""
    return _TOKEN.findall(text.lower())


def grams_of(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    """The word n-grams of a text (the whole text as one gram when it has fewer than n words)."""
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


@dataclass
class BenchmarkItem:
    benchmark: str
    item_id: str
    prompt: str


@dataclass
class Match:
    benchmark: str
    item_id: str
    overlap: float


def benchmark_items(name_or_path: str) -> list[BenchmarkItem]:
    """Prompts of a registered benchmark's prepared test file (the fields its user template fills), or of a JSONL path."""
    from ..core.jsonl import read_jsonl

    if name_or_path.endswith(".jsonl"):
        items = []
        for number, line in enumerate(read_jsonl(name_or_path)):
            field = next((f for f in PROMPT_FIELDS if isinstance(line.get(f), str)), None)
            if field is None:
                raise ValueError(f"{name_or_path}:{number + 1}: no prompt field (one of {', '.join(PROMPT_FIELDS)})")
            items.append(BenchmarkItem(Path(name_or_path).stem, str(line.get("id", number)), line[field]))
        return items
    from ..benchmarks.registry import get_benchmark, prepared_test_file
    from ..inference.prompt import load_prompt_config

    bench = get_benchmark(name_or_path)
    fields = sorted(load_prompt_config(bench.prompt_config).fields())
    return [
        BenchmarkItem(name_or_path, str(line.get("id", number)), "\n".join(str(line[f]) for f in fields))
        for number, line in enumerate(read_jsonl(prepared_test_file(name_or_path)))
    ]


class ContaminationIndex:
    """n-gram index of benchmark prompts; `match(prompt)` gives the item it overlaps most, if above threshold."""

    def __init__(self, items: list[BenchmarkItem], n: int = 8, threshold: float = 0.5, common_fraction: float = 0.1):
        self.n, self.threshold = n, threshold
        self.items = items
        self.item_grams: list[set] = []
        self.postings: dict[tuple, list[int]] = {}
        self.short: dict[int, dict[tuple, list[int]]] = {}
        """Items of fewer than n words, by word count: matched by containment of their whole sequence."""
        item_words = [words(item.prompt) for item in items]
        grams = [grams_of(w, n) for w in item_words]
        common = self._boilerplate(items, grams, common_fraction)
        self.ignored = len(common)
        for index, (tokens, item_grams) in enumerate(zip(item_words, grams)):
            if 0 < len(tokens) < n:
                self.short.setdefault(len(tokens), {}).setdefault(tuple(tokens), []).append(index)
            kept = item_grams - common or item_grams  # an item made only of boilerplate is still compared on it
            self.item_grams.append(kept)
            for gram in kept:
                self.postings.setdefault(gram, []).append(index)

    @staticmethod
    def _boilerplate(items: list[BenchmarkItem], grams: list[set], common_fraction: float) -> set[tuple]:
        """n-grams in more than `common_fraction` of the items of one benchmark (of 10 items or more)."""
        by_benchmark: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            by_benchmark.setdefault(item.benchmark, []).append(index)
        common: set[tuple] = set()
        for members in by_benchmark.values():
            if len(members) >= 10:
                counts = Counter(g for i in members for g in grams[i])
                common |= {g for g, c in counts.items() if c > common_fraction * len(members)}
        return common

    def match(self, prompt: str) -> Optional[Match]:
        tokens = words(prompt)
        grams = grams_of(tokens, self.n)
        if not grams:
            return None
        candidates: dict[int, float] = {}
        for length, table in self.short.items():  # a whole short test prompt inside this prompt
            for i in range(len(tokens) - length + 1):
                for index in table.get(tuple(tokens[i : i + length]), ()):
                    candidates[index] = 1.0
        shared: Counter = Counter()
        for gram in grams:
            for index in self.postings.get(gram, ()):
                shared[index] += 1
        for index, count in shared.items():
            overlap = count / min(len(grams), len(self.item_grams[index]))
            candidates[index] = max(candidates.get(index, 0.0), overlap)
        best = max(candidates.items(), key=lambda kv: (kv[1], -kv[0]), default=None)
        if best is None or best[1] < self.threshold:
            return None
        item = self.items[best[0]]
        return Match(item.benchmark, item.item_id, round(best[1], 4))
