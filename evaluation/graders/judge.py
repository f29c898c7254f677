"""`judge`: an LLM judge decides whether the final answer matches `expected_answer`.

For answers no rule can compare (proofs, free-form expressions, text): the judge model is asked, with the
judge prompt (`++judge.prompt_config`, default judge/answer), whether the model's final answer is equivalent
to the reference, and ends its reply with `Judgement: Yes` or `Judgement: No`. The judge is an
OpenAI-compatible server: one that eval starts beside the grading job (`judge_model=`), or an endpoint
(`judge_server_address=`); see EvaluateResultsConfig.judge.

What the answer is: the last `\\boxed{}` of the final answer (evaluation/final_answer.py) when there is one,
else the final answer's text (its last JUDGED_ANSWER_CHARS characters). A generation with no final answer is
no answer: it is wrong, and the judge is not asked.

The judge's own failures are counted apart from the model's: a request that failed for good, or a reply
with no verdict, sets `judge_error` on the line, counts as not correct, and appears in metrics.json as
`judge_failures`, so a broken judge never looks like a weak model. Fields set on each line:
`predicted_answer`, `judge_correct`, `judge_generation` (the judge's reply), `judge_error` (only on failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections import Counter
from typing import Any, Iterator, Optional, Sequence

from ...inference.config import ServerConfig
from ...inference.model_client import ModelClient, RequestFailedError
from ...inference.prompt import PromptError, load_prompt_config
from ..extract_math import last_boxed
from ..final_answer import final_answer_region
from . import GRADERS, GradeLines, Grader

JUDGE_URL_ENV = "ASSAY_JUDGE_URL"
"""The judge's base URL when eval started it beside the grading job."""
JUDGED_ANSWER_CHARS = 4000
_VERDICT = re.compile(r"judge?ment\s*[:：]?\s*[*_`\[(]*\s*(yes|no)\b", re.IGNORECASE)
NO_VERDICT = "no_verdict"
REQUEST_FAILED = "request_failed"


def judged_answer(generation: Optional[str]) -> Optional[str]:
    """What the judge compares with the reference: the last boxed answer, else the final answer's tail."""
    region = final_answer_region(generation)
    if region is None or not region.strip():
        return None
    boxed = last_boxed(region)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    return region.strip()[-JUDGED_ANSWER_CHARS:]


def parse_verdict(reply: str) -> Optional[bool]:
    """True for a last `Judgement: Yes`, False for `Judgement: No`, None when the reply gives neither."""
    verdicts = _VERDICT.findall(reply or "")
    return None if not verdicts else verdicts[-1].lower() == "yes"


def judge_server(cfg) -> ServerConfig:
    """The ServerConfig of the judge (an endpoint, or the server eval started beside the grading job)."""
    base_url = cfg.base_url or os.environ.get(JUDGE_URL_ENV)
    if not cfg.model:
        raise ValueError("the judge grader needs ++judge.model (the judge's served model name)")
    if not base_url and not cfg.port:
        raise ValueError(f"the judge grader needs ++judge.base_url (or ${JUDGE_URL_ENV}): where the judge is served")
    return ServerConfig(
        server_type=cfg.server_type,
        model=cfg.model,
        host=cfg.host,
        port=cfg.port or 5000,
        base_url=base_url,
        api_key_env=cfg.api_key_env,
        request_timeout=cfg.request_timeout,
        max_retries=cfg.max_retries,
    )


async def judge_lines(lines: list[dict], cfg, generation_key: str = "generation") -> list[dict]:
    """Every line with the judge's fields set; at most cfg.max_concurrent requests in flight."""
    prompt = load_prompt_config(cfg.prompt_config)
    body: dict[str, Any] = {"temperature": cfg.temperature, "max_tokens": cfg.tokens_to_generate}
    limit = asyncio.Semaphore(cfg.max_concurrent)

    async def judge_one(client: ModelClient, line: dict) -> dict:
        out = dict(line)
        for key in ("judge_error", "judge_generation"):
            out.pop(key, None)
        answer = judged_answer(line.get(generation_key))
        out["predicted_answer"] = answer
        out["judge_correct"] = False
        if answer is None:
            return out
        fields = {**line, "predicted_answer": answer, "problem": line.get("problem", line.get("question", ""))}
        try:
            messages = prompt.messages(fields)
        except PromptError as exc:
            raise ValueError(f"judge prompt {cfg.prompt_config}: {exc}") from None
        async with limit:
            try:
                reply = (await client.chat(messages, body, {})).text
            except RequestFailedError as exc:
                out["judge_error"] = f"{REQUEST_FAILED}: {exc}"[:1000]
                return out
        out["judge_generation"] = reply
        verdict = parse_verdict(reply)
        if verdict is None:
            out["judge_error"] = f"{NO_VERDICT}: the reply has no 'Judgement: Yes' or 'Judgement: No'"
        out["judge_correct"] = bool(verdict)
        return out

    async with ModelClient(judge_server(cfg), max_connections=cfg.max_concurrent) as client:
        return list(await asyncio.gather(*(judge_one(client, line) for line in lines)))


def judge_failures(seeds: Sequence[Sequence[dict]]) -> dict[str, int]:
    """How many samples (all seeds) the judge failed on, by kind, and how many it judged."""
    kinds = Counter(
        str(line["judge_error"]).split(":", 1)[0] for lines in seeds for line in lines if line.get("judge_error")
    )
    judged = sum("judge_generation" in line for lines in seeds for line in lines)
    return {NO_VERDICT: kinds.get(NO_VERDICT, 0), REQUEST_FAILED: kinds.get(REQUEST_FAILED, 0), "judged": judged}


@GRADERS.register("judge")
class JudgeGrader(Grader):
    name = "judge"
    correct_key = "judge_correct"
    required_fields = ("expected_answer",)
    needs_judge = True

    @contextlib.contextmanager
    def session(self, cfg) -> Iterator[GradeLines]:
        judge_server(cfg.judge)  # a missing model or address is an error before any file is read
        yield lambda lines: asyncio.run(judge_lines(lines, cfg.judge, cfg.generation_key))

    def report(self, graded: Sequence[dict]) -> str:
        text = super().report(graded)
        failures = judge_failures([graded])
        failed = failures[NO_VERDICT] + failures[REQUEST_FAILED]
        if failed:
            text += (
                f"; the judge failed on {failed} (no verdict: {failures[NO_VERDICT]}, "
                f"request failed: {failures[REQUEST_FAILED]}; see judge_error), counted apart as judge_failures"
            )
        return text

    def extra_metrics(self, seeds: Sequence[Sequence[dict]]) -> dict[str, Any]:
        return {"judge_failures": judge_failures(seeds)}
