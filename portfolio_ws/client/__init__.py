"""``portfolio_ws.client``: an asyncio client for the portfolio stream, for bots and load testers.

    from portfolio_ws.client import PortfolioClient, PositionEvent

    async with PortfolioClient("http://127.0.0.1:5000", username="bob", password=secret) as client:
        async for event in client:
            if isinstance(event, PositionEvent):
                print(event.symbol, event.quantity, event.unrealized_pnl)   # Decimals
            # client.portfolio holds the current positions, orders, account and trades

It logs in (or takes a ``session_id``), subscribes, keeps ``client.portfolio`` up to date, pings
every 15 s, reconnects with full-jitter backoff following the close-code table of PROTOCOL.md and
resumes from the last ``seq`` applied, and polls ``GET /api/portfolio`` while streaming is
disabled. Pieces without I/O, reusable on their own: ``events.decode`` (wire text to typed
events), ``state.Portfolio`` (the local state), ``policy`` (reconnect decisions, staleness).
"""

from .connection import PortfolioClient
from .errors import ClientError, LoginFailed, StreamClosed
from .events import (AccountEvent, ClientEvent, Connected, DataEvent, OrderEvent, PositionEvent, Resumed,
                     ServerError, Snapshot, StatusChange, Subscribed, TradeEvent, Unsubscribed, decode)
from .http import Login, fetch_portfolio, login
from .policy import Staleness, Timings
from .state import Portfolio

__all__ = [
    "PortfolioClient", "Timings", "Staleness", "Portfolio",
    "PositionEvent", "OrderEvent", "AccountEvent", "TradeEvent", "Snapshot", "DataEvent", "ClientEvent",
    "Connected", "Subscribed", "Unsubscribed", "Resumed", "ServerError", "StatusChange",
    "ClientError", "LoginFailed", "StreamClosed", "Login", "login", "fetch_portfolio", "decode",
]
