"""A small OpenAI-compatible stand-in server for the generation stage's error paths.

Real vLLM cannot produce 5xx answers, malformed JSON or delays on demand; this can. It answers
`/v1/chat/completions` and `/v1/completions` with the last user message reversed, and reads its
behaviour from the request: a user message containing
  FAIL500:<n>  -> the first n requests with that text get HTTP 500,
  BAD400       -> HTTP 400 every time,
  BADJSON:<n>  -> the first n answers are not JSON,
  SLOW:<s>     -> the answer waits s seconds.
It also counts requests per prompt and keeps the last body of each (GET /stats), so tests can see retries and duplicates.
Run: python openai_standin.py PORT
"""

import asyncio
import re
import sys
from collections import Counter

from aiohttp import web

seen: Counter = Counter()
bodies: dict = {}


def _prompt(body: dict) -> str:
    if "messages" in body:
        return body["messages"][-1]["content"]
    return body.get("prompt", "")


async def complete(request: web.Request) -> web.Response:
    body = await request.json()
    text = _prompt(body)
    seen[text] += 1
    bodies[text] = body
    if m := re.search(r"FAIL500:(\d+)", text):
        if seen[text] <= int(m[1]):
            return web.Response(status=500, text="internal error")
    if "BAD400" in text:
        return web.Response(status=400, text='{"error": "bad request"}')
    if m := re.search(r"BADJSON:(\d+)", text):
        if seen[text] <= int(m[1]):
            return web.Response(status=200, text="{not json", content_type="application/json")
    if m := re.search(r"SLOW:([\d.]+)", text):
        await asyncio.sleep(float(m[1]))
    answer = text[::-1]
    tokens = len(answer.split())
    finish = "length" if tokens >= body.get("max_tokens", 10**9) else "stop"
    usage = {"completion_tokens": tokens, "prompt_tokens": 1}
    if "messages" in body:
        choice = {"message": {"role": "assistant", "content": answer}, "finish_reason": finish, "index": 0}
    else:
        choice = {"text": answer, "finish_reason": finish, "index": 0}
    return web.json_response({"choices": [choice], "usage": usage, "echo": body})


async def models(_request: web.Request) -> web.Response:
    return web.json_response({"data": [{"id": "standin"}]})


async def stats(_request: web.Request) -> web.Response:
    return web.json_response({"seen": dict(seen), "bodies": bodies})


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_post("/v1/completions", complete)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/stats", stats)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None)
