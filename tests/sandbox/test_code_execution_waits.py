"""Code-execution generation against a full sandbox: samples wait for room instead of failing.

A real sandbox that holds one session. A sample holds it; a second sample's call gets 503 and is
waited out until the first one ends; and the loop never asks for more sessions than the sandbox has.
"""

from __future__ import annotations

import asyncio

from assay.inference.code_execution import CodeExecutionLoop, sandbox_capacity
from assay.inference.code_execution_tags import load_code_tags
from assay.inference.config import GenerateConfig, ServerConfig
from assay.sandbox.client import AsyncSandboxClient


def test_a_second_sample_waits_for_the_only_session(server_factory):
    srv = server_factory("one-session", "--max-sessions", "1", "--pool-size", "1")
    cfg = GenerateConfig(
        input_file="in", output_file="out", code_execution=True, code_tags="generic", server=ServerConfig(model="m")
    )

    async def scenario():
        async with AsyncSandboxClient(srv.url, token=srv.token) as sandbox:
            assert await sandbox_capacity(sandbox) == 1
            loop = CodeExecutionLoop(cfg, load_code_tags("generic"), sandbox, max_sessions=1)
            # someone else (another job on the node) holds the only session for a moment
            await sandbox.execute("x = 1", session_id="other")

            async def release():
                await asyncio.sleep(1.5)
                await sandbox.delete_session("other")

            releaser = asyncio.ensure_future(release())
            result = await loop._execute("print(6 * 7)", "mine")
            await releaser
            await sandbox.delete_session("mine")
            return result

    result = asyncio.run(scenario())
    assert (result.status, result.stdout) == ("ok", "42\n")
