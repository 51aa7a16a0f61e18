"""``portfolio-ws watch``: a real ``python -m cli watch`` process against a real server.

Lines are awaited as the process prints them (no sleeps); Ctrl-C is a real SIGINT.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner

import cli
from portfolio_ws import constants as c
from portfolio_ws.client import (AccountEvent, Connected, OrderEvent, PositionEvent, Resumed, ServerError, Snapshot,
                                 StatusChange, TradeEvent)
from portfolio_ws.commands import watch
from tests.builders import T0, order, position, trade
from tests.harness import PASSWORD
from tests.process.commands.watching import Watch

LONG_WINDOW = 600_000


@pytest.fixture
def running(io_loop: Any) -> Any:
    procs: list[Watch] = []

    async def start(*args: Any, **kwargs: Any) -> Watch:
        w = await Watch.start(*args, **kwargs)
        procs.append(w)
        return w

    yield start
    for w in procs:
        if w.proc.returncode is None:
            w.proc.kill()
            io_loop.run_sync(w.proc.wait)


# ---- against a server ----------------------------------------------------------------------
@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_prints_the_snapshot_and_live_events_one_line_each_and_ctrl_c_exits_cleanly(
        make_server, running, tmp_path):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    alice = server.add_user("alice")
    server.publish(position(alice.user_id, "AAPL", "100", "175.50"))
    w = await running(server, "--user", "alice", cwd=tmp_path)
    assert re.fullmatch(r"TIME +SEQ +EVENT +SYMBOL +DETAILS", await w.stdout("TIME"))
    assert re.search(r" 1  snapshot +1 positions, 0 orders, no account yet, 0 trades today$",
                     await w.stdout("snapshot"))
    row = await w.stdout("position")
    assert re.fullmatch(r"\d\d:\d\d:\d\d +1  position  AAPL +long 100 @ 175.50  entry 170.25  "
                        r"P&L \+525.00 \(\+3.08%\)  value 17550.00", row)
    await w.stderr("^-- connected \\(conn-1\\)$")

    server.publish(order(alice.user_id, "order-1", "accepted"))
    assert re.search(r" 2  order +TSLA +order-1 buy limit 50 accepted  limit 246.00$", await w.stdout("order"))
    server.publish(trade(alice.user_id, "trade-1"))
    assert re.search(r" 3  trade +NVDA +sell 25 @ 520.50  P&L \+1250.00$", await w.stdout("trade"))

    w.interrupt()
    status, out, err = await w.finish()
    assert status == 0 and out == [] and not any("Traceback" in line for line in err), err


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_channels_limit_what_is_watched(make_server, running, tmp_path):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    alice = server.add_user("alice")
    w = await running(server, "--user", "alice", "--channels", "orders,account", cwd=tmp_path)
    assert re.search(r"snapshot +0 orders, no account yet$", await w.stdout("snapshot"))
    server.publish(position(alice.user_id, "AAPL"))   # not watched
    server.publish(order(alice.user_id, "order-1"))   # flushes the window: only the order comes
    await w.stdout(" order ")
    w.interrupt()
    status, out, _ = await w.finish()
    assert status == 0 and not [line for line in w.out + out if "position" in line]


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_password_from_stdin(make_server, running, tmp_path):
    server = await make_server()
    server.add_user("alice")
    w = await running(server, "--user", "alice", "--password-stdin", password="not this one",
                      stdin=PASSWORD + "\n", cwd=tmp_path)
    await w.stdout("snapshot")
    w.interrupt()
    assert (await w.finish())[0] == 0


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_bad_credentials_are_one_line_and_exit_1(make_server, running, tmp_path):
    server = await make_server()
    server.add_user("alice")
    w = await running(server, "--user", "alice", password="wrong password", cwd=tmp_path)
    status, out, err = await w.finish()
    assert (status, out, err) == (1, [], ["Error: login failed: Invalid username or password"])


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_an_unreachable_server_is_one_line_and_exit_1(make_server, running, tmp_path):
    server = await make_server()
    server.http.stop()
    await server.http.close_all_connections()
    w = await running(server, "--user", "alice", cwd=tmp_path)
    status, out, err = await w.finish()
    assert status == 1 and out == [] and len(err) == 1 and err[0].startswith("Error: cannot reach http://127.0.0.1:")


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
async def test_it_reconnects_after_1001_and_stops_with_one_line_on_logout(make_server, running, tmp_path):
    server = await make_server(streaming__batch_window_ms=LONG_WINDOW)
    alice = server.add_user("alice")
    w = await running(server, "--user", "alice", cwd=tmp_path)
    await w.stdout("snapshot")
    [conn_id] = server.connection_ids()
    server.close_connection(conn_id, c.SERVER_SHUTTING_DOWN)
    server.publish(order(alice.user_id, "order-1"))  # while it is away: replayed on resume
    await w.stderr(r"^-- disconnected \(1001 Server shutting down\); reconnecting in \d\.\d s$")
    await w.stderr(r"^-- connected \(conn-2\)$")
    assert re.search(r" 1  order +TSLA +order-1 ", await w.stdout("order"))
    await w.stderr(r"^-- resumed after seq 0, nothing lost$")

    [session] = {conn.session_id for conn in server.service.core.hub.connections.values()}
    await server.fetch("/api/auth/logout", "POST", cookie=session)
    status, _, err = await w.finish()
    assert status == 1 and err == ["Error: your session has ended (1008 Session expired): run the command again to log in again"]


# ---- without a server ----------------------------------------------------------------------
def test_an_unknown_channel_is_a_usage_error():
    result = CliRunner().invoke(cli.main, ["watch", "--user", "alice", "--channels", "orders,nope"])
    assert result.exit_code == 2 and "'nope' is not a channel" in result.output


def test_rows_for_each_event_type():
    T = "12:00:00"
    pos = PositionEvent(7, "SNDL", Decimal("1500"), Decimal("0.4567"), Decimal("0.5123"), Decimal("-83.40"),
                        Decimal("-10.85"), Decimal("685.05"), "long", None, None)
    assert watch.event_line(pos, T) == (f"{T}              7  position  SNDL    long 1500 @ 0.4567  entry 0.5123  "
                                        "P&L -83.40 (-10.85%)  value 685.05")
    closed = PositionEvent(8, "TSLA", Decimal(0), Decimal("241.00"), Decimal("250.00"), Decimal("0.00"),
                           Decimal("0.00"), Decimal("0.00"), "short", None, None)
    assert watch.event_line(closed, T).endswith("position  TSLA    closed @ 241.00")
    filled = OrderEvent(9, "order-2", None, "AAPL", "sell", "stop_limit", "partially_filled", Decimal(100),
                        Decimal(40), Decimal("167.90"), Decimal("167.50"), Decimal("168.00"), T0, None)
    assert watch.event_line(filled, T).endswith(
        "order     AAPL    order-2 sell stop_limit 100 partially_filled  limit 167.50  stop 168.00  filled 40 @ 167.90")
    acct = AccountEvent(10, Decimal("104363.75"), Decimal("208727.50"), Decimal("50000.00"), Decimal("104363.75"),
                        Decimal("0.00"), Decimal("0.00"), T0)
    assert watch.event_line(acct, T).endswith(
        "account           equity 104363.75  cash 50000.00  buying power 208727.50  day P&L 0.00 (0.00%)")
    buy = TradeEvent(11, "t-1", "NVDA", "buy", Decimal(25), Decimal("520.50"), None, T0, None)
    assert watch.event_line(buy, T).endswith("trade     NVDA    buy 25 @ 520.50")
    snap = Snapshot(12, frozenset(c.CHANNELS), (pos,), (), acct, (buy,))
    lines = watch.snapshot_lines(snap, T)
    assert lines[0].endswith("snapshot          1 positions, 0 orders, account, 1 trades today") and len(lines) == 4


def test_connection_news_goes_to_stderr_lines():
    assert watch.lines_for(Connected("conn-4", c.CHANNELS, 1000, {}), "T") == ([], ["-- connected (conn-4)"])
    assert watch.status_line(StatusChange("reconnecting", 1013, "Slow consumer", 5.25)) == (
        "-- disconnected (1013 Slow consumer); reconnecting in 5.2 s")
    assert watch.status_line(StatusChange("polling", 1013, "Realtime streaming disabled", 30.0)) == (
        "-- streaming unavailable (1013 Realtime streaming disabled); polling the portfolio, retrying in 30 s")
    assert watch.status_line(Resumed(False, 8, 20)) == (
        "-- events after seq 8 are no longer held: a fresh snapshot follows")
    assert watch.status_line(ServerError("RATE_LIMITED", "Too many", {})) == "-- server error RATE_LIMITED: Too many"
    assert watch.status_line(StatusChange("closed", 1000, "Client closed")) is None


def test_help_explains_the_seq_column():
    result = CliRunner().invoke(cli.main, ["watch", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "13 digits" in text and "start time in milliseconds" in text and "resumeFrom" in text
    assert len(watch.HEADER.split("SEQ")[0]) + len("SEQ") == len("HH:MM:SS  ") + watch.SEQ_WIDTH
