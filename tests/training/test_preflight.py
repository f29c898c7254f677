"""The preflight's verdict from graded samples: when the rewards cannot give a gradient, it refuses and says why."""

import json

import pytest

from assay.training import preflight


def lines_of(groups: dict, clipped=(), format_rewards=None) -> list[dict]:
    """Trace lines as rewards.py writes them: one per completion, `groups` maps a row to its rewards."""
    out = []
    for row, rewards in groups.items():
        for k, reward in enumerate(rewards):
            functions = {"execution": reward}
            if format_rewards is not None:
                functions["format"] = format_rewards
            out.append(
                {
                    "row": row,
                    "id": f"task-{row}",
                    "reward": reward,
                    "rewards": functions,
                    "tests_passed": round(reward * 2),
                    "tests_total": 2,
                    "passed": reward == 1.0,
                    "failure_category": None if reward == 1.0 else "wrong_answer",
                    "num_tokens": 10 + k,
                    "clipped": (row, k) in clipped,
                    "completion": f"answer {row}.{k}",
                }
            )
    return out


def test_varied_rewards_pass_with_their_figures():
    report = preflight.summarize(
        lines_of({0: [0, 1, 0, 0.5], 1: [0, 0, 0, 0], 2: [1, 1, 0, 1]}, clipped={(1, 0)}),
        max_zero_variance_fraction=0.9,
        num_samples_shown=5,
    )
    assert not report.refused and report.reasons == []
    assert report.num_prompts == 3 and report.num_completions == 12
    assert report.mean_reward == pytest.approx(4.5 / 12)
    assert report.zero_variance_fraction == pytest.approx(1 / 3)
    assert report.clipped_fraction == pytest.approx(1 / 12)
    assert report.pass_fraction == pytest.approx(4 / 12)
    assert report.failure_categories == {"passed": 4, "wrong_answer": 8}
    assert [g["rewards"] for g in report.groups] == [[0, 1, 0, 0.5], [0, 0, 0, 0], [1, 1, 0, 1]]
    # the sample table takes every prompt's first completion before any second one
    assert [s["completion"] for s in report.samples] == [
        "answer 0.0",
        "answer 1.0",
        "answer 2.0",
        "answer 0.1",
        "answer 1.1",
    ]
    text = preflight.format_report(report)
    assert "zero-variance groups   33%" in text and "mean reward            0.375" in text
    assert "task-0" in text and "answer 2.0" in text


def test_zero_mean_reward_refuses_and_explains_the_missing_gradient():
    report = preflight.summarize(
        lines_of({0: [0, 0, 0, 0], 1: [0, 0, 0, 0]}, clipped={(0, k) for k in range(4)} | {(1, k) for k in range(4)}),
        max_zero_variance_fraction=1.0,
    )
    assert report.refused and report.zero_variance_fraction == 1.0 and report.clipped_fraction == 1.0
    message = preflight.refusal_message(report)
    assert (
        "mean reward is 0" in message
        and "every advantage is zero" in message
        and "no step would produce a gradient" in message
    )
    assert "raise ++max_completion_length" in message  # every completion was cut
    assert "++rewards.format_weight" in message
    assert "++preflight.enabled=false" in message and "max_zero_variance_fraction" not in message.split("anyway")[1]


def test_too_many_flat_groups_refuse_above_the_threshold_only():
    groups = {0: [1, 1, 1, 1], 1: [0, 0, 0, 0], 2: [0, 0, 0, 0], 3: [0, 0, 1, 0]}  # 3 of 4 groups flat
    assert preflight.summarize(lines_of(groups), max_zero_variance_fraction=0.75).reasons == []
    report = preflight.summarize(lines_of(groups, format_rewards=1.0), max_zero_variance_fraction=0.5)
    assert report.refused and "75% of the groups have all-equal rewards" in report.reasons[0]
    assert "zero advantage and no gradient" in report.reasons[0]
    message = preflight.refusal_message(report)
    assert "++rewards.format_weight" not in message  # already on
    assert "a higher ++preflight.max_zero_variance_fraction" in message


def test_report_is_saved_as_json(tmp_path):
    report = preflight.summarize(lines_of({0: [0, 1]}), max_zero_variance_fraction=0.9)
    path = preflight.write_report(report, str(tmp_path / "run"))
    saved = json.loads(path.read_text())
    assert path.name == "preflight.json" and saved["refused"] is False
    assert saved["mean_reward"] == 0.5 and saved["groups"] == [{"row": 0, "id": "task-0", "rewards": [0, 1]}]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_zero_variance_fraction"):
        preflight.PreflightSettings(max_zero_variance_fraction=1.5)
    with pytest.raises(ValueError, match="num_prompts"):
        preflight.PreflightSettings(num_prompts=0)
