"""Order statuses and sides live in ``constants`` as str-Enums (issue 12: one home per fact). The
dashboard's JavaScript, its CSS and the JS client's types cannot import Python, so they are read
here and compared with the enums: a status added, renamed or reopened on one side only fails."""

from __future__ import annotations

import json
import re

import ujson

from portfolio_ws import constants as c
from portfolio_ws.constants import OrderSide, OrderStatus, PositionSide
from tests import ROOT

STATIC = ROOT / "portfolio_ws" / "static"


def _js_set(source: str, name: str) -> set[str]:
    match = re.search(rf"const {name} = new Set\(\[([^\]]*)\]\)", source)
    assert match, f"{name} not found"
    return set(re.findall(r'"([^"]+)"', match.group(1)))


def test_the_dashboards_open_statuses_are_the_python_ones():
    js = _js_set((STATIC / "app.js").read_text(), "OPEN_STATUSES")
    assert js == {status.value for status in c.OPEN_ORDER_STATUSES}


def test_the_dashboard_styles_every_status_and_no_other():
    styled = set(re.findall(r'\[data-status="([^"]+)"\]', (STATIC / "style.css").read_text()))
    assert styled == {status.value for status in OrderStatus}


def test_the_js_clients_types_name_the_python_statuses_and_sides():
    types = (ROOT / "clients" / "js" / "src" / "protocol.d.ts").read_text()
    union = re.search(r"export type OrderStatus =([^;]*);", types)
    assert union
    assert re.findall(r'"([^"]+)"', union.group(1)) == list(c.ORDER_STATUSES)
    assert re.search(r"side: " + re.escape(" | ".join(f'"{s}"' for s in PositionSide)) + ";", types)
    assert re.search(r"side: " + re.escape(" | ".join(f'"{s}"' for s in OrderSide)) + ";", types)


def test_the_wire_strings_are_unchanged():
    # The API document's strings, in its order; members are those strings to JSON and to str().
    assert c.ORDER_STATUSES == ("pending_new", "new", "accepted", "partially_filled", "filled", "canceled",
                                "rejected", "expired")
    assert type(c.ORDER_STATUSES[0]) is str
    assert [s.value for s in OrderSide] == ["buy", "sell"]
    assert [s.value for s in PositionSide] == ["long", "short"]
    assert c.CLOSED_ORDER_STATUSES == set(OrderStatus) - c.OPEN_ORDER_STATUSES
    member = {"status": OrderStatus.PARTIALLY_FILLED, "side": OrderSide.SELL}
    assert ujson.dumps(member) == json.dumps(member, separators=(",", ":")) == \
        '{"status":"partially_filled","side":"sell"}'
    assert str(PositionSide.SHORT) == "short" and "filled" in c.CLOSED_ORDER_STATUSES
