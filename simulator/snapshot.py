"""A running ``Simulation`` to plain JSON values and back, for checkpoints (``checkpoint.py``).

Rule 1: data only. A checkpoint comes from Redis, and whoever can write Redis must not be able to
run code through it (a pickle could): every value here is a number, a string, a list or a dict,
read back field by field into the simulator's own classes; anything else is a ``ValueError``.
Rule 2: the round trip is exact, so a resumed market continues identically: ``Decimal`` travels as
its ``str``, floats as JSON numbers (ujson writes the shortest text that reads back to the same
float; infinities as "inf"/"-inf"), ``random.Random`` as its state, aware datetimes as ISO 8601.
Objects that several parts of the engine share (an order in a user's open orders, its symbol's
working list and the agenda; a position in its book and its symbol's holders) are written once
and referenced by id (orders) or by user index (positions), so they are shared again when read.
Rule 3: the field lists here name every attribute of the classes they save; a test compares them
with the classes, so a new attribute can't be silently left out of checkpoints.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from portfolio_ws.constants import POSITION_SIDES, OrderStatus, PositionSide
from portfolio_ws.core.codec import from_dict, to_dict
from portfolio_ws.market_calendar import Session
from portfolio_ws.settings import SimulatorSettings

from . import engine
from .accounting import Book, Position
from .orders import TRANSITIONS, Order
from .prices import PriceModel, cents_to_decimal
from .strategies import PROFILE_BY_NAME
from .universe import universe
from .users import User

# What is saved of each class (a test checks these cover every attribute; see Rule 3).
SIMULATION_FIELDS = ("settings", "now", "prices", "users", "_by_id", "_holders", "_working", "_day_open",
                     "_last_print", "_agenda", "_scheduled", "_out", "market_open", "session")
PRICE_FIELDS = ("specs", "_rng", "_level", "_cents", "_decimal", "_mean_gap", "index")
_USER_NUMBERS = ("order_seq", "trade_seq", "trades_today", "account_token")
_USER_FLOATS = ("orders_per_day", "account_gap", "account_due", "account_last")
_ORDER_DECIMALS = ("qty", "limit_price", "stop_price", "filled_qty", "filled_cost")
_ORDER_FLOATS = ("submitted_at", "filled_at", "updated_at")
_ORDER_TEXT = ("order_id", "broker_order_id", "symbol", "side", "type", "strategy_id", "status")
_ORDER_INTS = ("user", "sym", "fills")
ORDER_FIELDS = (*_ORDER_TEXT, *_ORDER_INTS, *_ORDER_DECIMALS, *_ORDER_FLOATS, "triggered")

_ORDER_KINDS = {engine._ORDER_STEP, engine._MARKET_FILL, engine._CANCEL}
_USER_KINDS = {engine._DECIDE, engine._ACCOUNT}


# --- values ----------------------------------------------------------------------------------
def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a number: {value!r}")
    out = float(value)
    if math.isnan(out):
        raise ValueError("NaN in a checkpoint")
    return out


def _put_float(value: float) -> float | str:
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an integer: {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not a string: {value!r}")
    return value


def _decimal(value: Any) -> Decimal:
    out = Decimal(_text(value))
    if not out.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return out


def _optional(read: Any, value: Any) -> Any:
    return None if value is None else read(value)


def _moment(value: Any) -> datetime:
    out = datetime.fromisoformat(_text(value))
    if out.tzinfo is None:
        raise ValueError(f"a time without its offset: {value!r}")
    return out


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"not a list: {type(value).__name__}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"not an object: {type(value).__name__}")
    return value


def _rng(rng: random.Random) -> list[Any]:
    version, internal, gauss_next = rng.getstate()
    return [version, list(internal), gauss_next]


def _read_rng(value: Any) -> random.Random:
    version, internal, gauss_next = _list(value)
    rng = random.Random(0)  # (seeding from the OS would be wasted: the state is set next)
    # setstate checks the state itself: 625 integers in range, else TypeError/ValueError/OverflowError.
    rng.setstate((_int(version), tuple(_list(internal)), _optional(_float, gauss_next)))
    return rng


def timed_events(events: Any) -> list[list[Any]]:
    return [[_put_float(t), to_dict(event)] for t, event in events]


def read_timed_events(value: Any) -> list[engine.TimedEvent]:
    return [(_float(t), from_dict(_dict(event))) for t, event in map(_list, _list(value))]


# --- the parts -------------------------------------------------------------------------------
def _position(p: Position) -> list[Any]:
    return [p.sym, p.symbol, str(p.qty), str(p.cost), p.opened_at and p.opened_at.isoformat(), p.strategy_id,
            str(p._entry), p._side]


def _read_position(value: Any) -> Position:
    sym, symbol, qty, cost, opened_at, strategy_id, entry, side = _list(value)
    position = Position(_int(sym), _text(symbol), _decimal(qty), _decimal(cost), _optional(_moment, opened_at),
                        _optional(_text, strategy_id))
    if side not in POSITION_SIDES:
        raise ValueError(f"position side {side!r}")
    position._entry, position._side = _decimal(entry), PositionSide(side)
    return position


def _order(o: Order) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(o, name) for name in (*_ORDER_TEXT, *_ORDER_INTS, "triggered")}
    out.update({name: _optional(str, getattr(o, name)) for name in _ORDER_DECIMALS})
    out.update({name: _optional(_put_float, getattr(o, name)) for name in _ORDER_FLOATS})
    return out


def _read_order(value: Any) -> Order:
    d = _dict(value)
    order = Order(_text(d["order_id"]), _text(d["broker_order_id"]), _int(d["user"]), _text(d["symbol"]),
                  _int(d["sym"]), _text(d["side"]), _text(d["type"]), _decimal(d["qty"]),
                  _float(d["submitted_at"]), _optional(_decimal, d["limit_price"]),
                  _optional(_decimal, d["stop_price"]), _optional(_text, d["strategy_id"]))
    if d["status"] not in TRANSITIONS:
        raise ValueError(f"order status {d['status']!r}")
    if not isinstance(d["triggered"], bool):
        raise ValueError("order.triggered")
    status = None if d["status"] is None else OrderStatus(d["status"])
    order.status, order.triggered, order.fills = status, d["triggered"], _int(d["fills"])
    order.filled_qty, order.filled_cost = _decimal(d["filled_qty"]), _decimal(d["filled_cost"])
    order.filled_at, order.updated_at = _optional(_float, d["filled_at"]), _float(d["updated_at"])
    return order


def _user(u: User) -> dict[str, Any]:
    book = u.book
    out: dict[str, Any] = {
        "id": u.user_id, "rng": _rng(u.rng), "profile": u.profile.name, "openOrders": list(u.open_orders),
        "cash": str(book.cash), "lastCloseEquity": str(book.last_close_equity), "margin": str(book.margin),
        "positions": [_position(p) for p in book.positions.values()],
    }
    out.update({name: getattr(u, name) for name in _USER_NUMBERS})
    out.update({name: _put_float(getattr(u, name)) for name in _USER_FLOATS})
    return out


def _read_user(value: Any, idx: int, orders: dict[str, Order]) -> User:
    d = _dict(value)
    book = Book(_decimal(d["cash"]), _decimal(d["margin"]))
    book.last_close_equity = _decimal(d["lastCloseEquity"])
    for raw in _list(d["positions"]):
        position = _read_position(raw)
        book.positions[position.sym] = position
    profile = PROFILE_BY_NAME.get(d["profile"])
    if profile is None:
        raise ValueError(f"no strategy profile {d['profile']!r}")
    user = User(_text(d["id"]), idx, _read_rng(d["rng"]), book, profile, _float(d["orders_per_day"]),
                _float(d["account_gap"]))
    user.open_orders = {order_id: orders[_text(order_id)] for order_id in _list(d["openOrders"])}
    for name in _USER_NUMBERS:
        setattr(user, name, _int(d[name]))
    user.account_due, user.account_last = _float(d["account_due"]), _float(d["account_last"])
    return user


def _settings(value: Any) -> SimulatorSettings:
    d = _dict(value)
    names = {f.name for f in dataclasses.fields(SimulatorSettings)}
    if set(d) != names:
        raise ValueError(f"simulator settings with fields {sorted(set(d) ^ names)} differing")
    settings = SimulatorSettings(**d)
    engine._validate(settings)  # types and ranges, as the settings file is checked
    return settings


# --- the simulation --------------------------------------------------------------------------
def dump(sim: engine.Simulation) -> dict[str, Any]:
    """Everything ``sim`` needs to go on, as JSON values."""
    orders: dict[str, Order] = {}
    for user in sim.users:
        orders.update(user.open_orders)
    for working in sim._working:
        orders.update((o.order_id, o) for o in working)
    agenda: list[list[Any]] = []
    for t, n, kind, arg in sim._agenda:
        if kind in _ORDER_KINDS:
            orders.setdefault(arg.order_id, arg)
            arg = arg.order_id
        elif kind in _USER_KINDS:
            arg = [arg[0].idx, arg[1]]
        agenda.append([t, n, kind, arg])
    prices = sim.prices
    return {
        "settings": dataclasses.asdict(sim.settings),
        "now": _put_float(sim.now),
        "prices": {"rng": _rng(prices._rng), "level": list(prices._level), "cents": list(prices._cents)},
        "orders": [_order(o) for o in orders.values()],
        "users": [_user(u) for u in sim.users],
        "holders": [list(holders) for holders in sim._holders],
        "working": [[o.order_id for o in working] for working in sim._working],
        "dayOpen": [str(d) for d in sim._day_open],
        "lastPrint": list(sim._last_print),
        "agenda": agenda,
        "scheduled": sim._scheduled,
        "out": timed_events(sim._out),
        "marketOpen": sim.market_open,
        "session": [sim.session.day.isoformat(), sim.session.open, sim.session.close],
    }


def load(value: Any) -> engine.Simulation:
    """The simulation ``dump`` wrote. Raises ``ValueError`` (or another ``Exception``, which the
    caller turns into one) for anything else."""
    d = _dict(value)
    settings = _settings(d["settings"])
    specs = universe(settings.symbols, settings.seed)
    count = len(specs)
    prices = PriceModel(specs, _read_rng(d["prices"]["rng"]), settings.tick_rate)
    level, cents = _list(d["prices"]["level"]), _list(d["prices"]["cents"])
    if len(level) != count or len(cents) != count:
        raise ValueError("prices for another universe")
    prices._level = [_float(x) for x in level]
    prices._cents = [_int(c) for c in cents]
    prices._decimal = [cents_to_decimal(c) for c in prices._cents]
    orders = {order.order_id: order for order in map(_read_order, _list(d["orders"]))}
    sim = engine.Simulation.__new__(engine.Simulation)
    sim.settings, sim.now, sim.prices = settings, _float(d["now"]), prices
    sim.users = [_read_user(u, idx, orders) for idx, u in enumerate(_list(d["users"]))]
    sim._by_id = {user.user_id: user for user in sim.users}
    for order in orders.values():
        if not (0 <= order.user < len(sim.users) and 0 <= order.sym < count):
            raise ValueError(f"order {order.order_id} of no user or symbol")
    if len(sim._by_id) != len(sim.users):
        raise ValueError("a user twice")
    holders, working = _list(d["holders"]), _list(d["working"])
    if len(holders) != count or len(working) != count:
        raise ValueError("holders or working orders for another universe")
    sim._holders = [{_int(idx): sim.users[idx].book.positions[sym] for idx in _list(of)}
                    for sym, of in enumerate(holders)]
    sim._working = [[orders[_text(order_id)] for order_id in _list(of)] for of in working]
    sim._day_open = [_decimal(x) for x in _list(d["dayOpen"])]
    sim._last_print = [_float(x) for x in _list(d["lastPrint"])]
    if len(sim._day_open) != count or len(sim._last_print) != count:
        raise ValueError("day opens or last prints for another universe")
    sim._agenda = []
    for t, n, kind, arg in map(_list, _list(d["agenda"])):
        kind = _int(kind)
        if kind in _ORDER_KINDS:
            arg = orders[_text(arg)]
        elif kind in _USER_KINDS:
            idx, second = _list(arg)
            if kind == engine._DECIDE and not isinstance(second, bool):
                raise ValueError("a decision's opening flag")
            arg = (sim.users[_int(idx)], second if kind == engine._DECIDE else _int(second))
        elif kind == engine._PRINT:
            arg = _int(arg)
            if not 0 <= arg < count:
                raise ValueError(f"a print of symbol {arg}")
        elif kind in (engine._OPEN, engine._CLOSE):
            arg = None
        else:
            raise ValueError(f"agenda entry of kind {kind}")
        sim._agenda.append((_float(t), _int(n), kind, arg))
    heapq.heapify(sim._agenda)  # already a heap when it came from dump(); a no-op then
    sim._scheduled = _int(d["scheduled"])
    sim._out = read_timed_events(d["out"])
    if not isinstance(d["marketOpen"], bool):
        raise ValueError("marketOpen")
    sim.market_open = d["marketOpen"]
    day, opens, closes = _list(d["session"])
    sim.session = Session(date.fromisoformat(_text(day)), _float(opens), _float(closes))
    return sim
