"""The Broker API feed on the bus: alpaca-py's BrokerClient (SSE trade events in a thread, REST in
the executor) against the local Alpaca's broker part."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from portfolio_ws.auth.linked import LinkedAccountStore
from portfolio_ws.core.events import AccountUpdate, PositionUpdate, TradeExecuted
from portfolio_ws.feeds import FeedState
from portfolio_ws.feeds.alpaca.linked import LinkedAccounts
from portfolio_ws.feeds.alpaca_broker.feed import AlpacaBrokerFeed
from portfolio_ws.feeds.alpaca_broker.linked import BrokerLinkedAccounts
from tests.behaviour.feeds.alpaca_env import alpaca_env, health_until
from tests.behaviour.feeds.broker_env import BROKER_ENV, broker_env, broker_settings

D = Decimal


def _trades(env, user):
    return [e for e in env.events.events if isinstance(e, TradeExecuted) and e.user_id == user]


@pytest.mark.parametrize("events_api", ["v1", "v2"])
async def test_a_fill_on_a_broker_account_reaches_its_user_only(io_loop, events_api):
    async with broker_env(["alice", "bob"], events_api=events_api) as env:
        await env.ready(["alice", "bob"])
        position = await env.events.first(0, lambda e: isinstance(e, PositionUpdate) and e.user_id == "alice")
        assert (position.symbol, position.quantity, position.current_price) == ("AAPL", D(10), D(155))
        mark = env.events.mark()
        fill = env.server.trade(env.key("alice"), "AAPL", "buy", "5", "160.10")
        trade = await env.events.first(mark, lambda e: isinstance(e, TradeExecuted), "alice's trade")
        assert (trade.user_id, trade.trade_id, trade.quantity, trade.price) == (
            "alice", fill["execution_id"], D(5), D("160.10"))
        position = await env.events.first(mark, lambda e: isinstance(e, PositionUpdate) and e.user_id == "alice")
        assert position.quantity == D(15)
        account = await env.events.first(mark, lambda e: isinstance(e, AccountUpdate) and e.user_id == "alice")
        assert account.cash == D("10000") - D("800.50")
        assert {e.user_id for e in env.events.since(mark)} == {"alice"}
        health = env.feed.health()
        assert health.connected and health.source == "alpaca-broker"
        assert health.details["events"]["lastEventId"] is not None
        assert health.details["accounts"]["alice"]["accountId"] == env.account_id("alice")


@pytest.mark.slow
async def test_a_drop_resumes_without_losing_or_repeating_an_event(io_loop):
    async with broker_env(["alice", "bob"]) as env:
        await env.ready(["alice", "bob"])
        env.server.trade(env.key("alice"), "AAPL", "buy", "1", "160")
        await env.events.wait_for(lambda: len(_trades(env, "alice")) == 1, "first trade")
        assert env.server.broker.drop() == 1
        # Made while no connection is open: only a resume from the cursor can deliver them.
        fills = [env.server.trade(env.key(u), "AAPL", "buy", "1", "161") for u in ("alice", "bob", "alice")]
        await env.server.broker.connected(2)
        await env.events.wait_for(lambda: len(_trades(env, "alice")) == 3 and len(_trades(env, "bob")) == 1,
                                  "the trades made during the drop")
        assert env.server.broker.since_ids[1] is not None  # resumed from its cursor
        # The event at the cursor came again (the server replays it inclusive): dropped by id.
        assert env.feed.cursor.duplicates >= 1
        ids = [t.trade_id for t in _trades(env, "alice") + _trades(env, "bob")]
        assert sorted(ids) == sorted({*ids}) and {f["execution_id"] for f in fills} <= set(ids)
        health = await health_until(env.feed, lambda h: h.connected, "connected again")
        assert health.reconnects == 1


async def test_a_malformed_event_is_reported_and_the_rest_keep_flowing(io_loop):
    async with broker_env(["alice", "bob"]) as env:
        await env.ready(["alice", "bob"])
        env.server.broker.send_raw("{not json")
        env.server.broker.send_raw('{"event_id": "01JDX", "account_id": "%s", "event": "fill", "order": {"id": 3}}'
                                   % env.account_id("bob"))
        fill = env.server.trade(env.key("bob"), "NVDA", "sell", "1", "530")
        trade = await env.events.first(0, lambda e: isinstance(e, TradeExecuted), "bob's trade")
        assert trade.trade_id == fill["execution_id"] and trade.user_id == "bob"
        events = env.feed.health().details["events"]
        assert events["rejected"] == 2 and "01JDX" in events["lastRejection"]


async def test_stop_ends_the_events_thread(io_loop):
    async with broker_env(["alice"]) as env:
        await env.ready(["alice"])
        assert env.feed.reader_alive
        await env.feed.stop()
        assert not env.feed.reader_alive
        assert not [t for t in threading.enumerate() if t.name == "alpaca-broker-events"]
        await env.server.wait_for(lambda: not env.server.broker.conns, what="the events connection closed")


async def test_a_linked_broker_account_streams_without_a_restart_and_stops_when_unlinked(io_loop, tmp_path):
    db = str(tmp_path / "users.sqlite3")
    cli = LinkedAccountStore(db)  # no accounts.key: a broker row holds no secret
    async with broker_env(["alice"], linked=BrokerLinkedAccounts(LinkedAccountStore(db), 0.05)) as env:
        await env.ready(["alice"])
        cli.link("bob", "broker", env.account_id("bob"), "", paper=True)
        await env.events.first(0, lambda e: isinstance(e, AccountUpdate) and e.user_id == "bob", "bob's account")
        fill = env.server.trade(env.key("bob"), "NVDA", "buy", "2", "521")
        trade = await env.events.first(0, lambda e: isinstance(e, TradeExecuted) and e.user_id == "bob")
        assert trade.trade_id == fill["execution_id"]
        assert env.feed.health().details["accounts"]["bob"]["linked"] is True

        assert cli.unlink("bob")
        await health_until(env.feed, lambda h: "bob" not in h.details["accounts"], "bob unlinked")
        mark = env.events.mark()
        env.server.trade(env.key("bob"), "NVDA", "buy", "1", "522")  # mapped to no one now
        env.server.trade(env.key("alice"), "AAPL", "buy", "1", "156")
        await env.events.first(mark, lambda e: isinstance(e, TradeExecuted) and e.user_id == "alice")
        assert not env.events.since(mark, "bob") and env.feed.unmapped >= 1
    cli.close()


async def test_the_alpaca_feed_leaves_broker_rows_to_the_broker_feed(io_loop, tmp_path):
    db = str(tmp_path / "users.sqlite3")
    cli = LinkedAccountStore(db)
    cli.link("bob", "broker", "6f2c9b1e-3a4d-4e5f-8a7b-1c2d3e4f5a6b", "", paper=True)
    watcher = LinkedAccounts(LinkedAccountStore(db), 3600)
    async with alpaca_env(users=["alice"]) as env:
        await watcher.poll(env.feed)
        assert watcher.polls == 1 and list(env.feed.health().details["accounts"]) == ["alice"]
    cli.close()


async def test_a_refused_broker_key_is_shown_offline_and_stop_still_ends_the_thread(io_loop, caplog):
    async with broker_env(["alice"]) as env:
        env.server.broker.refused = True
        env.server.broker.drop()  # if the first connection was made before the refusal
        health = await health_until(env.feed, lambda h: h.details["events"]["error"] == "unauthorized (HTTP 401)",
                                    "the refusal")
        assert not health.connected  # the one events stream is down: every account's user is
        await env.feed.stop()  # while the reader waits to retry
        assert not env.feed.reader_alive
        assert not [t for t in threading.enumerate() if t.name == "alpaca-broker-events"]
    text = caplog.text
    assert BROKER_ENV["ALPACA_BROKER_SECRET"] not in text and BROKER_ENV["ALPACA_BROKER_KEY"] not in text


@pytest.mark.slow
async def test_a_silent_stream_is_reconnected_from_its_cursor(io_loop):
    async with broker_env(["alice"], silence_seconds=0.2) as env:
        await env.ready(["alice"])
        env.server.trade(env.key("alice"), "AAPL", "buy", "1", "160")
        await env.events.wait_for(lambda: len(_trades(env, "alice")) == 1, "the trade")
        await env.server.broker.connected(2)  # nothing came for 0.2 s: the reader gave up on it
        assert env.server.broker.since_ids[-1] is not None
        assert len(_trades(env, "alice")) == 1


async def test_a_restarted_feed_resumes_from_its_cursor(io_loop):
    """A cluster's feed leader that lost the lock and got it back: stop, then start again."""
    async with broker_env(["alice"]) as env:
        await env.ready(["alice"])
        env.server.trade(env.key("alice"), "AAPL", "buy", "1", "160")
        await env.events.wait_for(lambda: len(_trades(env, "alice")) == 1, "the first trade")
        await env.feed.stop()
        fill = env.server.trade(env.key("alice"), "AAPL", "buy", "2", "161")  # while stopped
        await env.feed.start(env.bus)
        await env.events.wait_for(lambda: len(_trades(env, "alice")) == 2, "the trade made while stopped")
        assert _trades(env, "alice")[-1].trade_id == fill["execution_id"]
        assert env.server.broker.since_ids[-1] is not None


class KeptState(FeedState):
    """What a cluster's Redis keeps between feed leaders (feeds/leader.py RedisFeedState), in memory."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}

    async def get(self, name: str) -> bytes | None:
        return self.records.get(name)

    async def put(self, name: str, value: bytes) -> None:
        self.records[name] = value


async def test_the_next_feed_leader_resumes_from_the_kept_cursor(io_loop):
    state = KeptState()
    async with broker_env(["alice"]) as env:
        env.feed.keep_state(state, 3600)  # written at stop (and every interval)
        await env.ready(["alice"])
        env.server.trade(env.key("alice"), "AAPL", "buy", "1", "160")
        await env.events.wait_for(lambda: len(_trades(env, "alice")) == 1, "the first trade")
        await env.feed.stop()
        assert state.records["alpaca-broker-cursor"]
        fill = env.server.trade(env.key("alice"), "AAPL", "buy", "2", "161")  # while no node runs the feed
        successor = AlpacaBrokerFeed(broker_settings(env.server, ["alice"]), env=BROKER_ENV)
        successor.keep_state(state, 3600)
        await successor.start(env.bus)
        try:
            await env.events.wait_for(lambda: len(_trades(env, "alice")) == 2, "the trade made in between")
            assert _trades(env, "alice")[-1].trade_id == fill["execution_id"]
        finally:
            await successor.stop()
