"""The judge grader: what it sends, how it reads verdicts, and how the judge's own failures are counted.

The judge here is a STAND-IN: a small OpenAI-compatible server scripted per answer (Yes, No, a reply with no
verdict, HTTP 400), because a real model cannot be made to give each of those on demand.
tests/inference/test_judge_vllm.py runs the same path against a real judge (the embedded model on vLLM).
The eval wiring (a judge server in the grading job, checked at submission) is checked by dry runs.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading

import pytest
from aiohttp import web

from assay.core.config import ConfigError
from assay.evaluation.evaluate_results import JudgeGraderConfig
from assay.evaluation.graders.judge import judge_lines, judged_answer, parse_verdict
from assay.evaluation.metrics import compute_benchmark_metrics
from assay.pipeline.evaluate import eval as run_eval


def test_verdicts_are_read_from_the_last_judgement_line():
    assert parse_verdict("The two agree.\nJudgement: Yes") is True
    assert parse_verdict("Judgement: Yes? No, they differ.\n**Judgment:** no") is False
    assert parse_verdict("judgement: [[YES]]") is True
    assert parse_verdict("They are equal, yes.") is None
    assert parse_verdict("") is None


def test_the_judged_answer_is_the_last_boxed_one_else_the_final_answer():
    assert judged_answer("draft \\boxed{1}\nso finally \\boxed{x^2}") == "x^2"
    assert judged_answer("<think>\\boxed{3}</think>The set is {1, 2}.") == "The set is {1, 2}."
    assert judged_answer("<think>never finished") is None
    assert judged_answer("   ") is None


class StandInJudge:
    """Replies by the student's answer in the judge prompt: `yes-*` Yes, `no-*` No, `mute-*` no verdict,
    `bad-*` HTTP 400. Keeps each request's body."""

    def __init__(self):
        self.bodies: list[dict] = []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _serve(self, ready):
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._reply)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        ready.set()
        self.loop.run_forever()

    async def _reply(self, request):
        body = await request.json()
        self.bodies.append(body)
        student = re.search(r"Student's final answer:\n(\S+)", body["messages"][-1]["content"])[1]
        if student.startswith("bad-"):
            return web.Response(status=400, text="bad request")
        text = {"yes": "Same value.\nJudgement: Yes", "no": "Different.\nJudgement: No"}.get(
            student.split("-")[0], "I cannot tell."
        )
        return web.json_response({"choices": [{"message": {"content": text}, "finish_reason": "stop"}]})


@pytest.fixture(scope="module")
def judge():
    return StandInJudge()


def test_each_answer_is_judged_and_the_judges_failures_are_counted_apart(judge):
    generations = ["\\boxed{yes-1}", "\\boxed{no-2}", "\\boxed{mute-3}", "\\boxed{bad-4}", "<think>unfinished"]
    lines = [
        {"id": i, "problem": f"P{i}", "expected_answer": "E", "generation": g, "judge_error": "stale"}
        for i, g in enumerate(generations)
    ]
    cfg = JudgeGraderConfig(model="judge-model", base_url=f"http://127.0.0.1:{judge.port}/v1", max_retries=0)
    graded = asyncio.run(judge_lines(lines, cfg))
    assert [g["judge_correct"] for g in graded] == [True, False, False, False, False]
    assert [g.get("judge_error", "").split(":")[0] for g in graded] == ["", "", "no_verdict", "request_failed", ""]
    assert graded[4]["predicted_answer"] is None and len(judge.bodies) == 4  # no final answer: not sent
    sent = judge.bodies[0]
    assert sent["model"] == "judge-model" and sent["temperature"] == 0.0 and sent["max_tokens"] == 1024
    assert "P0" in sent["messages"][-1]["content"] and "Reference answer:\nE" in sent["messages"][-1]["content"]

    doc = compute_benchmark_metrics([graded], "judge", benchmark="omni-math")
    assert doc["judge_failures"] == {"no_verdict": 1, "request_failed": 1, "judged": 3}
    assert doc["metrics"]["pass@1"]["judge_correct"] == pytest.approx(20.0)
    assert doc["metrics"]["pass@1"]["no_answer"] == pytest.approx(20.0)  # only the unfinished one


def test_a_judge_without_a_model_or_an_address_is_an_error_before_grading():
    with pytest.raises(ValueError, match="judge.model"):
        asyncio.run(judge_lines([{"expected_answer": "1", "generation": "\\boxed{1}"}], JudgeGraderConfig()))


def write_omni(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    from assay.benchmarks.registry import prepare_data

    source = tmp_path / "omni.jsonl"
    row = {"domain": ["Algebra"], "difficulty": 5.0, "problem": "Find all x.", "solution": "...", "answer": "x=1"}
    source.write_text(json.dumps(row) + "\n")
    prepare_data("omni-math", data_file=str(source))


def test_eval_serves_the_judge_in_the_grading_job(tmp_path, monkeypatch, capsys):
    write_omni(tmp_path, monkeypatch)
    run_eval(
        benchmarks="omni-math:1",
        output_dir=str(tmp_path / "e"),
        model="smollm2",
        judge_model="judge-model",
        judge_server_gpus=2,
        cluster="test-slurm",
        server_gpus=1,
        dry_run=True,
    )
    blocks = re.split(r"(?=^### )", capsys.readouterr().out, flags=re.M)[1:]
    grade = blocks[1]
    assert "++grader=judge" in grade and "++judge.model=judge-model" in grade and "++judge.port=" in grade
    assert "--model=judge-model" in grade and "#SBATCH --gpus-per-node=2" in grade


def test_eval_points_the_judge_at_an_endpoint_and_needs_one_or_the_other(tmp_path, monkeypatch, capsys):
    write_omni(tmp_path, monkeypatch)
    common = dict(benchmarks="omni-math:1", output_dir=str(tmp_path / "e"), model="smollm2", dry_run=True)
    with pytest.raises(ConfigError, match=r"omni-math is graded by an LLM judge: give --judge_model"):
        run_eval(**common)
    with pytest.raises(ConfigError, match="the judge: .*--judge_server_address"):
        run_eval(**common, judge_model="gpt-x", judge_server_type="openai")
    run_eval(
        **common, judge_model="gpt-x", judge_server_type="openai", judge_server_address="https://api.example.com/v1"
    )
    grade = re.split(r"(?=^### )", capsys.readouterr().out, flags=re.M)[-1]
    assert "++judge.base_url=https://api.example.com/v1" in grade and "++judge.server_type=openai" in grade
    assert "assay.inference.serve" not in grade
