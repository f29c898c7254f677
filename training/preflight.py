"""Signal preflight: does the starting policy get any learning signal from these rewards?

GRPO's advantage of a completion is its reward minus the mean reward of its group (the G completions
of the same prompt), divided by the group's spread. A group whose completions all get the same
reward has zero advantage everywhere, so it contributes no gradient: the step's compute on it is
spent for nothing. When the model never earns any reward (mean 0), every group is such a group and
training only burns time while the curves look alive (the loss and KL move with noise).

So before training, the stage samples G completions for M prompts with the starting policy (exactly
as training samples them, through the trainer), grades them with the training rewards, and reports:
mean reward, the fraction of zero-variance groups, the fraction of completions cut at
max_completion_length (a frequent cause of zero reward: the code block never closes), and a sample
table. It refuses to train, with the reasons, when the mean reward is 0 or the zero-variance fraction
exceeds `max_zero_variance_fraction`. The report is saved as `<output_dir>/preflight.json`.

This module is pure: it turns the trace lines of the preflight (rewards.py) into the report.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

REPORT_NAME = "preflight.json"
REFUSED_EXIT_CODE = 4
"""Exit status of the stage when the preflight refuses to train (2 is a config error, 3 a stop by a signal)."""


@dataclass
class PreflightSettings:
    """The check run before training (and alone with ++preflight_only=true)."""

    enabled: bool = True
    """Run the preflight before the first step (a resumed run skips it: it ran before the run's first step)."""
    num_prompts: int = 16
    """M: prompts drawn at random (with the run's seed) from the training data; each gets num_generations completions."""
    max_zero_variance_fraction: float = 0.9
    """Refuse when more than this fraction of the groups have all-equal rewards (no gradient from them);
    1.0 never refuses for this reason (a mean reward of 0 still refuses)."""
    num_samples_shown: int = 8
    """Rows of the sample table printed and saved."""

    def __post_init__(self) -> None:
        if self.num_prompts < 1:
            raise ValueError("preflight.num_prompts must be at least 1")
        if not 0.0 <= self.max_zero_variance_fraction <= 1.0:
            raise ValueError("preflight.max_zero_variance_fraction must be between 0 and 1")


class PreflightRefused(RuntimeError):
    """The starting policy gets no usable signal; the message says why and what to change."""

    def __init__(self, message: str, report: "PreflightReport"):
        super().__init__(message)
        self.report = report


@dataclass
class PreflightReport:
    num_prompts: int
    num_completions: int
    mean_reward: float
    reward_std: float
    zero_variance_fraction: float
    """Fraction of groups (one prompt's completions) whose rewards are all equal."""
    clipped_fraction: float
    """Fraction of completions that hit max_completion_length without an end token."""
    mean_tokens: float
    reward_means: dict[str, float]
    """Mean of each reward function (unweighted)."""
    pass_fraction: Optional[float]
    """Fraction of completions that passed every test (None when no test outcome was traced)."""
    failure_categories: dict[str, int]
    groups: list[dict]
    """Per prompt: row, id, the rewards of its completions in order."""
    samples: list[dict]
    max_zero_variance_fraction: float
    reasons: list[str] = field(default_factory=list)
    """Why training is refused; empty when it may start."""
    seconds: float = 0.0
    """Time the preflight took (sampling and grading)."""

    @property
    def refused(self) -> bool:
        return bool(self.reasons)

    def as_dict(self) -> dict:
        return {**asdict(self), "refused": self.refused}


def _std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5


def summarize(
    lines: list[dict], max_zero_variance_fraction: float, num_samples_shown: int = 8, tolerance: float = 1e-6
) -> PreflightReport:
    """The report of the preflight's trace lines (one per completion, with `row` and `reward`)."""
    if not lines:
        raise ValueError("the preflight produced no completions")
    groups: dict = {}
    for line in lines:
        groups.setdefault(line["row"], []).append(line)
    rewards = [line["reward"] for line in lines]
    flat = sum(
        1
        for members in groups.values()
        if max(m["reward"] for m in members) - min(m["reward"] for m in members) <= tolerance
    )
    names = list(lines[0]["rewards"])
    clipped = [line["clipped"] for line in lines if line.get("clipped") is not None]
    tokens = [line["num_tokens"] for line in lines if line.get("num_tokens") is not None]
    outcomes = [line for line in lines if "passed" in line]
    categories: dict[str, int] = {}
    for line in outcomes:
        key = line.get("failure_category") or "passed"
        categories[key] = categories.get(key, 0) + 1
    report = PreflightReport(
        num_prompts=len(groups),
        num_completions=len(lines),
        mean_reward=sum(rewards) / len(rewards),
        reward_std=_std(rewards),
        zero_variance_fraction=flat / len(groups),
        clipped_fraction=sum(clipped) / len(clipped) if clipped else 0.0,
        mean_tokens=sum(tokens) / len(tokens) if tokens else 0.0,
        reward_means={n: sum(line["rewards"][n] for line in lines) / len(lines) for n in names},
        pass_fraction=sum(bool(line["passed"]) for line in outcomes) / len(outcomes) if outcomes else None,
        failure_categories=categories,
        groups=[
            {"row": row, "id": members[0].get("id"), "rewards": [m["reward"] for m in members]}
            for row, members in groups.items()
        ],
        samples=_samples(groups, num_samples_shown),
        max_zero_variance_fraction=max_zero_variance_fraction,
    )
    report.reasons = refusal_reasons(report)
    return report


def _samples(groups: dict, count: int) -> list[dict]:
    """Up to `count` completions, taken round-robin over the groups so every prompt shows up."""
    out: list[dict] = []
    members = list(groups.values())
    depth = 0
    while len(out) < count and any(depth < len(m) for m in members):
        for group in members:
            if depth < len(group) and len(out) < count:
                line = group[depth]
                out.append(
                    {
                        k: line.get(k)
                        for k in (
                            "row",
                            "id",
                            "reward",
                            "rewards",
                            "tests_passed",
                            "tests_total",
                            "failure_category",
                            "num_tokens",
                            "clipped",
                            "completion",
                        )
                    }
                )
        depth += 1
    return out


def refusal_reasons(report: PreflightReport) -> list[str]:
    reasons = []
    if report.mean_reward <= 0.0:
        reasons.append(
            f"the mean reward is 0 over {report.num_completions} completions of {report.num_prompts} prompts: the "
            "starting policy never earns any reward, so every group's rewards are equal, every advantage is zero, "
            "and no step would produce a gradient."
        )
    elif report.zero_variance_fraction > report.max_zero_variance_fraction:
        reasons.append(
            f"{report.zero_variance_fraction:.0%} of the groups have all-equal rewards (more than "
            f"max_zero_variance_fraction={report.max_zero_variance_fraction:g}): a group's advantages are its "
            "rewards minus their mean, so those groups give zero advantage and no gradient; nearly all of each "
            "step's compute would be wasted."
        )
    return reasons


def advice(report: PreflightReport) -> list[str]:
    """What usually helps, given what the report shows."""
    tips = []
    if report.clipped_fraction >= 0.5:
        tips.append(
            f"{report.clipped_fraction:.0%} of the completions were cut at max_completion_length: raise "
            "++max_completion_length (a cut code block is no answer)"
        )
    tips += [
        "use easier tasks, or first fine-tune (assay sft) on solved examples so the model passes some",
        "raise ++num_generations (more samples per prompt: more chances that one differs)",
    ]
    if "format" not in report.reward_means:
        tips.append("add ++rewards.format_weight=0.1 (partial credit for a well-formed answer)")
    return tips


def refusal_message(report: PreflightReport) -> str:
    lines = ["preflight: refusing to train: the starting policy gets no learning signal from these rewards."]
    lines += [f"- {reason}" for reason in report.reasons]
    lines.append("What may help:")
    lines += [f"- {tip}" for tip in advice(report)]
    anyway = "++preflight.enabled=false"
    if report.mean_reward > 0:
        anyway += " (or a higher ++preflight.max_zero_variance_fraction)"
    lines.append(f"To train anyway: {anyway}.")
    return "\n".join(lines)


def _cell(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_report(report: PreflightReport) -> str:
    means = ", ".join(f"{name} {value:.3f}" for name, value in report.reward_means.items())
    lines = [
        f"preflight: {report.num_prompts} prompts x {report.num_completions // max(report.num_prompts, 1)} "
        f"completions = {report.num_completions} ({report.seconds:.0f} s)",
        f"  mean reward            {report.mean_reward:.3f} (std {report.reward_std:.3f}; {means})",
        f"  zero-variance groups   {report.zero_variance_fraction:.0%} (refuse above "
        f"{report.max_zero_variance_fraction:.0%})",
        f"  clipped completions    {report.clipped_fraction:.0%} (mean {report.mean_tokens:.0f} tokens)",
    ]
    if report.pass_fraction is not None:
        found = ", ".join(f"{k} {v}" for k, v in sorted(report.failure_categories.items(), key=lambda kv: -kv[1]))
        lines.append(f"  passed all tests       {report.pass_fraction:.0%} ({found})")
    lines.append(
        "  group rewards          "
        + "; ".join(f"{g['id'] or g['row']}: {' '.join(f'{r:.2f}' for r in g['rewards'])}" for g in report.groups[:8])
        + (" ..." if len(report.groups) > 8 else "")
    )
    if report.samples:
        lines.append(f"  {'id':<28} {'reward':>6} {'tests':>5} {'outcome':<18} {'toks':>4}  completion")
        for s in report.samples:
            tests = f"{s['tests_passed']}/{s['tests_total']}" if s.get("tests_total") is not None else "-"
            outcome = (s.get("failure_category") or "passed") + (", cut" if s.get("clipped") else "")
            lines.append(
                f"  {_cell(s['id'] or s['row'], 28):<28} {s['reward']:>6.2f} {tests:>5} {outcome:<18} "
                f"{s['num_tokens'] if s['num_tokens'] is not None else '-':>4}  {_cell(s['completion'], 70)}"
            )
    return "\n".join(lines)


def write_report(report: PreflightReport, output_dir: str) -> Path:
    path = Path(output_dir) / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    return path
