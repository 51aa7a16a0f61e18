"""Wire formatting: the only place a Decimal or datetime becomes a string, and a message JSON.

Money and prices: 2 decimals, 4 when 0 < |x| < 1. Percentages: 2 decimals. Quantities: no
trailing zeros, never exponent notation. Rounding is half-up, as a trader reads a statement.
Timestamps: ISO 8601 UTC with milliseconds and ``Z``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any, Mapping

import ujson

from .events import AccountUpdate, Event, OrderUpdate, PositionUpdate, TradeExecuted

_CENT = Decimal("0.01")
_BASIS = Decimal("0.0001")
_ONE = Decimal(1)
_MINUS_ONE = Decimal(-1)


def money(value: Decimal) -> str:
    """A money amount or price as the wire shows it."""
    if _MINUS_ONE < value < _ONE:
        # 4 decimals only when the shown amount is below $1: 0.99995 is "1.00", 0.00004 is "0.00".
        result = value.quantize(_CENT, rounding=ROUND_HALF_UP)
        fine = value.quantize(_BASIS, rounding=ROUND_HALF_UP)
        if fine and abs(fine) < _ONE:
            result = fine
        if not result:  # no "-0.00"
            result = abs(result)
        return f"{result:f}"
    # At or beyond $1 a quantized value never prints in exponent form: str() is the fast path
    # (formatting was the largest cost of a position update under load).
    return str(value.quantize(_CENT, ROUND_HALF_UP))


def percent(value: Decimal) -> str:
    result = value.quantize(_CENT, ROUND_HALF_UP)
    return str(result) if result else "0.00"  # no "-0.00"; two decimals never print in exponent form


def quantity(value: Decimal) -> str:
    if not value:
        return "0"
    return f"{value.normalize():f}"


@lru_cache(maxsize=16384)
def timestamp(moment: datetime) -> str:
    """``2026-01-04T15:30:45.123Z`` for an aware datetime.

    Cached: a position's ``openedAt`` is the same moment in every one of its updates, and formatting
    stood out in the server's CPU profile under load (docs/performance.md, change 7). Equal instants
    give the same UTC text whatever their zone."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def epoch_timestamp(now: float) -> str:
    """The envelope timestamp for ``now`` in epoch seconds."""
    return timestamp(datetime.fromtimestamp(now, timezone.utc))


def plain_number(value: float) -> int | float:
    """A setting as JSON shows it: ``100`` rather than ``100.0``."""
    return int(value) if float(value).is_integer() else value


def _opt(fmt: Any, value: Any) -> Any:
    return None if value is None else fmt(value)


def position_payload(e: PositionUpdate) -> dict[str, Any]:
    return {
        "symbol": e.symbol,
        "quantity": quantity(e.quantity),
        "currentPrice": money(e.current_price),
        "entryPrice": money(e.entry_price),
        "unrealizedPnl": money(e.unrealized_pnl),
        "unrealizedPnlPercent": percent(e.unrealized_pnl_percent),
        "marketValue": money(e.market_value),
        "side": e.side,
        "strategyId": e.strategy_id,
        "openedAt": _opt(timestamp, e.opened_at),
    }


def order_payload(e: OrderUpdate) -> dict[str, Any]:
    return {
        "orderId": e.order_id,
        "brokerOrderId": e.broker_order_id,
        "symbol": e.symbol,
        "side": e.side,
        "type": e.type,
        "status": e.status,
        "qty": quantity(e.qty),
        "filledQty": quantity(e.filled_qty),
        "filledAvgPrice": _opt(money, e.filled_avg_price),
        "limitPrice": _opt(money, e.limit_price),
        "stopPrice": _opt(money, e.stop_price),
        "submittedAt": timestamp(e.submitted_at),
        "filledAt": _opt(timestamp, e.filled_at),
    }


def account_payload(e: AccountUpdate) -> dict[str, Any]:
    return {
        "equity": money(e.equity),
        "buyingPower": money(e.buying_power),
        "cash": money(e.cash),
        "portfolioValue": money(e.portfolio_value),
        "dayPnl": money(e.day_pnl),
        "dayPnlPercent": percent(e.day_pnl_percent),
        "timestamp": timestamp(e.timestamp),
    }


def trade_payload(e: TradeExecuted) -> dict[str, Any]:
    return {
        "tradeId": e.trade_id,
        "symbol": e.symbol,
        "side": e.side,
        "quantity": quantity(e.quantity),
        "price": money(e.price),
        "pnl": _opt(money, e.pnl),
        "executedAt": timestamp(e.executed_at),
        "strategyId": e.strategy_id,
    }


_PAYLOADS: dict[type, Any] = {
    PositionUpdate: position_payload,
    OrderUpdate: order_payload,
    AccountUpdate: account_payload,
    TradeExecuted: trade_payload,
}


def payload(event: Event) -> dict[str, Any]:
    """The ``data`` object of an event's own message."""
    return _PAYLOADS[type(event)](event)  # type: ignore[no-any-return]


_last_stamp: tuple[float, str] = (float("nan"), "")


def _cached_timestamp(now: float) -> str:
    # One tick formats thousands of messages with the same ``now``: format it once.
    global _last_stamp
    if _last_stamp[0] != now:
        _last_stamp = (now, epoch_timestamp(now))
    return _last_stamp[1]


Trace = tuple[float, float]


def message(type_: str, user_id: str, data: Mapping[str, Any], now: float, seq: int | None = None,
            trace: Trace | None = None) -> str:
    """One server message, serialised. Data messages carry ``seq``; control messages don't.

    ``trace`` (load tests only, ``streaming.trace_event_time``): when the oldest and the newest
    event in the message reached the server, epoch seconds, sent as ``eventAt`` and
    ``lastEventAt`` so a client can measure end-to-end latency: the oldest event's for batched
    channels, the newest's (the order or trade that flushed the window) for orders and trades."""
    envelope = _envelope(type_, user_id, now, seq, trace)
    envelope["data"] = data
    return ujson.dumps(envelope, ensure_ascii=False, escape_forward_slashes=False)


def _envelope(type_: str, user_id: str, now: float, seq: int | None, trace: Trace | None) -> dict[str, Any]:
    """Every field of a message but ``data``, in wire order (``data`` goes last)."""
    envelope: dict[str, Any] = {"type": type_, "timestamp": _cached_timestamp(now), "userId": user_id}
    if seq is not None:
        envelope["seq"] = seq
    if trace is not None:
        envelope["eventAt"] = round(trace[0], 6)
        envelope["lastEventAt"] = round(trace[1], 6)
    return envelope


def fragment(data: Mapping[str, Any]) -> str:
    """A ``data`` object as the JSON text that goes inside a message."""
    return ujson.dumps(data, ensure_ascii=False, escape_forward_slashes=False)


def message_json(type_: str, user_id: str, data_json: str, now: float, seq: int | None = None,
                 trace: Trace | None = None) -> str:
    """``message`` with ``data`` already serialised (events' fragments, assembled once per set)."""
    head = ujson.dumps(_envelope(type_, user_id, now, seq, trace), ensure_ascii=False, escape_forward_slashes=False)
    return f'{head[:-1]},"data":{data_json}}}'


def control(type_: str, user_id: str, now: float, code: str | None = None, message_: str | None = None,
            details: Mapping[str, Any] | None = None) -> str:
    """An ``info``/``error``/``pong`` message (no ``seq``)."""
    data: dict[str, Any] = {}
    if code is not None:
        data = {"code": code, "message": message_ or "", "details": dict(details or {})}
    return message(type_, user_id, data, now)
