"""Metrics of one benchmark from its graded seed files: pass@1[avg-of-k], majority@k, pass@k.

Inputs are N seed files (`output-rs<seed>.jsonl`, same problems in the same order), already graded:
math lines carry `symbolic_correct` and `predicted_answer`, code lines `passed` and
`failure_category`. Every metric derives from one per-sample score (correct or not) and one
per-sample answer (for voting), the way NeMo-Skills' metrics base does.

For every k in 1, 2, 4, ..., N (and N itself):

- `pass@1[avg-of-k]` (k > 1): the accuracy of each of the first k seeds, averaged; `<key>_std` is the
  sample standard deviation (n - 1) of those k accuracies. `no_answer` is averaged the same way.
- `majority@k` (k > 1, for graders whose answers vote: math, mcq; code has no answer to vote on): per
  problem, the most frequent normalised answer among the first k seeds (samples without an answer do not
  vote) is correct if its first occurrence was graded correct. Answers tied for the most votes share the
  credit: a tie of one right and one wrong answer counts one half (as NeMo-Skills does), independent of
  seed order and of how answers sort as strings. A problem where no seed answered counts as wrong and as
  no_answer.
- `pass@k`: the unbiased estimator over all N samples of a problem with c correct,
  1 - C(N-c, k) / C(N, k), computed as 1 - prod_{i=N-c+1}^{N} (1 - k/i) so no binomial overflows.
  Its `no_answer` is the chance that k samples drawn from the N all lack an answer, C(m, k) / C(N, k)
  for m answerless samples, by the same product.

`avg_tokens` is the mean `num_generated_tokens` of all samples; `gen_seconds` is, per seed, the sum
of the lines' `generation_time` (request latencies measured by the generation stage, never a clock
reading), averaged over seeds. Both describe the whole run and are the same in every row.

Percentages are in percent (0-100). Lines with a `category` also get the same metrics per category
(taken from the rs0 line). Code benchmarks add `failure_categories` (counts over all samples) and,
when the import diagnostic ran, `diagnostics`.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

from .graders import detect_grader, get_grader

SEED_FILE = re.compile(r"^output-rs(\d+)\.jsonl$")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for n samples with c correct: 1 - C(n-c, k) / C(n, k), as a product."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def all_fail_at_k(n: int, m: int, k: int) -> float:
    """Chance that k of n samples, m of them 'failing', are all failing: C(m, k) / C(n, k)."""
    return 1.0 - pass_at_k(n, n - m, k)


def ks_for(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks[-1] != n:
        ks.append(n)
    return ks


def _tied_leaders(answers: Sequence[Optional[str]], correct: Sequence[bool]) -> dict[str, bool]:
    """The answers with the most votes, in the order first seen, each with its first occurrence's grade."""
    counts = Counter(a for a in answers if a is not None)
    leaders: dict[str, bool] = {}
    if counts:
        best = max(counts.values())
        for answer, is_correct in zip(answers, correct):
            if answer is not None and counts[answer] == best and answer not in leaders:
                leaders[answer] = bool(is_correct)
    return leaders


def majority_vote(answers: Sequence[Optional[str]], correct: Sequence[bool]) -> tuple[Optional[str], bool]:
    """(the voted answer, whether it is correct): the most frequent answer, the first seen among tied ones;
    None never votes. This is the vote itself (what a majority-voting system would answer)."""
    leaders = _tied_leaders(answers, correct)
    if not leaders:
        return None, False
    winner = next(iter(leaders))
    return winner, leaders[winner]


def majority_credit(answers: Sequence[Optional[str]], correct: Sequence[bool]) -> float:
    """What one problem adds to majority@k: 1 or 0 for a clear winner; answers tied for the most votes share
    the credit (the share of them that are correct), as NeMo-Skills scores it, so the score does not depend
    on which seed came first."""
    leaders = _tied_leaders(answers, correct)
    return sum(leaders.values()) / len(leaders) if leaders else 0.0


def seed_files(input_dir: str | Path) -> list[Path]:
    """`output-rs<seed>.jsonl` files of a folder, by seed number (chunks and partial files excluded)."""
    found = [(int(m.group(1)), p) for p in Path(input_dir).iterdir() if (m := SEED_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def _percent(x: float) -> float:
    return 100.0 * x


def _run_stats(seeds: Sequence[Sequence[dict]]) -> dict:
    tokens = [
        line["num_generated_tokens"]
        for lines in seeds
        for line in lines
        if isinstance(line.get("num_generated_tokens"), (int, float))
    ]
    seconds = [sum(float(line.get("generation_time") or 0.0) for line in lines) for lines in seeds]
    return {
        "avg_tokens": statistics.fmean(tokens) if tokens else 0.0,
        "gen_seconds": statistics.fmean(seconds) if seconds else 0.0,
    }


def metrics_table(seeds: Sequence[Sequence[dict]], grader: str, problems: Optional[Sequence[int]] = None) -> dict:
    """{evaluation_mode: row} for the given problems (all when None) of N aligned seeds."""
    judge = get_grader(grader)
    key = judge.correct_key
    n = len(seeds)
    problems = list(range(len(seeds[0]))) if problems is None else list(problems)
    rows_of = [[seeds[s][i] for i in problems] for s in range(n)]  # [seed][problem]
    correct = [[bool(line.get(key)) for line in lines] for lines in rows_of]
    answered = [[judge.has_answer(line) for line in lines] for lines in rows_of]
    count = len(problems)
    base = {"num_entries": count, **_run_stats(rows_of)}

    def row(accuracy: float, no_answer: float, **extra) -> dict:
        return {**base, key: _percent(accuracy), **extra, "no_answer": _percent(no_answer)}

    table: dict[str, dict] = {}
    if count == 0:
        return table
    ks = ks_for(n)
    for k in ks:
        if k == 1:
            continue
        per_seed = [sum(correct[s]) / count for s in range(k)]
        missing = [sum(not a for a in answered[s]) / count for s in range(k)]
        std = _percent(statistics.stdev(per_seed))
        table[f"pass@1[avg-of-{k}]"] = row(statistics.fmean(per_seed), statistics.fmean(missing), **{f"{key}_std": std})
    if judge.votes:
        for k in ks:
            if k == 1:
                continue
            wins, none = 0.0, 0
            for p in range(count):
                answers = [judge.answer(rows_of[s][p]) for s in range(k)]
                grades = [correct[s][p] for s in range(k)]
                wins += majority_credit(answers, grades)
                none += all(answer is None for answer in answers)  # no vote at all: no answer
            table[f"majority@{k}"] = row(wins / count, none / count)
    for k in ks:
        hits = [pass_at_k(n, sum(correct[s][p] for s in range(n)), k) for p in range(count)]
        blanks = [all_fail_at_k(n, sum(not answered[s][p] for s in range(n)), k) for p in range(count)]
        table[f"pass@{k}"] = row(statistics.fmean(hits), statistics.fmean(blanks))
    return table


def compute_benchmark_metrics(
    seeds: Sequence[Sequence[dict]], grader: Optional[str] = None, benchmark: str = "", seed_names: Sequence[str] = ()
) -> dict:
    """The whole metrics.json document of one benchmark."""
    if not seeds:
        raise ValueError("no seed files to compute metrics from")
    sizes = {len(lines) for lines in seeds}
    if len(sizes) != 1:
        raise ValueError(
            f"seed files have different numbers of lines {sorted(sizes)}: every seed must cover "
            "the same problems in the same order"
        )
    grader = grader or detect_grader(seeds[0])
    key = get_grader(grader).correct_key
    doc = {
        "benchmark": benchmark,
        "grader": grader,
        "correct_key": key,
        "num_seeds": len(seeds),
        "seed_files": list(seed_names),
        "metrics": metrics_table(seeds, grader),
    }
    categories: dict[str, list[int]] = {}
    for i, line in enumerate(seeds[0]):
        if line.get("category") is not None:
            categories.setdefault(str(line["category"]), []).append(i)
    if categories:
        doc["per_category"] = {c: metrics_table(seeds, grader, idx) for c, idx in sorted(categories.items())}
    doc.update(get_grader(grader).extra_metrics(seeds))
    return doc


def default_rows(doc: dict) -> list[str]:
    """The rows a summary shows by default: pass@1[avg-of-N], majority@N, pass@N (pass@1 for N = 1)."""
    n = doc["num_seeds"]
    wanted = [f"pass@1[avg-of-{n}]", f"majority@{n}", f"pass@{n}"] if n > 1 else ["pass@1"]
    return [mode for mode in wanted if mode in doc["metrics"]]
