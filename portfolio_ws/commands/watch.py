"""``portfolio-ws watch``: log in and print a user's live events, one line each, until Ctrl-C.

Events go to stdout as a compact table; connection news (connected, reconnecting, polling) goes to
stderr prefixed ``--``. The password comes from ``--password-stdin``, else ``$PORTFOLIO_PASSWORD``,
else a prompt (or the first line of stdin when it is not a terminal); it is never echoed.
Bad credentials, an unreachable server or a stream the server ends for good: one line, exit 1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from decimal import Decimal
from typing import Any, Callable

import click

from .. import constants as c
from ..client import (AccountEvent, ClientError, ClientEvent, Connected, LoginFailed, OrderEvent, PortfolioClient,
                      PositionEvent, Resumed, ServerError, Snapshot, StatusChange, StreamClosed, TradeEvent)

PASSWORD_ENV = "PORTFOLIO_PASSWORD"  # not PORTFOLIO_WS_*: the settings loader rejects unknown names there
# Offsets start at the server's start time in ms (13 digits until the year 2286), so that a restarted
# server's offsets are above every offset of the run before and a resume across a restart is safe.
SEQ_WIDTH = 13
HEADER = f"{'TIME':<8}  {'SEQ':>{SEQ_WIDTH}}  {'EVENT':<8}  {'SYMBOL':<6}  DETAILS"


# ---- formatting (pure) -----------------------------------------------------------------------
def _pnl(amount: Decimal | None, percent: Decimal | None = None) -> str:
    if amount is None:
        return ""
    sign = "+" if amount > 0 else ""
    return f"P&L {sign}{amount}" + (f" ({sign}{percent}%)" if percent is not None else "")


def _row(clock: str, seq: int | str, kind: str, symbol: str, details: str) -> str:
    return f"{clock:<8}  {seq!s:>{SEQ_WIDTH}}  {kind:<8}  {symbol:<6}  {details}".rstrip()


def event_line(event: Any, clock: str) -> str | None:
    """The table row of one data event (None for anything else)."""
    if isinstance(event, PositionEvent):
        if event.closed:
            details = f"closed @ {event.current_price}"
        else:
            details = (f"{event.side} {event.quantity} @ {event.current_price}  entry {event.entry_price}  "
                       f"{_pnl(event.unrealized_pnl, event.unrealized_pnl_percent)}  value {event.market_value}")
        return _row(clock, event.seq, "position", event.symbol, details)
    if isinstance(event, OrderEvent):
        details = f"{event.order_id} {event.side} {event.type} {event.qty} {event.status}"
        if event.limit_price is not None:
            details += f"  limit {event.limit_price}"
        if event.stop_price is not None:
            details += f"  stop {event.stop_price}"
        if event.filled_qty:
            details += f"  filled {event.filled_qty}"
            if event.filled_avg_price is not None:
                details += f" @ {event.filled_avg_price}"
        return _row(clock, event.seq, "order", event.symbol, details)
    if isinstance(event, AccountEvent):
        details = (f"equity {event.equity}  cash {event.cash}  buying power {event.buying_power}  "
                   f"day {_pnl(event.day_pnl, event.day_pnl_percent)}")
        return _row(clock, event.seq, "account", "", details)
    if isinstance(event, TradeEvent):
        details = f"{event.side} {event.quantity} @ {event.price}"
        if event.pnl is not None:
            details += f"  {_pnl(event.pnl)}"
        return _row(clock, event.seq, "trade", event.symbol, details)
    return None


def snapshot_lines(snapshot: Snapshot, clock: str) -> list[str]:
    """A summary row, then one row per item the snapshot holds."""
    parts = []
    if c.POSITIONS in snapshot.channels:
        parts.append(f"{len(snapshot.positions)} positions")
    if c.ORDERS in snapshot.channels:
        parts.append(f"{len(snapshot.orders)} orders")
    if c.ACCOUNT in snapshot.channels:
        parts.append("account" if snapshot.account is not None else "no account yet")
    if c.TRADES in snapshot.channels:
        parts.append(f"{len(snapshot.trades)} trades today")
    lines = [_row(clock, snapshot.seq, "snapshot", "", ", ".join(parts))]
    items: list[Any] = [*snapshot.positions, *snapshot.orders, snapshot.account, *snapshot.trades]
    lines.extend(line for item in items if (line := event_line(item, clock)) is not None)
    return lines


def status_line(event: Any) -> str | None:
    """The stderr line of a connection event (None for data)."""
    if isinstance(event, Connected):
        return f"-- connected ({event.connection_id})"
    if isinstance(event, Resumed):
        if event.recovered:
            return f"-- resumed after seq {event.from_seq}, nothing lost"
        return f"-- events after seq {event.from_seq} are no longer held: a fresh snapshot follows"
    if isinstance(event, ServerError) and event.close_code is None:  # a close's cause: its status line says it
        return f"-- server error {event.code}: {event.message}"
    if isinstance(event, StatusChange):
        cause = "" if event.code is None else f" ({event.code} {event.reason or ''}".rstrip() + ")"
        if event.status == "reconnecting":
            return f"-- disconnected{cause}; reconnecting in {event.retry_in or 0:.1f} s"
        if event.status == "polling":
            return f"-- streaming unavailable{cause}; polling the portfolio, retrying in {event.retry_in or 0:.0f} s"
        if event.status == "connecting":
            return "-- connecting"
    return None


def lines_for(event: ClientEvent, clock: str) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines) for one event."""
    if isinstance(event, Snapshot):
        return snapshot_lines(event, clock), []
    line = event_line(event, clock)
    if line is not None:
        return [line], []
    news = status_line(event)
    return [], [news] if news is not None else []


# ---- running ---------------------------------------------------------------------------------
def _read_password(from_stdin: bool) -> str:
    if not from_stdin:
        env = os.environ.get(PASSWORD_ENV)
        if env:
            return env
    if from_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("no password on standard input")
        return password
    return str(click.prompt("Password", hide_input=True))


def _channels(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in c.CHANNELS]
    if unknown or not names:
        raise click.BadParameter(f"{unknown[0] if unknown else value!r} is not a channel; "
                                 f"choose from {', '.join(c.CHANNELS)}", param_hint="--channels")
    return names


async def watch(client: PortfolioClient, out: Callable[[str], None], err: Callable[[str], None],
                clock: Callable[[], str] = lambda: time.strftime("%H:%M:%S")) -> None:
    """Print the client's events until SIGINT/SIGTERM (clean) or a final close (``StreamClosed``)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals
            pass
    stream = client.events()

    async def consume() -> None:
        await client.start()
        out(HEADER)
        async for event in stream:
            stdout, stderr = lines_for(event, clock())
            for line in stderr:
                err(line)
            for line in stdout:
                out(line)

    consumer = asyncio.ensure_future(consume())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
    if not consumer.done():
        consumer.cancel()
    await client.close()
    if not consumer.cancelled():
        consumer.result()  # LoginFailed, ClientError, StreamClosed: the caller prints one line


@click.command("watch")
@click.option("--url", default="http://127.0.0.1:5000", show_default=True, help="The server's address.")
@click.option("--user", "username", required=True, help="The user to log in as.")
@click.option("--password-stdin", is_flag=True,
              help=f"Read the password from the first line of stdin (else ${PASSWORD_ENV}, else a prompt).")
@click.option("--channels", default=",".join(c.CHANNELS), show_default=True,
              help="Comma-separated channels to watch.")
def command(url: str, username: str, password_stdin: bool, channels: str) -> None:
    """Log in and print live portfolio events, one line each, until Ctrl-C.

    \b
    Columns: TIME (this computer's clock), SEQ, EVENT, SYMBOL, DETAILS.
    SEQ is the event's offset in your stream. Offsets start at the server's
    start time in milliseconds (13 digits, e.g. 1764318000123) and grow by one
    per event, so a restarted server's offsets are always higher; a client
    resumes after a reconnect from the last offset it saw ("resumeFrom").
    Connection news goes to stderr, prefixed "--".
    """
    wanted = _channels(channels)
    password = _read_password(password_stdin)
    try:
        client = PortfolioClient(url, username=username, password=password, channels=wanted)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None

    async def main() -> None:
        await watch(client, lambda line: click.echo(line), lambda line: click.echo(line, err=True))

    try:
        asyncio.run(main())
    except LoginFailed as exc:
        click.echo(f"Error: login failed: {exc}", err=True)
        raise SystemExit(1) from None
    except StreamClosed as exc:
        if exc.close in (c.SESSION_EXPIRED, c.AUTH_REQUIRED):  # logged out elsewhere, or expired
            click.echo(f"Error: your session has ended ({exc}): run the command again to log in again", err=True)
        else:
            click.echo(f"Error: the server ended the stream: {exc}", err=True)
        raise SystemExit(1) from None
    except ClientError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:  # Ctrl-C where no signal handler could be installed
        pass
