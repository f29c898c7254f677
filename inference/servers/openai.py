"""`openai`: any OpenAI-compatible endpoint someone else runs (`server_address`); nothing is launched."""

from __future__ import annotations

from . import SERVER_TYPES, ServerType


@SERVER_TYPES.register("openai")
class OpenAIEndpoint(ServerType):
    name = "openai"
    starts_process = False
