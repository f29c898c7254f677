"""The frames that pass between a sandbox worker and its session processes: a 4-byte length, then JSON.

Standalone (no assay imports): the session side runs in the fork server's interpreter.
"""

from __future__ import annotations

import json
import os
import struct

HEADER = struct.Struct("!I")
MAX_FRAME = 256 * 2**20


class WireError(RuntimeError):
    pass


def _read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("peer closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv(fd: int) -> dict:
    (size,) = HEADER.unpack(_read_exact(fd, HEADER.size))
    if size > MAX_FRAME:
        raise WireError(f"frame of {size} bytes is over the {MAX_FRAME} limit")
    return json.loads(_read_exact(fd, size))


def encode(message: dict) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return HEADER.pack(len(body)) + body


def send(fd: int, message: dict) -> None:
    data = memoryview(encode(message))
    while data:
        written = os.write(fd, data)
        data = data[written:]
