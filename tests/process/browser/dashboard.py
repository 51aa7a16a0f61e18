"""The dashboard's tests' shared steps: a seeded user, and logging in through the page."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from portfolio_ws.core.events import AccountUpdate
from tests.builders import account, later, order, position, trade
from tests.harness import PASSWORD


def account_at(user: str, equity: str, minute: int, day_pnl: str = "1234.56") -> AccountUpdate:
    return account(user, equity, day_pnl=day_pnl, at=later(minute * 60))


def seed(server: Any, user: str) -> None:
    server.publish(position(user, "AAPL", "100", "175.50", "170.25"))
    server.publish(position(user, "SNDL", "1500", "0.4567", "0.5123"))
    server.publish(order(user, "order-1", "new"))
    server.publish(account_at(user, "104308.75", 0))
    server.publish(trade(user, "trade-1"))


async def log_in(page: Any, server: Any, username: str) -> None:
    await page.goto(server.url + "/")
    await expect(page.locator("#login-form")).to_be_visible()
    await page.fill("#login-username", username)
    await page.fill("#login-password", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#dashboard")).to_be_visible()
