"""portfolio_ws.publish against a real server: batching, and retries that re-send the same ids, so a
batch whose answer was lost (the server took it) is delivered once. The loss is real: a front
server on its own socket forwards each request and, the first time, answers 503 instead."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from portfolio_ws.publish import AsyncPublisher, Publisher, PublishError
from tests.publishing import new_key, trade_ids, trade_item, watching
from tests.syncing import POSITION, state


class LosingFront(tornado.web.RequestHandler):
    """Forwards to the server; drops the answer of the first ``lose`` requests (503 instead)."""

    def initialize(self, target: str, state: dict[str, int]) -> None:
        self.target, self.state = target, state

    async def post(self) -> None:
        answer = await AsyncHTTPClient().fetch(self.target + self.request.path, method="POST",
                                               headers=self.request.headers, body=self.request.body,
                                               raise_error=False)
        self.state["forwarded"] += 1
        if self.state["lose"] > 0:
            self.state["lose"] -= 1
            self.set_status(503)
            return
        self.set_status(answer.code)
        self.set_header("Content-Type", "application/json")
        self.finish(answer.body)


async def front(server: Any, lose: int) -> tuple[str, dict[str, int], HTTPServer]:
    state = {"lose": lose, "forwarded": 0}
    app = tornado.web.Application([(r"/.*", LosingFront, {"target": server.url, "state": state})])
    [sock] = bind_sockets(0, "127.0.0.1")
    http = HTTPServer(app)
    http.add_sockets([sock])
    return f"http://127.0.0.1:{sock.getsockname()[1]}", state, http


async def test_a_lost_answer_is_retried_with_the_same_ids_and_delivered_once(make_server):
    server = await make_server()
    user_id, client = await watching(server, "alice", "trades")
    url, state, http = await front(server, lose=2)
    events = [trade_item(user_id, "", f"t-{i}") for i in range(5)]
    for event in events:
        del event["id"]  # the publisher gives each one an id before the first attempt
    async with AsyncPublisher(url, new_key(server), batch_size=2, backoff=0.01) as publisher:
        result = await publisher.publish(events)
    http.stop()
    # Batches [0,1] (lost twice: taken, answer lost, then duplicates), [2,3], [4].
    assert state["forwarded"] == 5
    assert [d["index"] for d in result.duplicates] == [0, 1]
    assert [a["index"] for a in result.accepted] == [2, 3, 4] and not result.rejected
    seen: list[str] = []
    while len(seen) < 5:
        message = await client.recv()
        assert message is not None
        seen += trade_ids(message)
    assert seen == [f"t-{i}" for i in range(5)]
    await client.assert_nothing_pending()


async def test_refused_items_come_back_by_their_index_in_what_was_passed(make_server):
    server = await make_server()
    user, _ = await server.user_session("alice")
    events = [trade_item(user.user_id, f"id-{i}", f"t-{i}") for i in range(7)]
    events[5]["data"]["price"] = 1.5
    async with AsyncPublisher(server.url, new_key(server), batch_size=3) as publisher:
        result = await publisher.publish(events)
    assert [r["index"] for r in result.rejected] == [5] and result.rejected[0]["field"] == "data.price"
    assert len(result.accepted) == 6


async def test_the_blocking_publisher_and_a_refused_key(make_server):
    server = await make_server()
    user, _ = await server.user_session("alice")
    key = new_key(server)
    loop = asyncio.get_running_loop()
    sync = Publisher(server.url, key)
    result = await loop.run_in_executor(None, sync.publish, [trade_item(user.user_id, "x", "t-x")])
    assert [a["offset"] for a in result.accepted] == [1]
    with pytest.raises(PublishError) as refused:  # a 401 is not retried: it can't get better
        await loop.run_in_executor(None, Publisher(server.url, key + "x", retries=3).publish,
                                   [trade_item(user.user_id, "y")])
    assert refused.value.status == 401
    with pytest.raises(PublishError) as unreachable:
        await AsyncPublisher("http://127.0.0.1:9", key, retries=1, backoff=0.01).publish(
            [trade_item(user.user_id, "z")])
    assert unreachable.value.status is None and "2 attempts" in str(unreachable.value)


async def test_sync_replaces_the_state_and_a_refused_one_names_every_field(make_server):
    server = await make_server()
    user_id, client = await watching(server, "alice")
    key = new_key(server)
    async with AsyncPublisher(server.url, key) as publisher:
        answer = await publisher.sync(user_id, state())
        assert answer["offset"] == 1 and answer["positions"] == 1 and answer["tradesKept"] is True
        snapshot = await client.expect("snapshot")
        assert snapshot["seq"] == 1 and [p["symbol"] for p in snapshot["data"]["positions"]] == ["AAPL"]
        with pytest.raises(PublishError) as refused:  # a 400 is not retried
            await publisher.sync(user_id, state(positions=[{**POSITION, "quantity": 1}]))
    assert refused.value.status == 400 and "positions[0].quantity" in str(refused.value)
    assert [e["field"] for e in refused.value.errors] == ["positions[0].quantity"]
    blocking = Publisher(server.url, key)
    answer = await asyncio.get_running_loop().run_in_executor(None, blocking.sync, user_id,
                                                              state(positions=[]))
    assert answer["offset"] == 2 and (await client.expect("snapshot"))["data"]["positions"] == []
    await client.assert_nothing_pending()


async def test_decimals_and_aware_times_are_sent_as_the_wire_writes_them(make_server):
    """A Python program holds Decimal and datetime: the publisher sends the wire's strings (no
    exponent, RFC 3339), and a NaN or a naive time is refused before anything is sent."""
    server = await make_server()
    user_id, client = await watching(server, "alice", "trades")
    item = trade_item(user_id, "dec-1", "t-dec")
    item["data"].update(quantity=Decimal("1E+1"), price=Decimal("520.50"),
                        executedAt=datetime(2026, 1, 5, 15, 30, 0, 250000, tzinfo=timezone.utc))
    async with AsyncPublisher(server.url, new_key(server), retries=0) as publisher:
        result = await publisher.publish([item])
        assert len(result.accepted) == 1 and not result.rejected
        message = await client.recv()
        assert message is not None and message["type"] == "trade_executed"
        assert (message["data"]["quantity"], message["data"]["price"]) == ("10", "520.50")
        assert message["data"]["executedAt"].startswith("2026-01-05T15:30:00.25")
        for bad, why in ((Decimal("NaN"), "finite"), (float("inf"), "Out of range"),
                         (datetime(2026, 1, 5, 15, 30), "no time zone")):
            refused = trade_item(user_id, "dec-2", "t-bad")
            refused["data"]["price" if not isinstance(bad, datetime) else "executedAt"] = bad
            with pytest.raises(ValueError, match=why):
                await publisher.publish([refused])
    await client.assert_nothing_pending()
