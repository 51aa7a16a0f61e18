"""Raw HTTP over a plain socket, for what well-behaved clients never do."""

from __future__ import annotations

import asyncio
import time


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sent until it closed (fails if it didn't close within ``within``)."""
    data = b""
    deadline = time.monotonic() + within
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), max(0.01, deadline - time.monotonic()))
        if not chunk:
            return data
        data += chunk
