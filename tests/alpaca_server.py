"""A local stand-in for Alpaca, for tests: trading stream, stock data stream and REST on 127.0.0.1.

Speaks what alpaca-py 0.44 expects (``shared/notes/alpaca-py.md``): the JSON trading stream (both
auth forms), the msgpack data stream (arrays of maps, msgpack Timestamps) and ``/v2/account``,
``/v2/positions``, ``/v2/orders``, ``/v2/clock`` in schemas alpaca-py's models accept. Orders,
fills and prices keep its REST view consistent, as Alpaca's would be.

Tests drive it (``trade``/``place_order``/``fill``, ``push_price``, ``drop_trading``, ``refuse``,
``fail_rest``, ``send_*_raw``...) and await its conditions (``await server.wait_for(pred)``,
``trading_listening``, ``data_subscribed``, ``rest_called``) instead of sleeping.

    server = AlpacaTestServer()
    alice = server.add_account("AKALICE", "alice-secret", cash="10000")
    alice.set_position("AAPL", qty="10", avg_entry="150", price="155")
    await server.start()
    ... AlpacaSettings(trading_stream_url=server.trading_url, data_stream_url=server.data_url,
                       rest_url=server.rest_url, ...)
    await server.stop()
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable

import msgpack
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from tests.alpaca_broker_server import BrokerPartner, BrokerRest, JsonHandler, events_routes

ZERO = Decimal(0)


def _d(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def iso(moment: datetime) -> str:
    """Alpaca's REST/stream time format: UTC, nanosecond digits, ``Z``."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


class Conditions:
    """Futures resolved when a predicate over some state becomes true. Call ``changed()`` on change."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        """The predicate's first truthy value; ``TimeoutError`` naming ``what`` after ``timeout``."""
        value = predicate()
        if value:
            return value
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiting.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}") from None
        finally:
            if entry in self._waiting:
                self._waiting.remove(entry)

    def changed(self) -> None:
        for predicate, future in list(self._waiting):
            if future.done():
                continue
            try:
                value = predicate()
            except Exception as exc:  # a broken predicate fails its test, not the server
                future.set_exception(exc)
                continue
            if value:
                future.set_result(value)


# --- accounts -----------------------------------------------------------------------------------
@dataclass
class FakePosition:
    symbol: str
    qty: Decimal  # signed
    avg_entry: Decimal
    price: Decimal
    lastday_price: Decimal
    asset_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_json(self) -> dict[str, Any]:
        market_value = self.qty * self.price
        cost_basis = self.qty * self.avg_entry
        unrealized = market_value - cost_basis
        return {
            "asset_id": self.asset_id,
            "symbol": self.symbol,
            "exchange": "NASDAQ",
            "asset_class": "us_equity",
            "asset_marginable": True,
            "avg_entry_price": _s(self.avg_entry),
            "qty": _s(self.qty),
            "side": "long" if self.qty > 0 else "short",
            "market_value": _s(market_value),
            "cost_basis": _s(cost_basis),
            "unrealized_pl": _s(unrealized),
            "unrealized_plpc": _s(unrealized / abs(cost_basis)) if cost_basis else "0",
            "unrealized_intraday_pl": _s(self.qty * (self.price - self.lastday_price)),
            "unrealized_intraday_plpc": "0",
            "current_price": _s(self.price),
            "lastday_price": _s(self.lastday_price),
            "change_today": _s((self.price - self.lastday_price) / self.lastday_price),
            "qty_available": _s(self.qty),
        }


@dataclass
class FakeAccount:
    key: str
    secret: str
    cash: Decimal
    last_equity: Decimal
    positions: dict[str, FakePosition] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def set_position(self, symbol: str, qty: Any, avg_entry: Any, price: Any) -> None:
        self.positions[symbol] = FakePosition(symbol, _d(qty), _d(avg_entry), _d(price), _d(price))

    @property
    def equity(self) -> Decimal:
        return self.cash + sum((p.qty * p.price for p in self.positions.values()), ZERO)

    def to_json(self) -> dict[str, Any]:
        long_mv = sum((p.qty * p.price for p in self.positions.values() if p.qty > 0), ZERO)
        short_mv = sum((p.qty * p.price for p in self.positions.values() if p.qty < 0), ZERO)
        equity = self.equity
        buying_power = max(ZERO, 2 * equity - long_mv + short_mv)
        return {
            "id": self.id,
            "account_number": "PA" + self.id.replace("-", "")[:10].upper(),
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "currency": "USD",
            "buying_power": _s(buying_power),
            "regt_buying_power": _s(buying_power),
            "non_marginable_buying_power": _s(max(self.cash, ZERO)),
            "cash": _s(self.cash),
            "accrued_fees": "0",
            "pending_transfer_in": "0",
            "pending_transfer_out": "0",
            "portfolio_value": _s(equity),
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": "2024-01-02T15:04:05.123456Z",
            "trade_suspended_by_user": False,
            "multiplier": "2",
            "shorting_enabled": True,
            "equity": _s(equity),
            "last_equity": _s(self.last_equity),
            "long_market_value": _s(long_mv),
            "short_market_value": _s(short_mv),
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "options_buying_power": _s(buying_power),
            "options_approved_level": 0,
            "options_trading_level": 0,
        }


def _order_json(symbol: str, side: str, qty: Decimal, type_: str, limit_price: Decimal | None,
                now: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "client_order_id": "cli-" + uuid.uuid4().hex[:12],
        "created_at": iso(now),
        "updated_at": iso(now),
        "submitted_at": iso(now),
        "filled_at": None,
        "expired_at": None,
        "canceled_at": None,
        "failed_at": None,
        "replaced_at": None,
        "replaced_by": None,
        "replaces": None,
        "asset_id": str(uuid.uuid4()),
        "symbol": symbol,
        "asset_class": "us_equity",
        "notional": None,
        "qty": _s(qty),
        "filled_qty": "0",
        "filled_avg_price": None,
        "order_class": "simple",
        "order_type": type_,
        "type": type_,
        "side": side,
        "time_in_force": "day",
        "limit_price": None if limit_price is None else _s(limit_price),
        "stop_price": None,
        "status": "new",
        "extended_hours": False,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
        "position_intent": "buy_to_open" if side == "buy" else "sell_to_close",
    }


# --- the server ---------------------------------------------------------------------------------
class AlpacaTestServer:
    """Alpaca on a free port of 127.0.0.1. All methods run on the test's event loop."""

    def __init__(self, *, trading_binary_frames: bool = True) -> None:
        self.accounts: dict[str, FakeAccount] = {}
        self.conditions = Conditions()
        self.trading_binary_frames = trading_binary_frames
        self.trading_conns: set[_TradingSocket] = set()
        self.data_conns: set[_DataSocket] = set()
        # Counters tests await on.
        self.trading_listens: Counter[str] = Counter()
        self.trading_refusals: Counter[str] = Counter()
        self.data_auths: Counter[str] = Counter()
        self.data_refusals: Counter[str] = Counter()
        self.rest_calls: Counter[tuple[str, str]] = Counter()
        # Controls.
        self.refused_keys: set[str] = set()
        # OAuth access tokens (Alpaca Connect) -> the key of the account each one opens.
        self.oauth_tokens: dict[str, str] = {}
        self.data_limit_keys: set[str] = set()  # data auth with these keys answers 406
        self.trading_upgrade_status: int | None = None  # e.g. 429: refuse the upgrade itself
        self._rest_failures: dict[str, list[int]] = {}  # key -> [status, remaining (-1 = forever)]
        self.market_open = True
        # Who each execution / order belongs to (for isolation checks).
        self.execution_owner: dict[str, str] = {}
        self.order_owner: dict[str, str] = {}
        self._trade_seq = 0
        # The Broker API: one partner whose key reads every account (tests/alpaca_broker_server.py).
        self.broker = BrokerPartner(self)
        self._server: tornado.httpserver.HTTPServer | None = None
        self.port = 0

    # --- setup --------------------------------------------------------------------------------
    def add_account(self, key: str, secret: str, *, cash: Any = "100000", last_equity: Any = None) -> FakeAccount:
        account = FakeAccount(key, secret, _d(cash), _d(last_equity if last_equity is not None else cash))
        self.accounts[key] = account
        return account

    def add_oauth_token(self, token: str, key: str) -> None:
        """``token`` opens account ``key`` (REST ``Authorization: Bearer``, the stream's
        ``{"action": "authenticate", "data": {"oauth_token": ...}}``), as an Alpaca Connect token."""
        self.oauth_tokens[token] = key

    async def start(self) -> None:
        app = tornado.web.Application([
            (r"/stream", _TradingSocket, {"server": self}),
            (r"/v2/(?:iex|sip|test)", _DataSocket, {"server": self}),
            *rest_routes(self, _RestHandler, "/v2/{}", "/v2/clock"),
            *rest_routes(self, BrokerRest, r"/v1/trading/accounts/([0-9a-f-]{{36}})/{}", "/v1/clock"),
            *events_routes(self),
        ])
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)

    async def stop(self) -> None:
        for conn in list(self.trading_conns) + list(self.data_conns):
            conn.close()
        self.broker.drop()
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None

    @property
    def trading_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    @property
    def data_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2/iex"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- conditions ---------------------------------------------------------------------------
    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        return await self.conditions.wait_for(predicate, timeout, what)

    async def trading_listening(self, key: str, count: int = 1) -> None:
        """Until ``key``'s trading stream has said ``listen`` ``count`` times in all."""
        await self.wait_for(lambda: self.trading_listens[key] >= count, what=f"{key} listening x{count}")

    async def data_subscribed(self, symbols: Iterable[str], exact: bool = True) -> None:
        """Until an authenticated data connection is subscribed to ``symbols`` (exactly, or at least)."""
        wanted = set(symbols)

        def ok() -> bool:
            return any(c.key and (c.trades == wanted if exact else wanted <= c.trades) for c in self.data_conns)

        await self.wait_for(ok, what=f"data subscription {sorted(wanted)}")

    async def rest_called(self, key: str, path: str, count: int) -> None:
        await self.wait_for(lambda: self.rest_calls[(key, path)] >= count, what=f"{key} {path} x{count}")

    def data_symbols(self) -> set[str]:
        return set().union(*(c.trades for c in self.data_conns if c.key)) if self.data_conns else set()

    # --- controls: connections ----------------------------------------------------------------
    def refuse(self, key: str) -> None:
        """Refuse ``key`` everywhere from now on: streams answer unauthorized, REST 401."""
        self.refused_keys.add(key)

    def drop_trading(self, key: str | None = None) -> int:
        """Close the trading connections (of ``key``, or all) as a network failure would."""
        conns = [c for c in self.trading_conns if key is None or c.key == key]
        for conn in conns:
            conn.close(1011, "dropped by test")
        return len(conns)

    def drop_data(self) -> int:
        conns = list(self.data_conns)
        for conn in conns:
            conn.close(1011, "dropped by test")
        return len(conns)

    def fail_rest(self, key: str, status: int, times: int = -1) -> None:
        """Answer ``key``'s REST calls with ``status`` (``times`` calls, -1 = until ``heal_rest``)."""
        self._rest_failures[key] = [status, times]

    def heal_rest(self, key: str) -> None:
        self._rest_failures.pop(key, None)

    def send_trading_raw(self, key: str, payload: str | bytes) -> None:
        for conn in self._listening(key):
            conn.write_message(payload, binary=isinstance(payload, bytes))

    def send_data_raw(self, payload: str | bytes) -> None:
        for conn in self.data_conns:
            if conn.key:
                conn.write_message(payload, binary=isinstance(payload, bytes))

    # --- controls: trading --------------------------------------------------------------------
    def push_trade_update(self, key: str, data: dict[str, Any]) -> None:
        """Send one ``trade_updates`` frame with ``data`` to ``key``'s listening connections."""
        self.broker.record(key, data)
        frame = json.dumps({"stream": "trade_updates", "data": data})
        for conn in self._listening(key):
            conn.write_message(frame.encode() if self.trading_binary_frames else frame,
                               binary=self.trading_binary_frames)

    def place_order(self, key: str, symbol: str, side: str, qty: Any, *, type_: str = "market",
                    limit_price: Any = None, push: bool = True) -> str:
        """A new order (event ``new``); returns its Alpaca id."""
        now = datetime.now(timezone.utc)
        order = _order_json(symbol, side, _d(qty), type_, None if limit_price is None else _d(limit_price), now)
        self.accounts[key].orders[order["id"]] = order
        self.order_owner[order["id"]] = key
        if push:
            self.push_trade_update(key, {"event": "new", "timestamp": iso(now), "order": dict(order)})
        return str(order["id"])

    def order_event(self, key: str, order_id: str, event: str, status: str | None = None,
                    push: bool = True) -> dict[str, Any]:
        """Set the order's status (default: the event's name) and send the event."""
        now = datetime.now(timezone.utc)
        order = self.accounts[key].orders[order_id]
        order["status"] = status or event
        order["updated_at"] = iso(now)
        if order["status"] == "canceled":
            order["canceled_at"] = iso(now)
        data = {"event": event, "timestamp": iso(now), "order": dict(order)}
        if push:
            self.push_trade_update(key, data)
        return data

    def fill(self, key: str, order_id: str, qty: Any, price: Any, *, push: bool = True) -> dict[str, Any]:
        """Fill ``qty`` of an order at ``price``: order, position and cash change as Alpaca's
        would; the ``fill``/``partial_fill`` event is sent (``push``) and returned (to replay)."""
        account = self.accounts[key]
        order = account.orders[order_id]
        qty, price = _d(qty), _d(price)
        now = datetime.now(timezone.utc)
        before = _d(order["filled_qty"])
        total = before + qty
        avg_before = _d(order["filled_avg_price"] or 0)
        order["filled_qty"] = _s(total)
        order["filled_avg_price"] = _s((avg_before * before + price * qty) / total)
        done = total >= _d(order["qty"])
        order["status"] = "filled" if done else "partially_filled"
        order["updated_at"] = iso(now)
        if done:
            order["filled_at"] = iso(now)
        signed = qty if order["side"] == "buy" else -qty
        position = account.positions.get(order["symbol"])
        held = position.qty if position else ZERO
        after = held + signed
        if not after:
            account.positions.pop(order["symbol"], None)
        elif position is None or (held > 0) != (after > 0):
            account.positions[order["symbol"]] = FakePosition(order["symbol"], after, price, price, price)
        else:
            if abs(after) > abs(held):
                position.avg_entry = (abs(held) * position.avg_entry + qty * price) / abs(after)
            position.qty = after
            position.price = price
        account.cash -= signed * price
        execution_id = str(uuid.uuid4())
        self.execution_owner[execution_id] = key
        data = {
            "event": "fill" if done else "partial_fill",
            "execution_id": execution_id,
            "timestamp": iso(now),
            "price": _s(price),
            "qty": _s(qty),
            "position_qty": _s(after),
            "order": dict(order),
        }
        if push:
            self.push_trade_update(key, data)
        return data

    def trade(self, key: str, symbol: str, side: str, qty: Any, price: Any, *, push: bool = True) -> dict[str, Any]:
        """A market order filled at once: ``new`` then ``fill``. Returns the fill's data."""
        order_id = self.place_order(key, symbol, side, qty, push=push)
        return self.fill(key, order_id, qty, price, push=push)

    # --- controls: market data ----------------------------------------------------------------
    def push_price(self, symbol: str, price: Any, at: datetime | None = None) -> int:
        """A trade print of ``symbol`` (msgpack, price as a number) to subscribed connections;
        REST positions follow. Returns how many connections it was sent to."""
        for account in self.accounts.values():
            if symbol in account.positions:
                account.positions[symbol].price = _d(price)
        self._trade_seq += 1
        number = float(price) if not isinstance(price, int) else price
        frame = msgpack.packb([{
            "T": "t", "S": symbol, "i": self._trade_seq, "x": "V", "p": number, "s": 100,
            "c": ["@"], "z": "C", "t": at or datetime.now(timezone.utc),
        }], datetime=True)
        sent = 0
        for conn in self.data_conns:
            if conn.key and symbol in conn.trades:
                conn.write_message(frame, binary=True)
                sent += 1
        return sent

    # --- internals ----------------------------------------------------------------------------
    def _listening(self, key: str) -> list[_TradingSocket]:
        return [c for c in self.trading_conns if c.key == key and c.listening]

    def _oauth_key(self, token: Any) -> str | None:
        """The account key ``token`` opens, or None (unknown token, or its account refused)."""
        key = self.oauth_tokens.get(token) if isinstance(token, str) else None
        return key if key is not None and key not in self.refused_keys else None

    def _credentials_ok(self, key: Any, secret: Any) -> bool:
        account = self.accounts.get(key) if isinstance(key, str) else None
        return account is not None and account.secret == secret and key not in self.refused_keys

    def _rest_failure(self, key: str) -> int | None:
        failure = self._rest_failures.get(key)
        if failure is None:
            return None
        status, remaining = failure
        if remaining > 0:
            failure[1] -= 1
            if failure[1] == 0:
                del self._rest_failures[key]
        return status


class _TradingSocket(tornado.websocket.WebSocketHandler):
    def initialize(self, server: AlpacaTestServer) -> None:
        self.server = server
        self.key: str | None = None
        self.listening = False

    def check_origin(self, origin: str) -> bool:
        return True

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.server.trading_upgrade_status:
            self.set_status(self.server.trading_upgrade_status)
            self.finish("connection refused by test")
            return
        await super().get(*args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.server.trading_conns.add(self)
        self.server.conditions.changed()

    def _send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        binary = self.server.trading_binary_frames
        self.write_message(text.encode() if binary else text, binary=binary)

    def on_message(self, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
            action = msg.get("action")
        except (ValueError, AttributeError):
            self._send({"stream": "error", "data": {"error_message": "invalid syntax"}})
            return
        if action in ("authenticate", "auth"):
            data = msg.get("data") or {}
            key = data.get("key_id", msg.get("key"))
            secret = data.get("secret_key", msg.get("secret"))
            if "oauth_token" in data:
                key = self.server._oauth_key(data["oauth_token"])
                secret = self.server.accounts[key].secret if key else None
            if self.server._credentials_ok(key, secret):
                self.key = key
                self._send({"stream": "authorization", "data": {"action": "authenticate", "status": "authorized"}})
            else:
                self.server.trading_refusals[str(key)] += 1
                self._send({"stream": "authorization", "data": {"action": "authenticate", "status": "unauthorized"}})
                self.close(1008, "unauthorized")
        elif action == "listen":
            if self.key is None:
                self._send({"stream": "authorization", "data": {"action": "listen", "status": "unauthorized"}})
                return
            streams = list((msg.get("data") or {}).get("streams") or [])
            self.listening = "trade_updates" in streams
            self._send({"stream": "listening", "data": {"streams": streams}})
            self.server.trading_listens[self.key] += 1
        self.server.conditions.changed()

    def on_close(self) -> None:
        self.server.trading_conns.discard(self)
        self.server.conditions.changed()


class _DataSocket(tornado.websocket.WebSocketHandler):
    def initialize(self, server: AlpacaTestServer) -> None:
        self.server = server
        self.key: str | None = None
        self.trades: set[str] = set()

    def check_origin(self, origin: str) -> bool:
        return True

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.server.data_conns.add(self)
        self._send([{"T": "success", "msg": "connected"}])
        self.server.conditions.changed()

    def _send(self, frames: list[dict[str, Any]]) -> None:
        self.write_message(msgpack.packb(frames, datetime=True), binary=True)

    def _error(self, code: int, text: str) -> None:
        self._send([{"T": "error", "code": code, "msg": text}])

    def on_message(self, message: str | bytes) -> None:
        try:
            msg = msgpack.unpackb(message) if isinstance(message, bytes) else json.loads(message)
            action = msg.get("action")
        except Exception:
            self._error(400, "invalid syntax")
            return
        if action == "auth":
            key, secret = msg.get("key"), msg.get("secret")
            if self.key is not None:
                self._error(403, "already authenticated")
            elif key in self.server.data_limit_keys or any(c.key == key for c in self.server.data_conns):
                self.server.data_refusals[str(key)] += 1
                self._error(406, "connection limit exceeded")
                self.close(1008, "connection limit exceeded")
            elif not self.server._credentials_ok(key, secret):
                self.server.data_refusals[str(key)] += 1
                self._error(402, "auth failed")
                self.close(1008, "auth failed")
            else:
                self.key = key
                self.server.data_auths[key] += 1
                self._send([{"T": "success", "msg": "authenticated"}])
        elif action in ("subscribe", "unsubscribe"):
            if self.key is None:
                self._error(401, "not authenticated")
                return
            symbols = set(msg.get("trades") or [])
            self.trades = self.trades | symbols if action == "subscribe" else self.trades - symbols
            self._send([{"T": "subscription", "trades": sorted(self.trades), "quotes": [], "bars": [],
                         "updatedBars": [], "dailyBars": [], "statuses": [], "lulds": [],
                         "corrections": [], "cancelErrors": []}])
        else:
            self._error(400, "invalid syntax")
        self.server.conditions.changed()

    def on_close(self) -> None:
        self.server.data_conns.discard(self)
        self.server.conditions.changed()


class _RestHandler(JsonHandler):
    def initialize(self, server: AlpacaTestServer) -> None:
        self.server = server
        self.account: FakeAccount | None = None

    def prepare(self) -> None:
        key = self.request.headers.get("APCA-API-KEY-ID", "")
        secret = self.request.headers.get("APCA-API-SECRET-KEY", "")
        bearer = self.request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):  # an OAuth token stands for its account's key pair
            key = self.server._oauth_key(bearer[len("Bearer "):]) or "oauth:unknown"
            secret = self.server.accounts[key].secret if key in self.server.accounts else ""
        self.server.rest_calls[(key, self.request.path)] += 1
        self.server.conditions.changed()
        failure = self.server._rest_failure(key)
        if failure is not None:
            self._fail(failure, {429: "too many requests"}.get(failure, "error"))
        elif not self.server._credentials_ok(key, secret):
            self._fail(401, "request is not authorized")
        else:
            self.account = self.server.accounts[key]


def rest_routes(server: AlpacaTestServer, auth: type[_RestHandler] | type[BrokerRest], accounts: str,
                clock: str) -> list[Any]:
    """One account's REST answers (``account``, ``positions``, ``orders``) at ``accounts`` (``{}``
    stands for the resource) and the market clock at ``clock``. ``auth`` is the flavour: its
    ``prepare`` checks the credentials and picks ``self.account`` (the trading key's own account, or
    the account the broker key names in the path)."""

    class Account(auth):  # type: ignore[valid-type,misc]
        def get(self, *_: str) -> None:
            assert self.account is not None
            self.reply(self.account.to_json())

    class Positions(auth):  # type: ignore[valid-type,misc]
        def get(self, *_: str) -> None:
            assert self.account is not None
            self.reply([p.to_json() for _, p in sorted(self.account.positions.items())])

    class Orders(auth):  # type: ignore[valid-type,misc]
        def get(self, *_: str) -> None:
            assert self.account is not None
            self.reply(orders_json(self.account, self))

    class Clock(auth):  # type: ignore[valid-type,misc]
        def get(self, *_: str) -> None:
            self.reply(clock_json(self.server))

    return [*((accounts.format(name), handler, {"server": server})
              for name, handler in (("account", Account), ("positions", Positions), ("orders", Orders))),
            (clock, Clock, {"server": server})]


OPEN_STATUSES = {"new", "accepted", "pending_new", "partially_filled", "pending_cancel", "pending_replace",
                 "accepted_for_bidding", "held", "done_for_day", "stopped", "calculated"}


def orders_json(account: FakeAccount, request: tornado.web.RequestHandler) -> list[dict[str, Any]]:
    """The account's orders as ``GET .../orders`` answers ``request`` (status, after, limit)."""
    status = request.get_query_argument("status", "open")
    after = request.get_query_argument("after", None)
    limit = int(request.get_query_argument("limit", "50") or 50)
    orders = list(account.orders.values())
    if status == "open":
        orders = [o for o in orders if o["status"] in OPEN_STATUSES]
    elif status == "closed":
        orders = [o for o in orders if o["status"] not in OPEN_STATUSES]
    if after:
        moment = datetime.fromisoformat(after.replace("Z", "+00:00"))
        orders = [o for o in orders if datetime.fromisoformat(o["submitted_at"][:26] + "+00:00") > moment]
    orders.sort(key=lambda o: o["submitted_at"], reverse=True)
    return orders[:limit]


def clock_json(server: AlpacaTestServer) -> dict[str, Any]:
    now = datetime.now(timezone(timedelta(hours=-5)))
    return {
        "timestamp": now.isoformat(),
        "is_open": server.market_open,
        "next_open": (now + timedelta(days=1)).replace(hour=9, minute=30, second=0, microsecond=0).isoformat(),
        "next_close": now.replace(hour=16, minute=0, second=0, microsecond=0).isoformat(),
    }
