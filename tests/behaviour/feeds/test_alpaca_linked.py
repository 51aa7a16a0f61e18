"""Linked accounts (``portfolio-ws accounts link``) in a running Alpaca feed: alpaca-py against the
local Alpaca, the linked accounts in a real SQLite file read by the feed's watcher. A link starts the
user's stream without a restart, an unlink stops it, an OAuth token works as the credential, a bad
or undecryptable account is degraded health beside the ones that stream, and no secret is logged."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest

from portfolio_ws.auth.linked import LinkedAccountStore, new_key
from portfolio_ws.core.events import AccountUpdate, TradeExecuted
from portfolio_ws.feeds.alpaca.linked import LinkedAccounts
from tests.behaviour.feeds.alpaca_env import USERS, alpaca_env
from tests.postgres_server import PostgresServer, postgres_server  # noqa: F401  (a fixture)

POLL = 0.05  # seconds between the watcher's reads: tests await what it does, never the interval
TOKEN = "oauth-token-of-carol-do-not-log"


def _trade_of(user: str) -> Any:
    return lambda e: isinstance(e, TradeExecuted) and e.user_id == user


def _watcher(tmp_path: Path, key: str) -> tuple[LinkedAccounts, LinkedAccountStore]:
    db = str(tmp_path / "users.sqlite3")
    return LinkedAccounts(LinkedAccountStore(db, key), POLL), LinkedAccountStore(db, key)


async def _connected(env: Any, user: str) -> None:
    env.users[user] = USERS[user]  # a linked user is one of the env's users (its isolation check)
    await env.server.trading_listening(env.key(user))
    await env.events.first(0, lambda e: isinstance(e, AccountUpdate) and e.user_id == user, f"{user}'s account")


async def test_a_linked_account_streams_without_a_restart_and_stops_when_unlinked(io_loop, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    watcher, cli = _watcher(tmp_path, new_key())
    async with alpaca_env(users=["alice"], linked=watcher) as env:
        await _connected(env, "alice")  # the environment mapping streams as before
        cli.link("bob", "keys", *USERS["bob"], paper=True)
        await _connected(env, "bob")
        mark = env.events.mark()
        env.server.trade(env.key("bob"), "NVDA", "buy", "2", "521")
        trade = await env.events.first(mark, _trade_of("bob"), "bob's trade")
        assert str(trade.price) == "521" and trade.symbol == "NVDA"

        assert cli.unlink("bob")
        await env.server.wait_for(lambda: not any(c.key == env.key("bob") for c in env.server.trading_conns),
                                  what="bob's stream closed")
        assert "bob" not in env.feed.health().details["accounts"]
        mark = env.events.mark()
        env.server.trade(env.key("bob"), "NVDA", "buy", "1", "522")  # nobody listens for bob now
        env.server.trade(env.key("alice"), "AAPL", "buy", "1", "156")
        await env.events.first(mark, _trade_of("alice"), "alice's trade")
        assert not env.events.since(mark, "bob")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert USERS["bob"][1] not in logged and "linked account started" in logged
    cli.close()


async def test_an_oauth_token_streams_and_syncs_with_bearer_auth(io_loop, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    watcher, cli = _watcher(tmp_path, new_key())
    async with alpaca_env(users=["alice"], linked=watcher,
                          before_start=lambda s: s.add_oauth_token(TOKEN, USERS["carol"][0])) as env:
        cli.link("carol", "oauth", "", TOKEN, paper=True)
        env.users["carol"] = USERS["carol"]
        await env.server.trading_listening(USERS["carol"][0])
        await env.server.rest_called(USERS["carol"][0], "/v2/positions", 1)  # REST by Bearer token
        carol = await env.events.first(0, lambda e: getattr(e, "user_id", "") == "carol"
                                       and getattr(e, "symbol", "") == "MSFT", "carol's MSFT position")
        assert str(carol.quantity) == "20"
        mark = env.events.mark()
        env.server.trade(USERS["carol"][0], "MSFT", "sell", "5", "311")
        trade = await env.events.first(mark, _trade_of("carol"), "carol's trade")
        assert trade.side == "sell"
        health = env.feed.health()
        assert health.details["accounts"]["carol"]["credentials"] == "oauth"
        assert health.details["data"]["keysOf"] == "alice"  # the data stream takes key pairs only
    assert TOKEN not in "\n".join(r.getMessage() for r in caplog.records)
    cli.close()


async def test_one_bad_linked_account_among_good_ones_is_degraded_not_offline(io_loop, tmp_path):
    watcher, cli = _watcher(tmp_path, new_key())
    async with alpaca_env(users=["alice"], linked=watcher) as env:
        cli.link("bob", "keys", USERS["bob"][0], "not-bobs-secret", paper=True)
        cli.link("carol", "keys", *USERS["carol"], paper=True)
        await _connected(env, "carol")
        health = await env.health_until(lambda h: h.connected and "bob" in (h.impaired or ""), "degraded by bob")
        assert health.details["accounts"]["bob"]["trading"]["error"] and health.impaired.startswith("1 of 3")
        assert "not-bobs-secret" not in repr(health)
    cli.close()


@pytest.mark.parametrize("server_key", ["", "other"])
async def test_a_server_without_the_right_key_shows_the_account_and_keeps_streaming(io_loop, tmp_path, server_key):
    db = str(tmp_path / "users.sqlite3")
    LinkedAccountStore(db, new_key()).link("bob", "keys", *USERS["bob"], paper=True)
    watcher = LinkedAccounts(LinkedAccountStore(db, new_key() if server_key else ""), POLL)
    async with alpaca_env(users=["alice"], linked=watcher) as env:
        await _connected(env, "alice")
        health = await env.health_until(lambda h: h.connected and "bob" in (h.impaired or ""), "degraded by bob")
        error = health.details["accounts"]["bob"]["trading"]["error"]
        assert ("cannot decrypt" if server_key else "PORTFOLIO_WS_ACCOUNTS_KEY") in error
        assert not env.server.trading_listens[USERS["bob"][0]]


async def test_a_user_mapped_in_the_config_keeps_that_mapping(io_loop, tmp_path):
    watcher, cli = _watcher(tmp_path, new_key())
    async with alpaca_env(users=["alice"], linked=watcher) as env:
        await _connected(env, "alice")
        cli.link("alice", "keys", *USERS["bob"], paper=True)
        polls = watcher.polls
        await env.health_until(lambda h: watcher.polls > polls + 1, "two more polls")
        assert env.feed.health().details["accounts"]["alice"]["linked"] is False
        assert not env.server.trading_listens[USERS["bob"][0]]
    cli.close()


async def test_on_postgresql_a_dropped_connection_is_shown_and_the_next_link_still_starts(
        io_loop, postgres_server: PostgresServer) -> None:
    url, key = postgres_server.fresh_database(), new_key()
    cli = LinkedAccountStore(url, key)
    watcher = LinkedAccounts(LinkedAccountStore(url, key), POLL)
    async with alpaca_env(users=["alice"], linked=watcher) as env:
        cli.link("bob", "keys", *USERS["bob"], paper=True)
        await _connected(env, "bob")
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:  # as a PostgreSQL restart would
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                          (url.rsplit("/", 1)[1],))
        await env.health_until(lambda h: h.details["linked"]["error"], "the lost connection shown")
        assert env.server.trading_listens[USERS["bob"][0]] == 1  # bob's stream is not touched
        cli.reopen()
        cli.link("carol", "keys", *USERS["carol"], paper=True)
        await _connected(env, "carol")  # the watcher reconnected by itself
        assert env.feed.health().details["linked"]["error"] is None
    cli.close()


async def test_a_feed_restarted_like_a_leader_that_got_its_lock_back_streams_and_syncs_again(io_loop, tmp_path):
    watcher, cli = _watcher(tmp_path, new_key())
    async with alpaca_env(users=["alice"], linked=watcher) as env:
        cli.link("bob", "keys", *USERS["bob"], paper=True)
        await _connected(env, "bob")
        await env.feed.stop()
        syncs = {user: env.server.rest_calls[(USERS[user][0], "/v2/account")] for user in ("alice", "bob")}
        await env.feed.start(env.bus)
        for user in ("alice", "bob"):  # mapped and linked: each listens and syncs over REST again
            await env.server.trading_listening(USERS[user][0], 2)
            await env.server.rest_called(USERS[user][0], "/v2/account", syncs[user] + 1)
        mark = env.events.mark()
        env.server.trade(USERS["bob"][0], "NVDA", "buy", "1", "530")
        await env.events.first(mark, _trade_of("bob"), "bob's trade after the restart")
    cli.close()
