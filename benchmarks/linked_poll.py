"""What linked accounts cost a running Alpaca feed (docs/alpaca.md, "Linked accounts"):

- one poll of the ``linked_accounts`` table when nothing changed (the query, done every
  ``accounts.poll_seconds`` on the feed's executor) with 100, 1,000 and 10,000 linked rows, in a
  SQLite file and, with ``--postgres URL``, in PostgreSQL;
- one secret decrypted (done only when a row is new or re-linked);
- how long after ``accounts link`` the account's trading stream listens, with the default 2 s poll:
  alpaca-py against the local Alpaca (tests/alpaca_server.py), ``--links`` links one after another,
  each at a (seeded) random moment of the poll interval.

Medians of ``--runs``. The figures are of this machine (shared, noisy).

    python benchmarks/linked_poll.py [--runs 20] [--rows 100 1000 10000] [--links 10] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portfolio_ws.auth.linked import LinkedAccountStore, new_key  # noqa: E402
from portfolio_ws.bus.memory import InMemoryBus  # noqa: E402
from portfolio_ws.feeds.alpaca.feed import AlpacaFeed  # noqa: E402
from portfolio_ws.feeds.alpaca.linked import LinkedAccounts  # noqa: E402
from portfolio_ws.settings import AlpacaSettings  # noqa: E402
from tests.alpaca_server import AlpacaTestServer  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "linked_poll.json"


def poll_cost(database: str, rows: int, runs: int, key: str) -> dict[str, float]:
    store = LinkedAccountStore(database, key)
    try:
        for account in store.list():
            store.unlink(account.user_id)
        for i in range(rows):
            store.link(f"user-{i:012x}", "keys", f"AKBENCH{i:013d}", f"secret-{i:032d}", paper=True)
        lists, decrypts = [], []
        first = store.list()[0]
        for _ in range(runs):
            began = time.perf_counter()
            store.list()
            lists.append(time.perf_counter() - began)
            began = time.perf_counter()
            store.secret(first)
            decrypts.append(time.perf_counter() - began)
        return {"rows": rows, "poll_ms": round(statistics.median(lists) * 1000, 2),
                "decrypt_ms": round(statistics.median(decrypts) * 1000, 3)}
    finally:
        store.close()


async def pickup(links: int, folder: Path, poll: float) -> dict[str, float]:
    server = AlpacaTestServer()
    users = [(f"user-{i}", f"AKPICKUP{i:012d}", f"pickup-secret-{i}") for i in range(links)]
    for _, key, secret in users:
        server.add_account(key, secret)
    await server.start()
    key = new_key()
    database = str(folder / "pickup.sqlite3")
    cli = LinkedAccountStore(database, key)
    feed = AlpacaFeed(AlpacaSettings(trading_stream_url=server.trading_url, data_stream_url=server.data_url,
                                     rest_url=server.rest_url),
                      env={}, linked=LinkedAccounts(LinkedAccountStore(database, key), poll))
    await feed.start(InMemoryBus())
    delays = []
    offsets = random.Random(1)  # a link lands anywhere in the poll interval, as a user's would
    try:
        for user, api_key, secret in users:
            await asyncio.sleep(offsets.uniform(0, poll))
            began = time.perf_counter()
            cli.link(user, "keys", api_key, secret, paper=True)
            await server.trading_listening(api_key)
            delays.append(time.perf_counter() - began)
    finally:
        await feed.stop()
        await server.stop()
        cli.close()
    return {"links": links, "poll_seconds": poll, "median_s": round(statistics.median(delays), 2),
            "max_s": round(max(delays), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rows", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--links", type=int, default=10)
    parser.add_argument("--postgres", default="", help="a postgresql:// URL of an empty scratch database")
    args = parser.parse_args()
    key = new_key()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = [poll_cost(str(Path(folder) / "bench.sqlite3"), n, args.runs, key) for n in args.rows]
        if args.postgres:
            results["postgres"] = [poll_cost(args.postgres, n, args.runs, key) for n in args.rows]
        results["pickup"] = asyncio.run(pickup(args.links, Path(folder), 2.0))
    print(json.dumps(results, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
