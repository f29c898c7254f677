"""Clean SFT data: keep only examples that teach the behaviour wanted at inference.

    python -m assay.training.prepare_data ++input_file=sdg/output.jsonl ++output_file=sft/train.jsonl \\
        ++model=smollm2 ++max_length=2048 ++prompt_config=mlcode/default ++code_targets=true \\
        ++decontaminate=[mlcode,smallmath]

Reads SDG outputs (a generation's JSONL) or any JSONL of (prompt, response) and writes chat
`messages` (system?/user/assistant) lines, ready for `assay.training.sft`, plus a report
(`<output stem>.report.json`, also printed): how many examples each filter removed and why, how many
were kept, and a histogram of token lengths. Filters, in order (an example is counted under the
first one that removes it; cheap ones run first, the sandbox last):

1. failed_generation: the line has an error, no response, or was cut by the token limit
   (`finish_reason: length`), so its target is truncated;
2. code targets (`++code_targets=true`): no_code (no complete code block: the extractor the grader
   uses finds none), then the target becomes that code alone in one fenced block (prose before and
   after is dropped); syntax_error (`ast.parse`); undefined_names (a name used but never defined,
   imported or builtin: a missing import the sandbox would fail on);
3. too_long: more tokens than `max_length` through the model's exact tokenizer and chat template
   (the same tokens SFT trains on, chat_tokens.py); dropped, never truncated, since a cut target
   teaches the model to stop mid-answer;
4. contaminated: the prompt overlaps an eval benchmark's prompt (decontaminate.py);
5. exact_duplicate, near_duplicate (dedup.py), keeping the first of each group;
6. sandbox_failed (`++sandbox_check=true`, off by default): the code raised when run in the
   sandbox, or the line's own `tests` failed.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..core.config import MISSING, ConfigError, register_stage_config, run_stage
from ..core.jsonl import read_jsonl, write_jsonl_atomic
from . import code_checks
from .chat_tokens import load_tokenizer, tokenize_conversation

FILTERS = (
    "failed_generation",
    "no_code",
    "syntax_error",
    "undefined_names",
    "too_long",
    "contaminated",
    "exact_duplicate",
    "near_duplicate",
    "sandbox_failed",
)
"""Every reason an example can be removed, in the order the filters run."""

MAX_DETAILS = 200
"""Examples listed per filter in the report (decontamination matches are always listed in full)."""


@register_stage_config
@dataclass
class PrepareDataConfig:
    """Filter (prompt, response) lines into clean chat SFT data, with a report of what was removed."""

    input_file: str = MISSING
    """JSONL of SDG outputs (generation stage) or any lines with a prompt and a response field."""
    output_file: str = MISSING
    """Where the kept examples go, one `{"messages": [...]}` per line; the report goes beside it."""
    model: str = "smollm2"
    """The model to be trained (path or alias): its tokenizer and chat template measure lengths."""
    tokenizer: Optional[str] = None
    """A different tokenizer folder than the model's, when the model folder has none."""
    max_length: int = 4096
    """Longest example, in tokens of the full chat rendering (prompt and answer); longer ones are dropped."""
    prompt_key: str = "prompt"
    """Field holding the user prompt (ignored when prompt_config is set)."""
    response_key: str = "generation"
    """Field holding the response, the assistant's target (the generation stage's output field)."""
    prompt_config: Optional[str] = None
    """Build the system/user messages from the line with this prompt config (e.g. mlcode/default), as eval does,
    so training prompts match the prompts seen at evaluation."""
    system_message: Optional[str] = None
    """A system message (replaces the prompt config's own when both are set)."""
    chat_template_kwargs: dict = field(default_factory=dict)
    """Extra arguments of the chat template, as at inference (e.g. reasoning_effort)."""
    drop_failed: bool = True
    """Drop lines whose generation failed or was cut by the token limit (finish_reason length)."""
    code_targets: bool = False
    """The responses are code: keep only the code (no prose), and check it parses and defines what it uses."""
    entry_point_key: str = "entry_point"
    """Field naming the function the code must define (picks the right block among several), when present."""
    code_fence: bool = True
    """Write code targets as one ```python block (what code prompts ask for); false: the bare code."""
    check_undefined_names: bool = True
    """With code_targets: drop code that uses a name it never defines or imports (static check)."""
    sandbox_check: bool = False
    """With code_targets: run each kept code in the sandbox (and the line's `tests`, if any); drop failures."""
    sandbox_url: Optional[str] = None
    """Sandbox URL for sandbox_check; default $ASSAY_SANDBOX_URL."""
    sandbox_time_limit: float = 20.0
    """Seconds per example for sandbox_check."""
    sandbox_concurrency: int = 4
    """Examples run in the sandbox at once."""
    decontaminate: list[str] = field(default_factory=list)
    """Benchmarks (names, e.g. [mlcode,smallmath], or JSONL paths) whose test prompts training prompts must not overlap."""
    decontamination_ngram: int = 8
    """Word n-gram size of the overlap test."""
    decontamination_threshold: float = 0.5
    """Share of shared n-grams (of the shorter prompt) from which an example counts as contaminated."""
    dedup_exact: bool = True
    """Drop examples whose normalized text equals an earlier one's."""
    dedup_near: bool = True
    """Drop examples whose word 5-gram Jaccard similarity to an earlier one reaches near_dup_threshold."""
    near_dup_threshold: float = 0.8
    """Jaccard similarity from which two examples are near-duplicates."""
    dedup_on: str = "example"
    """What duplicates are judged on: example (prompt and response) or prompt (one response per prompt)."""
    histogram_bins: int = 10
    """Bins of the token length histogram, from 0 to max_length."""

    def __post_init__(self) -> None:
        if self.dedup_on not in ("example", "prompt"):
            raise ValueError(f"dedup_on must be example or prompt, got '{self.dedup_on}'")
        if self.max_length < 1 or self.histogram_bins < 1:
            raise ValueError("max_length and histogram_bins must be positive")
        if self.sandbox_check and not self.code_targets:
            raise ValueError("sandbox_check runs code targets: set ++code_targets=true as well")


@dataclass
class Candidate:
    """One input line on its way through the filters."""

    index: int
    line: dict
    messages: list[dict]
    code: Optional[str] = None
    num_tokens: int = 0


def build_messages(line: dict, cfg: PrepareDataConfig, prompt_template) -> list[dict]:
    """system?/user from the line (through the prompt config when given) and the assistant's response."""
    if prompt_template is not None:
        messages = prompt_template.messages(line, cfg.system_message)
    else:
        if not isinstance(line.get(cfg.prompt_key), str):
            raise ConfigError(
                f"an input line has no string field '{cfg.prompt_key}' (++prompt_key); "
                f"its fields: {', '.join(sorted(line))}"
            )
        messages = [{"role": "system", "content": cfg.system_message}] if cfg.system_message else []
        messages.append({"role": "user", "content": line[cfg.prompt_key]})
    return messages + [{"role": "assistant", "content": line[cfg.response_key]}]


def failed_generation(line: dict, cfg: PrepareDataConfig) -> bool:
    response = line.get(cfg.response_key)
    return (
        not isinstance(response, str)
        or not response.strip()
        or bool(line.get("error"))
        or line.get("finish_reason") == "length"
        or line.get("truncated") is True
    )


def prompt_text(messages: list[dict]) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


class Report:
    """Counts and details per filter, written as JSON and printed."""

    def __init__(self, total: int):
        self.total = total
        self.removed: Counter = Counter()
        self.details: dict[str, list[dict]] = {}

    def drop(self, reason: str, candidate: Candidate, **detail) -> None:
        self.removed[reason] += 1
        listed = self.details.setdefault(reason, [])
        if reason == "contaminated" or len(listed) < MAX_DETAILS:
            listed.append({"index": candidate.index, **detail})

    def as_dict(self, kept: list[Candidate], cfg: PrepareDataConfig) -> dict:
        return {
            "input_file": cfg.input_file,
            "output_file": cfg.output_file,
            "model": cfg.model,
            "max_length": cfg.max_length,
            "input": self.total,
            "kept": len(kept),
            "removed": {reason: self.removed.get(reason, 0) for reason in FILTERS},
            "token_length": length_stats([c.num_tokens for c in kept], cfg.max_length, cfg.histogram_bins),
            "details": self.details,
        }


def length_stats(lengths: list[int], max_length: int, bins: int) -> dict:
    """min/mean/p50/p90/max and an equal-width histogram from 0 to max_length."""
    if not lengths:
        return {"count": 0, "histogram": []}
    ordered = sorted(lengths)
    width = -(-max_length // bins)
    counts = Counter(min(n // width, bins - 1) for n in lengths)
    return {
        "count": len(lengths),
        "min": ordered[0],
        "mean": round(statistics.fmean(lengths), 1),
        "p50": ordered[len(ordered) // 2],
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max": ordered[-1],
        "histogram": [
            {"from": b * width, "to": min((b + 1) * width, max_length), "count": counts.get(b, 0)} for b in range(bins)
        ],
    }


def check_code(candidate: Candidate, cfg: PrepareDataConfig, report: Report) -> bool:
    """Strip prose around the code, then the static checks; False when the example is dropped."""
    response = candidate.messages[-1]["content"]
    code = code_checks.code_only(response, candidate.line.get(cfg.entry_point_key))
    if code is None:
        report.drop("no_code", candidate)
        return False
    error = code_checks.syntax_error(code)
    if error:
        report.drop("syntax_error", candidate, error=error)
        return False
    if cfg.check_undefined_names:
        missing = code_checks.undefined_names(code)
        if missing:
            report.drop("undefined_names", candidate, names=missing)
            return False
    candidate.code = code
    candidate.messages[-1] = {
        "role": "assistant",
        "content": code_checks.as_code_block(code) if cfg.code_fence else code.rstrip() + "\n",
    }
    return True


def deduplicate(candidates: list[Candidate], cfg: PrepareDataConfig, report: Report) -> list[Candidate]:
    from .dedup import NearDuplicateIndex, exact_key

    seen: dict[str, int] = {}
    near = NearDuplicateIndex(threshold=cfg.near_dup_threshold)
    kept = []
    for candidate in candidates:
        text = prompt_text(candidate.messages)
        if cfg.dedup_on == "example":
            text += "\n" + candidate.messages[-1]["content"]
        if cfg.dedup_exact:
            key = exact_key(text)
            if key in seen:
                report.drop("exact_duplicate", candidate, duplicate_of=seen[key])
                continue
            seen[key] = candidate.index
        if cfg.dedup_near:
            found = near.find_or_add(text, candidate.index)
            if found is not None:
                report.drop("near_duplicate", candidate, duplicate_of=found[0], jaccard=round(found[1], 4))
                continue
        kept.append(candidate)
    return kept


def decontaminate(candidates: list[Candidate], cfg: PrepareDataConfig, report: Report) -> list[Candidate]:
    from ..benchmarks.registry import BenchmarkError
    from .decontaminate import ContaminationIndex, benchmark_items

    try:
        items = [item for name in cfg.decontaminate for item in benchmark_items(name)]
    except (BenchmarkError, OSError, ValueError) as exc:
        raise ConfigError(f"decontaminate: {exc}") from None
    index = ContaminationIndex(items, cfg.decontamination_ngram, cfg.decontamination_threshold)
    kept = []
    for candidate in candidates:
        match = index.match(prompt_text(candidate.messages))
        if match is None:
            kept.append(candidate)
        else:
            report.drop(
                "contaminated", candidate, benchmark=match.benchmark, item_id=match.item_id, overlap=match.overlap
            )
    return kept


def prepare(cfg: PrepareDataConfig) -> dict:
    from ..inference.prompt import load_prompt_config

    if not Path(cfg.input_file).exists():
        raise ConfigError(f"input_file {cfg.input_file} does not exist")
    template = load_prompt_config(cfg.prompt_config) if cfg.prompt_config else None
    tokenizer = load_tokenizer(cfg.model, cfg.tokenizer)
    lines = list(read_jsonl(cfg.input_file))
    report = Report(len(lines))
    candidates: list[Candidate] = []
    for index, line in enumerate(lines):
        candidate = Candidate(index, line, [])
        if cfg.drop_failed and failed_generation(line, cfg):
            report.drop("failed_generation", candidate, cause=line.get("error") or line.get("finish_reason"))
            continue
        if not isinstance(line.get(cfg.response_key), str):
            raise ConfigError(f"line {index + 1} has no string field '{cfg.response_key}' (++response_key)")
        candidate.messages = build_messages(line, cfg, template)
        if cfg.code_targets and not check_code(candidate, cfg, report):
            continue
        candidate.num_tokens = len(tokenize_conversation(tokenizer, candidate.messages, cfg.chat_template_kwargs))
        if candidate.num_tokens > cfg.max_length:
            report.drop("too_long", candidate, tokens=candidate.num_tokens)
            continue
        candidates.append(candidate)
    if cfg.decontaminate:
        candidates = decontaminate(candidates, cfg, report)
    candidates = deduplicate(candidates, cfg, report)
    if cfg.sandbox_check and cfg.code_targets:
        from .sandbox_check import sandbox_failures

        failures = sandbox_failures(candidates, cfg)
        for candidate in candidates:
            if candidate.index in failures:
                report.drop("sandbox_failed", candidate, **failures[candidate.index])
        candidates = [c for c in candidates if c.index not in failures]
    out = Path(cfg.output_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(
        out, ({"messages": c.messages, "num_tokens": c.num_tokens, "source_index": c.index} for c in candidates)
    )
    result = report.as_dict(candidates, cfg)
    report_path = report_file(cfg.output_file)
    report_path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(format_report(result, report_path))
    return result


def report_file(output_file: str) -> Path:
    """`train.jsonl` -> `train.report.json`, beside it."""
    path = Path(output_file)
    return path.with_name(path.stem + ".report.json")


def format_report(result: dict, path: Path) -> str:
    removed = ", ".join(f"{reason} {n}" for reason, n in result["removed"].items() if n) or "none"
    lines = [
        f"prepare_data: kept {result['kept']} of {result['input']} -> {result['output_file']}",
        f"  removed: {removed}",
    ]
    stats = result["token_length"]
    if stats["count"]:
        lines.append(
            f"  tokens: min {stats['min']}, p50 {stats['p50']}, mean {stats['mean']}, p90 {stats['p90']}, "
            f"max {stats['max']} (max_length {result['max_length']})"
        )
        peak = max(b["count"] for b in stats["histogram"]) or 1
        for b in stats["histogram"]:
            lines.append(f"  {b['from']:>7}-{b['to']:<7} {b['count']:>7} {'#' * round(30 * b['count'] / peak)}")
    for match in result["details"].get("contaminated", []):
        lines.append(
            f"  contaminated: line {match['index'] + 1} overlaps {match['benchmark']}/{match['item_id']} "
            f"({match['overlap']:.0%})"
        )
    lines.append(f"  report: {path}")
    return "\n".join(lines)


def main(argv=None) -> None:
    run_stage(PrepareDataConfig, prepare, argv=argv, prog="python -m assay.training.prepare_data")


if __name__ == "__main__":
    main()
