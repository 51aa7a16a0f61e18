"""A typed program on the Python client (``portfolio_ws.client``): prints one user's positions as they
change. ``tests/process/clients_python/test_typed_example.py`` checks it with ``mypy --strict`` and runs it
against a real server.

    PORTFOLIO_PASSWORD=... python clients/python/watch_positions.py http://127.0.0.1:5000 demo1
"""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal

from portfolio_ws.client import (PortfolioClient, PositionEvent, Snapshot, StatusChange, StreamClosed,
                                 Timings)


def describe(event: PositionEvent) -> str:
    value: Decimal = event.market_value  # every amount is a Decimal
    return f"{event.symbol} {event.side} {event.quantity} @ {event.current_price} value {value} seq {event.seq}"


async def watch(client: PortfolioClient, updates: int) -> list[str]:
    """Lines for the first snapshot and then ``updates`` live position updates."""
    lines: list[str] = []
    statuses: list[str] = []
    remove = client.on(StatusChange, lambda change: statuses.append(change.status))  # typed: StatusChange
    try:
        async for event in client:
            if isinstance(event, Snapshot):
                lines.append(f"snapshot seq {event.seq}: {len(event.positions)} positions")
            elif isinstance(event, PositionEvent):
                lines.append(describe(event))
                updates -= 1
                if updates <= 0:
                    break
    except StreamClosed as closed:
        lines.append(f"closed for good: {closed.close.code} {closed.close.cause or closed.close.reason}")
    finally:
        remove()
    held = ", ".join(sorted(client.portfolio.positions))
    lines.append(f"holding {held or 'nothing'}; resume point {client.last_seq}; {client.staleness}; {statuses[-1:]}")
    return lines


async def main(url: str, username: str, password: str) -> None:
    async with PortfolioClient(url, username=username, password=password, timings=Timings(ping_interval=15.0)) as client:
        for line in await watch(client, updates=10):
            print(line)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], os.environ["PORTFOLIO_PASSWORD"]))
