"""The client's data events hold ``seq`` plus exactly the fields the server sends of each core
event (issue 12: one event schema table). A field added to a ``core.events`` class and sent to
clients, without the client's event class learning it, fails here."""

from __future__ import annotations

from dataclasses import dataclass, fields, make_dataclass, replace
from datetime import datetime
from decimal import Decimal

import pytest

from portfolio_ws.client.events import CORE_EVENT, AccountEvent, OrderEvent, PositionEvent, TradeEvent, from_message
from portfolio_ws.core import wire
from portfolio_ws.core.events import EVENT_TYPES, Field, PositionUpdate, schema
from tests import builders

WIRE_ONLY = {"seq"}  # what the client's data events carry that no core event field holds


def drift(client_cls: type, core_cls: type) -> list[str]:
    """Every way the client's class differs from what the server sends of ``core_cls``."""
    sent = {f.name: f for f in schema(core_cls) if f.sent}
    mine = {f.name: str(f.type) for f in fields(client_cls)}
    problems = [f"client lacks {name}" for name in sent.keys() - mine.keys()]
    problems += [f"client has {name}, the server sends no such field"
                 for name in mine.keys() - sent.keys() - WIRE_ONLY]
    problems += [f"{name} missing" for name in WIRE_ONLY - mine.keys()]
    for name in sent.keys() & mine.keys():
        f = sent[name]
        if f.kind.__name__ not in mine[name]:
            problems.append(f"{name}: client {mine[name]}, server {f.kind.__name__}")
        if f.optional != ("None" in mine[name]):
            problems.append(f"{name}: optional on one side only")
    return problems


def test_every_core_event_has_a_client_event():
    assert sorted(c.__name__ for c in CORE_EVENT.values()) == sorted(c.__name__ for c in EVENT_TYPES)


@pytest.mark.parametrize("client_cls", [PositionEvent, OrderEvent, AccountEvent, TradeEvent],
                         ids=lambda c: c.__name__)
def test_the_client_event_holds_seq_and_exactly_the_fields_the_server_sends(client_cls):
    assert drift(client_cls, CORE_EVENT[client_cls]) == []


def test_a_field_added_in_the_core_only_is_caught():
    grown = make_dataclass("PositionUpdate", [("realized_pnl", "Decimal | None", None)], bases=(PositionUpdate,),
                           frozen=True)
    assert drift(PositionEvent, grown) == ["client lacks realized_pnl"]


def test_a_field_the_client_invents_is_caught():
    @dataclass(frozen=True)
    class Grown(PositionEvent):
        realized_pnl: Decimal | None = None

    assert drift(Grown, PositionUpdate) == ["client has realized_pnl, the server sends no such field"]


@pytest.mark.parametrize("event", [replace(builders.position(), unrealized_pnl_percent=Decimal("3.08")), builders.order(status="filled", avg="245.50"),
                                   builders.account(), builders.trade()], ids=lambda e: e.TYPE)
def test_the_wire_payload_has_exactly_the_sent_fields_and_the_client_reads_them_back(event):
    table = schema(type(event))
    payload = wire.payload(event)
    assert set(payload) == {f.wire for f in table if f.sent}
    [decoded] = from_message({"type": event.TYPE, "seq": 42, "data": payload})
    assert decoded.seq == 42
    for f in table:
        if not f.sent:
            continue
        assert getattr(decoded, f.name) == getattr(event, f.name), f.name


def test_the_table_names_kinds_and_wire_names():
    by_name = {f.name: f for f in schema(PositionUpdate)}
    assert by_name["unrealized_pnl_percent"] == Field("unrealized_pnl_percent", Decimal, False,
                                                      "unrealizedPnlPercent", True)
    assert by_name["opened_at"].kind is datetime and by_name["opened_at"].optional
    assert not by_name["user_id"].sent  # in the envelope, not in data
