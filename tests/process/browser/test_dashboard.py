"""The dashboard at / in real headless Chromium against the real server: log in, live updates, a
server restart on the same port, the sixth tab falling back to polling."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.builders import order, position, trade
from tests.process.browser.conftest import WAIT_MS, new_page
from tests.process.browser.dashboard import account_at, log_in, seed

expect.set_options(timeout=WAIT_MS)


def row(page: Any, symbol: str) -> Any:
    return page.locator(f'#positions tr[data-symbol="{symbol}"]')


def cell(page: Any, symbol: str, field: str) -> Any:
    return row(page, symbol).locator(f'[data-field="{field}"]')


async def test_log_in_and_live_updates(browser: Any, servers: Any, shoot: Any) -> None:
    server = await servers.start(streaming__batch_window_ms=200)
    user = server.add_user("alice").user_id
    seed(server, user)
    errors: list[str] = []
    page = await new_page(await browser.new_context(viewport={"width": 1280, "height": 900}), errors)

    # A wrong password is refused on the form; the right one opens the dashboard.
    await page.goto(server.url + "/")
    await page.fill("#login-username", "alice")
    await page.fill("#login-password", "wrong")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("Invalid username or password")
    await log_in(page, server, "alice")
    await expect(page.locator("#conn")).to_have_attribute("data-status", "connected")
    await expect(page.locator("#username")).to_have_text("alice")

    # The snapshot, displayed as the server's strings.
    await expect(cell(page, "AAPL", "unrealizedPnl")).to_have_text("525.00")
    await expect(cell(page, "AAPL", "unrealizedPnl")).to_have_attribute("data-sign", "gain")
    await expect(cell(page, "SNDL", "currentPrice")).to_have_text("0.4567")
    await expect(cell(page, "SNDL", "unrealizedPnl")).to_have_attribute("data-sign", "loss")
    await expect(page.locator('#orders tr[data-order-id="order-1"] .badge')).to_have_text("new")
    await expect(page.locator("#acct-equity")).to_have_text("104,308.75")
    await expect(page.locator("#acct-buying-power")).to_have_text("208,617.50")
    await expect(page.locator("#acct-day-pnl")).to_have_text("1,234.56")
    await expect(page.locator('#trades li[data-trade-id="trade-1"]')).to_contain_text("25 NVDA @ 520.50")
    await expect(page.locator("#last-update")).not_to_have_text("never")

    # Live: a price move flashes its row, an order fills, the account and chart move, a trade
    # arrives on top, a closed position's row goes.
    server.publish(position(user, "AAPL", "100", "176.20", "170.25"))
    await expect(cell(page, "AAPL", "currentPrice")).to_have_text("176.20")
    await expect(cell(page, "AAPL", "unrealizedPnl")).to_have_text("595.00")
    await expect(row(page, "AAPL")).to_have_attribute("data-flash", "up")
    server.publish(position(user, "TSLA", "20", "252.10", "250.00", side="short"))
    await expect(cell(page, "TSLA", "unrealizedPnl")).to_have_text("-42.00")
    await expect(cell(page, "TSLA", "unrealizedPnl")).to_have_attribute("data-sign", "loss")
    server.publish(order(user, "order-1", "partially_filled", filled="20", avg="245.80"))
    await expect(page.locator('#orders tr[data-order-id="order-1"] .badge')).to_have_text("partially filled")
    server.publish(order(user, "order-1", "filled", filled="50", avg="245.75"))
    await expect(page.locator('#orders tr[data-order-id="order-1"] .badge')).to_have_text("filled")
    await expect(page.locator('#orders tr[data-order-id="order-1"] [data-field="filledAvgPrice"]')).to_have_text("245.75")
    for minute, equity in enumerate(["104120.10", "104455.00", "104390.25", "104602.80"], start=5):
        server.publish(account_at(user, equity, minute, day_pnl="-12.30"))  # one per window (coalesced)
        await expect(page.locator("#acct-equity")).to_have_text(f"{equity[:3]},{equity[3:]}")
    await expect(page.locator("#acct-day-pnl")).to_have_attribute("data-sign", "loss")
    await expect(page.locator("#equity-chart")).to_have_attribute("data-points", "5")
    server.publish(trade(user, "trade-2", "AAPL", "10", "176.20", pnl=None))
    await expect(page.locator("#trades li").first).to_have_attribute("data-trade-id", "trade-2")
    server.publish(position(user, "SNDL", "0", "0.4612", "0.5123"))
    await expect(row(page, "SNDL")).to_have_count(0)
    await expect(page.locator("#positions tbody tr")).to_have_count(2)
    await shoot(page, "live")

    # prefers-reduced-motion: a change is marked without animation.
    await page.emulate_media(reduced_motion="reduce")
    server.publish(position(user, "AAPL", "100", "175.90", "170.25"))
    await expect(row(page, "AAPL")).to_have_attribute("data-flash", "down")
    animation = await row(page, "AAPL").evaluate("r => getComputedStyle(r).animationName")
    assert animation == "none"

    # Log out: back to the form, the socket closed.
    await page.click("#logout")
    await expect(page.locator("#login-form")).to_be_visible()
    await expect(page.locator("#conn")).to_have_attribute("data-status", "offline")
    assert errors == []


async def test_restart_reconnects_and_catches_up(browser: Any, servers: Any, shoot: Any) -> None:
    first = await servers.start()
    user = first.add_user("bob").user_id
    seed(first, user)
    errors: list[str] = []
    page = await new_page(await browser.new_context(viewport={"width": 1280, "height": 900}), errors)
    await log_in(page, first, "bob")
    await expect(page.locator("#conn")).to_have_attribute("data-status", "connected")
    await expect(cell(page, "SNDL", "quantity")).to_have_text("1,500")
    await page.evaluate("""() => {
      window.__closes = []; window.__resumed = [];
      window.dashboard.stream.on("close", (c) => window.__closes.push(c));
      window.dashboard.stream.on("resumed", (r) => window.__resumed.push(r));
    }""")
    seq_before = await page.evaluate("window.dashboard.stream.lastSeq")

    # The server goes away: every client gets 1001 and the page says it is reconnecting.
    port = first.port
    await servers.stop(first)
    await page.wait_for_function("window.__closes.length > 0")
    assert await page.evaluate("[window.__closes[0].code, window.__closes[0].reason]") == [1001, "Server shutting down"]
    await expect(page.locator("#conn")).not_to_have_attribute("data-status", "connected")
    await shoot(page, "down")

    # A new process on the same port, whose feed has moved on meanwhile (SNDL sold, MSFT bought).
    second = await servers.start(port=port)
    second.publish(position(user, "AAPL", "100", "180.00", "170.25"))
    second.publish(position(user, "MSFT", "10", "410.00", "400.00"))
    second.publish(account_at(user, "105000.00", 30))
    await expect(page.locator("#conn")).to_have_attribute("data-status", "connected")
    await expect(cell(page, "AAPL", "currentPrice")).to_have_text("180.00")
    await expect(cell(page, "MSFT", "unrealizedPnl")).to_have_text("100.00")
    await expect(row(page, "SNDL")).to_have_count(0)   # the snapshot replaced the old state
    await expect(page.locator("#acct-equity")).to_have_text("105,000.00")
    resumed = await page.evaluate("window.__resumed")
    assert resumed and resumed[0]["from"] == seq_before and resumed[0]["recovered"] is False

    # And it is live again.
    second.publish(trade(user, "trade-after-restart", "MSFT", "10", "410.00", pnl=None))
    await expect(page.locator("#trades li").first).to_have_attribute("data-trade-id", "trade-after-restart")
    await shoot(page, "caught-up")
    assert errors == []


async def test_sixth_tab_is_refused_and_polls(browser: Any, servers: Any, shoot: Any) -> None:
    server = await servers.start()
    user = server.add_user("carol").user_id
    seed(server, user)
    errors: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    tabs = [await new_page(context, errors)]
    await log_in(tabs[0], server, "carol")
    for _ in range(5):   # the same cookie jar: already logged in
        tab = await new_page(context, errors)
        await tab.goto(server.url + "/")
        tabs.append(tab)
    for tab in tabs[:5]:
        await expect(tab.locator("#conn")).to_have_attribute("data-status", "connected")

    sixth = tabs[5]
    await expect(sixth.locator("#conn")).to_have_attribute("data-status", "polling")
    await expect(sixth.locator("#conn-detail")).to_have_text("too many open tabs")
    await expect(cell(sixth, "AAPL", "unrealizedPnl")).to_have_text("525.00")
    server.publish(position(user, "NVDA", "5", "530.00", "520.00"))
    await expect(cell(sixth, "NVDA", "marketValue")).to_have_text("2,650.00")   # via GET /api/portfolio
    assert server.service.stats()["connectionsByUser"] == {user: 5}
    await shoot(sixth, "polling")

    # Close a tab: the sixth one's periodic socket retry gets in and it streams again.
    await tabs[0].close()
    await expect(sixth.locator("#conn")).to_have_attribute("data-status", "connected")
    server.publish(position(user, "NVDA", "5", "531.00", "520.00"))
    await expect(cell(sixth, "NVDA", "currentPrice")).to_have_text("531.00")

    # Logging out in one tab ends the session: the others are closed 1008 and show the login form.
    await tabs[1].click("#logout")
    for tab in tabs[2:]:
        await expect(tab.locator("#login-error")).to_have_text("Your session has ended. Log in again.")
        await expect(tab.locator("#conn")).to_have_attribute("data-status", "offline")
    assert errors == []
