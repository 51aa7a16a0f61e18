"""A sync in the core: the body's rules (all or nothing, every error with its path), its encoding
between processes, and what the engine does with one (a new offset, the state replaced, the recovery emptied, a snapshot to every
subscribed connection of the user and to no one else)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import ujson

from portfolio_ws.core import wire
from portfolio_ws.core.codec import decode, sync_to_dict, to_dict
from portfolio_ws.core.events import Event
from portfolio_ws.core.ingest import ItemError
from portfolio_ws.core.portfolio import PortfolioState
from portfolio_ws.core.sync import Sync, parse_sync
from portfolio_ws.errors import InvalidEvent
from tests.builders import NOW, T0, account, later, order, position, trade
from tests.unit.portfolio_ws.core.driver import connect, drain, make_core, publish, send

ALL = ["positions", "orders", "account", "trades"]


def data(event: Event) -> dict[str, Any]:
    return wire.payload(event)


def body(*, positions: list[Event] = (), orders: list[Event] = (), acc: Event | None = None,  # type: ignore[assignment]
         trades: list[Event] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"account": data(acc) if acc else None, "positions": [data(p) for p in positions],
                           "orders": [data(o) for o in orders]}
    if trades is not None:
        out["trades"] = [data(t) for t in trades]
    return out


def sync_of(user: str, **parts: Any) -> Sync:
    parsed = parse_sync(user, body(**parts))
    assert isinstance(parsed, Sync), parsed
    return parsed


def test_a_valid_body_is_the_events_that_build_the_state_in_order() -> None:
    sync = sync_of("u1", positions=[position(symbol="MSFT"), position()], orders=[order()], acc=account())
    assert [type(e).__name__ for e in sync.events] == ["AccountUpdate", "OrderUpdate", "PositionUpdate",
                                                       "PositionUpdate"]
    assert sync.keep_trades and sync.counts() == {"positions": 2, "orders": 1, "trades": 0}
    assert sync_of("u1", trades=[trade()]).keep_trades is False


def test_every_error_names_its_path_and_nothing_is_returned_to_apply() -> None:
    bad = body(positions=[position(), position(symbol="MSFT"), position(symbol="AAPL")], orders=[order()])
    bad["positions"][1]["quantity"] = 5  # a JSON number: not a decimal string
    bad["positions"][0]["side"] = "sideways"
    bad["orders"][0]["colour"] = "red"
    bad["extra"] = 1
    del bad["account"]
    errors = parse_sync("u1", bad)
    assert isinstance(errors, list) and all(isinstance(e, ItemError) and e.message for e in errors)
    assert [e.field for e in errors] == ["extra", "account", "orders[0].colour", "positions[0].side",
                                         "positions[1].quantity", "positions[2].symbol"]
    assert "twice" in errors[-1].message
    assert [e.field for e in parse_sync("u1", [])] == [""]  # type: ignore[union-attr]
    wrong = parse_sync("u1", {"account": 1, "positions": {}, "orders": ["x"], "trades": [{}] * 101})
    assert [e.field for e in wrong] == ["account", "orders[0]", "positions", "trades"]  # type: ignore[union-attr]


def test_a_sync_replaces_the_state_and_sends_every_subscribed_socket_a_snapshot_at_its_offset() -> None:
    core = make_core()
    a = connect(core, "u1", *ALL)
    b = connect(core, "u1", "positions")
    idle = connect(core, "u1")  # subscribed to nothing: its snapshot comes on subscribe
    other = connect(core, "u2", *ALL)
    drain(core)
    publish(core, position(symbol="OLD"), order(order_id="gone"), trade())
    drain(core)
    seq = core.receive_sync(sync_of("u1", positions=[position(symbol="NEW", qty="3")], acc=account()), NOW)
    assert seq == 4
    sent = drain(core)
    [snap_a], [snap_b] = sent.to(a), sent.to(b)
    assert snap_a["type"] == snap_b["type"] == "snapshot" and snap_a["seq"] == snap_b["seq"] == 4
    assert [p["symbol"] for p in snap_a["data"]["positions"]] == ["NEW"] and snap_a["data"]["orders"] == []
    assert [t["tradeId"] for t in snap_a["data"]["trades"]] == ["trade-1"]  # no trades part: kept
    assert snap_a["data"]["account"]["equity"] == "104308.75"
    assert set(snap_b["data"]) == {"positions"}
    assert sent.to(idle) == [] and sent.to(other) == []
    assert core.portfolio("u1") == (4, {**snap_a["data"]})
    core.receive_sync(sync_of("u1", trades=[]), NOW)
    assert core.portfolio("u1")[1]["trades"] == [] and core.portfolio("u1")[0] == 5


def test_a_window_pending_before_the_sync_is_dropped_and_later_events_follow_it() -> None:
    core = make_core(streaming={"batch_window_ms": 1000})
    conn = connect(core, "u1", *ALL)
    drain(core)
    publish(core, position(symbol="OLD"))  # pending in the window
    core.receive_sync(sync_of("u1", positions=[position(symbol="NEW")]), NOW)
    publish(core, position(symbol="NEWER"))
    core.flush(NOW + 1)
    sent = drain(core)
    assert sent.types(conn) == ["snapshot", "position_update"]
    assert [m["seq"] for m in sent.to(conn)] == [2, 3] and sent.to(conn)[1]["data"]["symbol"] == "NEWER"


def test_a_resume_from_before_the_sync_gets_a_snapshot_and_one_from_after_it_the_events() -> None:
    core = make_core()
    publish(core, position(symbol="OLD"), position(symbol="OLD2"))
    core.receive_sync(sync_of("u1", positions=[position(symbol="NEW")]), NOW)  # offset 3
    publish(core, position(symbol="NEWER"))  # 4
    before = connect(core, "u1")
    sent = send(core, before, {"type": "subscribe", "channels": ["positions"], "resumeFrom": 1})
    resumed = sent.to(before)[1]
    assert resumed["data"]["code"] == "RESUMED" and resumed["data"]["details"]["recovered"] is False
    assert sent.types(before)[-1] == "snapshot"
    assert [p["symbol"] for p in sent.to(before)[-1]["data"]["positions"]] == ["NEW", "NEWER"]
    for start in (2,):  # just before the sync: still a snapshot
        conn = connect(core, "u1")
        assert send(core, conn, {"type": "subscribe", "channels": ["positions"],
                                 "resumeFrom": start}).types(conn)[-1] == "snapshot"
    after = connect(core, "u1")
    sent = send(core, after, {"type": "subscribe", "channels": ["positions"], "resumeFrom": 3})
    assert sent.types(after) == ["info", "position_update", "info"]
    assert sent.to(after)[2]["data"]["details"]["recovered"] is True


def test_a_stale_sync_is_dropped_and_one_during_a_load_waits_for_it() -> None:
    core = make_core()
    publish(core, position(symbol="A"))
    assert core.receive_sync(sync_of("u1"), NOW, seq=1) == 1  # at or below the offset: a stale delivery
    assert [p["symbol"] for p in core.portfolio("u1")[1]["positions"]] == ["A"]
    core.begin_load("u2")
    core.receive_sync(sync_of("u2", positions=[position("u2", symbol="S")]), NOW, seq=12)
    core.finish_load("u2", None, later(1).timestamp())
    assert core.portfolio("u2")[0] == 12
    assert [p["symbol"] for p in core.portfolio("u2")[1]["positions"]] == ["S"]


def test_a_sync_travels_between_processes_exactly() -> None:
    sync = sync_of("u1", positions=[position(qty="1.50")], orders=[order()], acc=account(), trades=[trade()])
    assert decode(ujson.loads(ujson.dumps(sync_to_dict(sync)))) == sync
    assert decode(to_dict(trade())) == trade()  # an event still decodes as itself
    for broken in ({"sync": "u1", "events": "x", "keepTrades": True},
                   {"sync": "u1", "events": [to_dict(trade("u2"))], "keepTrades": False}):
        with pytest.raises(InvalidEvent):
            decode(broken)


def test_the_counts_are_what_the_sync_leaves_held() -> None:
    """A position of quantity 0 is a close and an order that ended on an earlier day is not held:
    the answer said ``positions: 1`` for a sync that left none (a new user's trial)."""
    yesterday = T0 - timedelta(days=1)
    ended = order(order_id="old", status="filled", filled="50", avg="175.50", at=yesterday)
    sync = sync_of("u1", positions=[position(qty="0"), position(symbol="MSFT")],
                   orders=[order(), ended], acc=account(), trades=[trade(), trade(trade_id="t-old", at=yesterday)])
    held = sync.state(PortfolioState())
    assert sync.counts() == {"positions": len(held.positions), "orders": len(held.orders),
                             "trades": len(held.trades)} == {"positions": 1, "orders": 1, "trades": 1}
    assert sync_of("u1", positions=[position(qty="0")]).counts()["positions"] == 0


@pytest.mark.parametrize("part,value", [("positions", None), ("orders", None), ("trades", None), ("account", []),
                                        ("account", "none"), ("positions", {}), ("orders", "[]"), ("trades", 0)])
def test_each_part_has_its_one_shape_and_null_is_never_read_as_none(part: str, value: Any) -> None:
    errors = parse_sync("u1", {**body(positions=[position()]), part: value})
    assert isinstance(errors, list) and [e.field for e in errors] == [part], errors
    assert ("[]" if part != "account" else "null") in errors[0].message


@pytest.mark.parametrize("part", ["account", "positions", "orders"])
def test_a_missing_part_says_what_to_send_for_none(part: str) -> None:
    whole = body()
    del whole[part]
    [error] = parse_sync("u1", whole)  # type: ignore[misc]
    assert error.field == part and error.message.startswith("is required: ")
    assert ("null" if part == "account" else "[]") in error.message


def test_kept_trades_are_those_of_the_syncs_trading_day() -> None:
    """Documented (integration.md section 8, "Trading days"): left out, the trades held are kept
    unless the sync starts a later trading day, as any event of that day would drop them."""
    held = PortfolioState()
    held.apply(trade())
    same_day = sync_of("u1", acc=account()).state(held)
    assert [t.trade_id for t in same_day.trades] == ["trade-1"]
    next_day = sync_of("u1", acc=account(at=T0 + timedelta(days=1))).state(held)
    assert list(next_day.trades) == []
