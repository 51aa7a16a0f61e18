"""The local portfolio kept from events: updates, closes, snapshots replacing, channels dropped."""

from __future__ import annotations

from portfolio_ws import constants as c
from portfolio_ws.client.events import Connected, Resumed, Snapshot, decode
from portfolio_ws.client.state import Portfolio
from portfolio_ws.core import wire
from tests.builders import T0, account, order, position, trade

U = "user-1"


def ev(event, seq):
    [decoded] = decode(wire.message(event.TYPE, U, wire.payload(event), T0.timestamp(), seq))
    return decoded


def snap(seq, positions=(), orders=(), acct=None, trades=(), channels=c.CHANNELS):
    return Snapshot(seq, frozenset(channels), tuple(positions), tuple(orders), acct, tuple(trades))


def test_events_update_the_state_and_seq_follows_the_last_applied():
    p = Portfolio()
    assert p.seq is None
    p.apply(ev(position(U, "AAPL", "100"), 1))
    p.apply(ev(position(U, "AAPL", "120"), 2))
    p.apply(ev(order(U, "o1", "new"), 3))
    p.apply(ev(order(U, "o1", "filled", filled="50"), 4))
    p.apply(ev(account(U, "1000.00"), 5))
    p.apply(ev(trade(U, "t1"), 6))
    assert p.positions["AAPL"].quantity == 120 and p.orders["o1"].status == "filled"
    assert p.open_orders == [] and p.account is not None and p.account.equity == 1000
    assert [t.trade_id for t in p.trades] == ["t1"] and p.seq == 6


def test_a_closed_position_leaves_and_control_events_change_nothing():
    p = Portfolio()
    p.apply(ev(position(U, "TSLA", "5"), 1))
    p.apply(ev(position(U, "TSLA", "0"), 2))
    assert p.positions == {} and p.seq == 2
    assert not p.apply(Connected("conn-1", (), 1000, {}))
    assert p.seq == 2


def test_a_snapshot_replaces_only_the_channels_it_holds():
    p = Portfolio()
    p.apply(ev(position(U, "AAPL"), 1))
    p.apply(ev(order(U, "o1"), 2))
    p.apply(ev(trade(U, "t1"), 3))
    msft = ev(position(U, "MSFT"), 9)
    p.apply(snap(9, positions=[msft], channels=["positions", "trades"]))
    assert list(p.positions) == ["MSFT"] and list(p.trades) == [] and list(p.orders) == ["o1"]
    assert p.seq == 9


def test_trades_are_bounded_and_dropping_channels_forgets_them():
    p = Portfolio(max_trades=2)
    for i in range(3):
        p.apply(ev(trade(U, f"t{i}"), i + 1))
    assert [t.trade_id for t in p.trades] == ["t1", "t2"]
    p.apply(ev(account(U), 4))
    p.drop(["trades", "account"])
    assert list(p.trades) == [] and p.account is None and p.seq == 4


def test_a_recovered_resume_moves_seq_to_the_servers_offset_and_an_unrecovered_one_does_not():
    p = Portfolio()
    p.apply(ev(trade(U, "t1"), 3))
    p.apply(Resumed(True, 3, 9))  # events 4..9 were on channels this client doesn't watch
    assert p.seq == 9
    p.apply(Resumed(False, 9, 20))  # the snapshot that follows carries the offset
    assert p.seq == 9
