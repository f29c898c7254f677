"""Keep the generated samples worth keeping, e.g. for SDG: only those with a final answer, not cut short.

    python -m assay.inference.filter_output ++input_file=gen/output.jsonl ++output_file=gen/filtered.jsonl \\
        ++keep_if_matches=boxed ++drop_truncated=true

Regular expressions pass through Hydra's override grammar: quote them for Hydra to keep backslashes,
e.g. "++keep_if_matches='\\\\boxed\\{'" in a shell.

Writes the kept lines in order (atomically) and prints how many each rule dropped. Used as the
`postprocess_cmd` of `generate()`, it runs in the job once the output is complete.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Optional

from ..core.config import MISSING, register_stage_config, run_stage
from ..core.jsonl import read_jsonl, write_jsonl_atomic


@register_stage_config
@dataclass
class FilterOutputConfig:
    """Filter a generation output by simple, inspectable rules."""

    input_file: str = MISSING
    """A generation output (JSONL)."""
    output_file: str = MISSING
    """Where the kept lines go (may equal input_file: it is replaced atomically)."""
    generation_key: str = "generation"
    """The field holding the generated text."""
    keep_if_matches: Optional[str] = None
    """A regular expression the generation must contain (re.search), e.g. boxed for a final answer."""
    drop_if_matches: Optional[str] = None
    """A regular expression that drops the sample when found in the generation."""
    drop_truncated: bool = True
    """Drop samples cut by tokens_to_generate (finish_reason 'length')."""
    drop_errors: bool = True
    """Drop samples whose request failed."""


def reason_to_drop(line: dict, cfg: FilterOutputConfig, keep_re, drop_re) -> Optional[str]:
    text = line.get(cfg.generation_key)
    if cfg.drop_errors and (line.get("error") or text is None):
        return "request failed"
    if cfg.drop_truncated and line.get("finish_reason") == "length":
        return "truncated"
    if keep_re is not None and not keep_re.search(text or ""):
        return f"no match for {cfg.keep_if_matches!r}"
    if drop_re is not None and drop_re.search(text or ""):
        return f"matches {cfg.drop_if_matches!r}"
    return None


def filter_output(cfg: FilterOutputConfig) -> None:
    keep_re = re.compile(cfg.keep_if_matches) if cfg.keep_if_matches else None
    drop_re = re.compile(cfg.drop_if_matches) if cfg.drop_if_matches else None
    kept: list[dict] = []
    dropped: Counter[str] = Counter()
    lines = list(read_jsonl(cfg.input_file))
    for line in lines:
        reason = reason_to_drop(line, cfg, keep_re, drop_re)
        if reason:
            dropped[reason] += 1
        else:
            kept.append(line)
    write_jsonl_atomic(cfg.output_file, kept)
    summary = ", ".join(f"{n} {why}" for why, n in dropped.most_common()) or "none"
    print(f"filter: kept {len(kept)} of {len(lines)} -> {cfg.output_file}; dropped: {summary}")


def main(argv=None) -> None:
    run_stage(FilterOutputConfig, filter_output, argv=argv, prog="python -m assay.inference.filter_output")


if __name__ == "__main__":
    main()
