"""A small OpenAI-compatible stand-in server for the generation stage's error paths.

Real vLLM cannot produce 5xx answers, malformed JSON or delays on demand; this can. It answers
`/v1/chat/completions` and `/v1/completions` with the last user message reversed, and reads its
behaviour from the request: a user message containing
  FAIL500:<n>  -> the first n requests with that text get HTTP 500,
  BAD400       -> HTTP 400 every time,
  BADJSON:<n>  -> the first n answers are not JSON,
  SLOW:<s>     -> the answer waits s seconds,
  RATE429:<n>  -> the first n requests get HTTP 429 with Retry-After: 1,
  BUSY503:<n>  -> the first n requests get HTTP 503,
  NOCHOICES:<n> -> the first n answers are HTTP 200 without `choices`,
  TOOLONG      -> HTTP 400 with vLLM's "prompt longer than the context" message,
  CTX:<c>:<p>  -> HTTP 400 with vLLM's "max_tokens is too large" message while max_tokens > c - p.
It also counts requests per prompt, the most requests in flight at once, the Authorization header of each prompt's last request, and keeps the last body of each (GET /stats), so tests can see retries and duplicates.
Run: python openai_standin.py PORT
"""

import asyncio
import re
import sys
from collections import Counter

from aiohttp import web

seen: Counter = Counter()
bodies: dict = {}
auth: dict = {}
load = {"in_flight": 0, "max_in_flight": 0}


def _prompt(body: dict) -> str:
    if "messages" in body:
        return body["messages"][-1]["content"]
    return body.get("prompt", "")


async def complete(request: web.Request) -> web.Response:
    load["in_flight"] += 1
    load["max_in_flight"] = max(load["max_in_flight"], load["in_flight"])
    try:
        return await _answer(request)
    finally:
        load["in_flight"] -= 1


async def _answer(request: web.Request) -> web.Response:
    body = await request.json()
    text = _prompt(body)
    seen[text] += 1
    bodies[text] = body
    auth[text] = request.headers.get("Authorization")
    if m := re.search(r"RATE429:(\d+)", text):
        if seen[text] <= int(m[1]):
            return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})
    if m := re.search(r"BUSY503:(\d+)", text):
        if seen[text] <= int(m[1]):
            return web.Response(status=503, text="busy")
    if m := re.search(r"NOCHOICES:(\d+)", text):
        if seen[text] <= int(m[1]):
            return web.json_response({"object": "chat.completion", "usage": {}})
    if "TOOLONG" in text:
        message = "The decoder prompt (length 9000) is longer than the maximum model length of 8192."
        return web.json_response({"error": {"message": message}}, status=400)
    if m := re.search(r"MAXLEN:(\d+)", text):  # vLLM refuses a max_tokens over the whole context first
        if body.get("max_tokens", 0) > int(m[1]):
            message = f"max_tokens={body['max_tokens']} cannot be greater than max_model_len={m[1]}. Please request fewer output tokens."
            return web.json_response({"error": {"message": message}}, status=400)
    if m := re.search(r"CTX:(\d+):(\d+)", text):
        limit, used = int(m[1]), int(m[2])
        if body.get("max_tokens", 0) > limit - used:
            message = (
                f"'max_tokens' is too large: {body['max_tokens']}. This model's maximum context length is {limit} "
                f"tokens and your request has {used} input tokens ({body['max_tokens']} > {limit} - {used})."
            )
            return web.json_response({"error": {"message": message}}, status=400)
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
    return web.json_response({"seen": dict(seen), "bodies": bodies, "auth": auth, **load})


async def reset_load(_request: web.Request) -> web.Response:
    load["max_in_flight"] = load["in_flight"]
    return web.json_response(load)


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_post("/v1/completions", complete)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset_load", reset_load)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None)
