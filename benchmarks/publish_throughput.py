"""Events a second one node takes through ``POST /api/v1/publish``, and the latency to the sockets.

A ``portfolio-ws serve --feed publish`` process; ``--users`` users with one socket each (subscribed
to every channel) in this process; then ``--events`` new events, orders and trades in turn
(round-robin over the users: the two channels that go to the sockets at once), published by
``portfolio_ws.publish.AsyncPublisher`` in requests of ``--batch`` items, one request at a time.
From the second request on, each also re-sends ``--repeats`` items of the request before with the
same ids, and carries ``--invalid`` broken items (an unknown type, an unknown user, a quantity that
is not a decimal, a missing field) shuffled among the rest. A run's last request sends each user one
more trade; once every socket has it, every earlier event of its user has arrived.

Reported per run, and the median of each figure over ``--runs``:
- events accepted a second (new events / the summed request times);
- for every new event on every socket, the time from its request's response to its arrival, p50 /
  p99 / max, for all, orders and trades (negative when it arrived before the response was read:
  the server writes the sockets as it publishes and answers after the last item), and from the
  request's start;
- ``answers_right``: every item was answered as what it is (each new one ``accepted``, each re-sent
  one ``duplicate``, each broken one ``rejected`` with its index and the field at fault);
  ``delivered_once``: every new event reached every socket of its user exactly once, re-sent ones
  never a second time;
- the load average when the run started and ended (the machine is shared: see docs/performance.md).

    python benchmarks/publish_throughput.py                 # ~20 s
    python benchmarks/publish_throughput.py --runs 5 --out benchmarks/results/publish_throughput.json
    python benchmarks/publish_throughput.py --cluster 2     # two nodes on a private redis-server

With ``--cluster N``, N ``serve`` processes share a redis-server started here (cluster mode); every
user has one socket on each node, requests go to the nodes in turn (so each re-sent item reaches
another node than the one that took it first), and every event is timed on every socket; the
latency is also given apart for the sockets on the node that answered and on the others (fed
through Redis).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reliability_common import (Server, free_port, make_users_and_sessions, open_client,  # noqa: E402
                                           serve_command, write_report)
from portfolio_ws.auth.apikeys import ApiKeyStore  # noqa: E402
from portfolio_ws.publish import AsyncPublisher  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

SUBSCRIBE = '{"type":"subscribe","channels":["positions","orders","account","trades"]}'


def _bad_number(item: dict[str, Any]) -> tuple[dict[str, Any], str]:
    name = "quantity" if "quantity" in item["data"] else "qty"
    return {**item, "data": {**item["data"], name: "1,5"}}, f"data.{name}"


INVALID: list[Callable[[dict[str, Any]], tuple[dict[str, Any], str]]] = [  # each: the item broken, the field named
    lambda item: ({**item, "type": "dividend"}, "type"),
    lambda item: ({**item, "userId": "no-such-user"}, "userId"),
    _bad_number,
    lambda item: ({**item, "data": {k: v for k, v in item["data"].items() if k != "symbol"}}, "data.symbol"),
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def spread(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 2), "p99": round(percentile(values, 99), 2),
            "max": round(max(values), 2), "count": len(values)}


def event_item(run: int, n: int, user: str) -> dict[str, Any]:
    """Event ``n`` of a run: orders and trades in turn (the two channels sent at once)."""
    if n % 2:
        return {"type": "trade", "userId": user, "id": f"r{run}-{n}",
                "data": {"tradeId": f"r{run}-{n}", "symbol": "NVDA", "side": "buy", "quantity": "1",
                         "price": "520.50", "executedAt": "2026-01-05T15:30:00Z"}}
    return {"type": "order", "userId": user, "id": f"r{run}-{n}",
            "data": {"orderId": f"r{run}-{n}", "symbol": "NVDA", "side": "buy", "type": "limit", "status": "new",
                     "qty": "1", "filledQty": "0", "limitPrice": "520.50", "submittedAt": "2026-01-05T15:30:00Z"}}


def make_batches(run: int, users: list[str], events: int, batch: int, repeats: int,
                 invalid: int) -> list[list[tuple[str, dict[str, Any]]]]:
    """``events`` new events in requests of ``batch`` items; from the second request on, each also
    re-sends ``repeats`` items of the one before (same ids: "duplicate", never delivered again; in a
    cluster the previous request went to the other node) and carries ``invalid`` broken items
    (rejected by index). Each item is (what it is: "new", "repeat" or the field its rejection names,
    the item)."""
    batches: list[list[tuple[str, dict[str, Any]]]] = []
    n = 0
    while n < events:
        chunk: list[tuple[str, dict[str, Any]]] = []
        if batches:
            chunk += [("repeat", item) for what, item in batches[-1] if what == "new"][:repeats]
        for k in range(invalid):
            broken, field_name = INVALID[(len(batches) * invalid + k) % len(INVALID)](
                event_item(run, events + len(batches) * invalid + k, users[k % len(users)]))
            chunk.append((field_name, broken))
        while len(chunk) < batch and n < events:
            chunk.append(("new", event_item(run, n, users[n % len(users)])))
            n += 1
        random.Random(run * 1000 + len(batches)).shuffle(chunk)  # the broken ones anywhere in the batch
        batches.append(chunk)
    return batches


async def one_run(ports: list[int], key: str, sessions: list[tuple[str, str]], events: int, batch: int,
                  run: int, repeats: int, invalid: int) -> dict[str, Any]:
    """Each user has one socket on every node of ``ports``; request ``i`` goes to ``ports[i % len]``."""
    arrived: dict[tuple[str, int], float] = {}  # (event id, socket's node) -> first arrival
    twice = 0  # an event seen twice on one socket
    sentinels: set[tuple[str, int]] = set()  # (user, node): the run's last event reached that socket
    everyone = len(sessions) * len(ports)
    all_in = asyncio.Event()
    snapshots = 0
    ready = asyncio.Event()  # every socket has its snapshot: what follows comes as events

    def receiver(node: int) -> Callable[[bytes], None]:
        def on_message(raw: bytes) -> None:
            nonlocal snapshots, twice
            now = time.perf_counter()
            message = json.loads(raw)
            kind = message["type"]
            if kind == "snapshot":
                snapshots += 1
                if snapshots == everyone:
                    ready.set()
                return
            data = message["data"]
            if kind == "trade_executed":
                ids = [data["tradeId"]]
            elif kind == "order_update":
                ids = [data["orderId"]]
            elif kind == "batch":
                ids = [t["tradeId"] for t in data.get("trades", [])] + [o["orderId"] for o in data.get("orders", [])]
            else:
                return
            for event_id in ids:
                if event_id.startswith("end-"):
                    sentinels.add((message["userId"], node))
                    if len(sentinels) == everyone:
                        all_in.set()
                elif (event_id, node) in arrived:
                    twice += 1
                else:
                    arrived[(event_id, node)] = now
        return on_message

    clients = []

    def on_open(client: Any) -> None:
        client.send_text(SUBSCRIBE)

    for node, port in enumerate(ports):
        for _, cookie in sessions:
            clients.append(await open_client(port, cookie, receiver(node), on_open, lambda c: None))
    await asyncio.wait_for(ready.wait(), 30)
    users = [user for user, _ in sessions]
    batches = make_batches(run, users, events, batch, repeats, invalid)
    sent_at: dict[str, tuple[float, float, int]] = {}  # event id -> (request start, response, node)
    http_seconds = 0.0
    answers_right = True  # every item answered as what it is: accepted, duplicate, or rejected by index
    publishers = [AsyncPublisher(f"http://127.0.0.1:{port}", key, batch_size=batch, retries=0) for port in ports]
    try:
        for number, chunk in enumerate(batches):
            node = number % len(ports)
            began = time.perf_counter()
            result = await publishers[node].publish([item for _, item in chunk])
            answered = time.perf_counter()
            http_seconds += answered - began
            expected = {"new": [i for i, (what, _) in enumerate(chunk) if what == "new"],
                        "repeat": [i for i, (what, _) in enumerate(chunk) if what == "repeat"],
                        "rejected": [(i, what) for i, (what, _) in enumerate(chunk) if what not in ("new", "repeat")]}
            answers_right &= (sorted(r["index"] for r in result.accepted) == expected["new"]
                              and sorted(r["index"] for r in result.duplicates) == expected["repeat"]
                              and sorted((r["index"], r["field"]) for r in result.rejected) == expected["rejected"])
            for what, item in chunk:
                if what == "new":
                    sent_at[item["id"]] = (began, answered, node)
        # The last word to every user: once each socket has it, each user's earlier events are in
        # (a user's events arrive in offset order), and any repeat would have shown.
        end = [{"type": "trade", "userId": user, "id": f"end-{run}-{user}",
                "data": {"tradeId": f"end-{run}-{user}", "symbol": "NVDA", "side": "buy", "quantity": "1",
                         "price": "520.50", "executedAt": "2026-01-05T15:30:00Z"}} for user in users]
        await publishers[0].publish(end)
    finally:
        for publisher in publishers:
            await publisher.close()
    await asyncio.wait_for(all_in.wait(), 60)
    for client in clients:
        client.close()
    latency: dict[str, list[float]] = {"order": [], "trade": [], "same node": [], "other node": []}
    from_start: list[float] = []
    for (event_id, node), at in arrived.items():
        began, answered, answering = sent_at[event_id]
        after = (at - answered) * 1000
        latency["trade" if int(event_id.rsplit("-", 1)[1]) % 2 else "order"].append(after)
        latency["same node" if node == answering else "other node"].append(after)
        from_start.append((at - began) * 1000)
    after_response = latency["order"] + latency["trade"]
    report = {
        "events": events, "batch": batch, "requests": len(batches), "users": len(sessions), "nodes": len(ports),
        "accepted_per_second": round(events / http_seconds),
        "ms_after_response": spread(after_response),
        "ms_after_response_orders": spread(latency["order"]),
        "ms_after_response_trades": spread(latency["trade"]),
        "ms_after_request_start": spread(from_start),
        "repeats_sent": sum(1 for chunk in batches for what, _ in chunk if what == "repeat"),
        "invalid_sent": sum(1 for chunk in batches for what, _ in chunk if what not in ("new", "repeat")),
        "answers_right": answers_right,
        "delivered_once": len(arrived) == events * len(ports) and twice == 0,
    }
    if len(ports) > 1:
        report["ms_after_response_same_node"] = spread(latency["same node"])
        report["ms_after_response_other_node"] = spread(latency["other node"])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cluster", type=int, default=0, metavar="NODES",
                        help="NODES serve processes on one redis-server (cluster mode); each user has a socket "
                             "on every node, batches go to the nodes in turn")
    parser.add_argument("--repeats", type=int, default=10,
                        help="items of the previous request re-sent (same ids) in each request")
    parser.add_argument("--invalid", type=int, default=10, help="broken items in each request")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory() as folder:
        database = str(Path(folder) / "bench.sqlite3")
        sessions = make_users_and_sessions(database, args.users)
        store = ApiKeyStore(database)
        key = store.add("bench", ["publish"])[1]
        store.close()
        redis_server = RedisServer(Path(folder) / "redis").start() if args.cluster else None
        servers = []
        for node in range(args.cluster or 1):
            port = free_port()
            # Slots are counted cluster-wide; a run's closed sockets may hold theirs a moment into the next.
            env = ({"PORTFOLIO_WS_CLUSTER_REDIS_URL": redis_server.url, "PORTFOLIO_WS_CLUSTER_NODE_ID": f"node-{node}",
                    "PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS": str(args.users * 4 * args.cluster)}
                   if redis_server is not None else {})
            servers.append(Server(serve_command(port, database, "publish"), port,
                                  Path(folder) / f"server-{node}.log", env=env))
        try:
            for server in servers:
                server.start()
            ports = [server.port for server in servers]
            runs = []
            for run in range(args.runs):
                load = os.getloadavg()[0]
                runs.append({**asyncio.run(one_run(ports, key, sessions, args.events, args.batch, run, args.repeats,
                                                   args.invalid)),
                             "load_average": [round(load, 2), round(os.getloadavg()[0], 2)]})
        finally:
            for server in servers:
                server.stop()
            if redis_server is not None:
                redis_server.stop()
    figures = ["accepted_per_second"] + [f"{name}.{p}" for name in
                                          ("ms_after_response", "ms_after_response_orders", "ms_after_response_trades",
                                           "ms_after_request_start") for p in ("p50", "p99", "max")]
    if args.cluster > 1:
        figures += [f"{name}.{p}" for name in ("ms_after_response_same_node", "ms_after_response_other_node")
                    for p in ("p50", "p99")]

    def value(run: dict[str, Any], figure: str) -> float:
        name, _, part = figure.partition(".")
        return run[name][part] if part else run[name]

    report = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "runs": runs,
        "median": {figure: statistics.median(value(run, figure) for run in runs) for figure in figures},
        "every_run_right": all(run["answers_right"] and run["delivered_once"] for run in runs),
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()
