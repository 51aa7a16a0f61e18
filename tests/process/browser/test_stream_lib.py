"""portfolio-stream.js on its own, in Chromium, against the real server: callbacks, batch and
snapshot unpacking, the close-code policy and backoff, the polling fallback."""

from __future__ import annotations

from typing import Any

from tests.process.browser.conftest import new_page
from tests.builders import account, order, position, trade
from tests.harness import PASSWORD

# Loads the module into a page of the server's origin and starts a stream that records everything.
START_STREAM = """async (options) => {
  const mod = await import("/static/portfolio-stream.js");
  const log = window.__log = [];
  const record = (name) => (...args) => log.push([name, ...args]);
  const stream = window.__stream = new mod.PortfolioStream({
    ...window.PORTFOLIO_STREAM_OPTIONS, ...options,
    onPosition: record("position"), onOrder: record("order"), onAccount: record("account"),
    onTrade: record("trade"), onSnapshot: record("snapshot"), onStatus: record("status"),
    onResumed: record("resumed"), onClose: record("close"),
  });
  stream.start();
}"""

LOGIN = """async (creds) => {
  const r = await fetch("/api/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
                                             body: JSON.stringify(creds)});
  return r.status;
}"""


async def open_stream(browser: Any, server: Any, username: str, **options: Any) -> Any:
    if server.users.by_username(username) is None:
        server.add_user(username)
    context = await browser.new_context(bypass_csp=True)  # drives the library with page-evaluated code on a JSON page; the dashboard tests keep the CSP
    page = await new_page(context)
    await page.goto(server.url + "/api/health")
    assert await page.evaluate(LOGIN, {"username": username, "password": PASSWORD}) == 200
    await page.evaluate(START_STREAM, options)
    return page


async def test_callbacks_per_item_from_events_batches_and_snapshots(browser: Any, servers: Any) -> None:
    server = await servers.start(streaming__batch_window_ms=200)
    user = server.add_user("alice").user_id
    server.publish(position(user, "MSFT", "10", "400.00", "390.00"))  # before connecting: in the snapshot
    page = await open_stream(browser, server, "alice")
    await page.wait_for_function("window.__stream.status === 'connected'")
    await page.wait_for_function("window.__log.some(e => e[0] === 'snapshot')")

    # One event alone arrives as its own type; several in a window as a batch: both end up per item.
    server.publish(account(user, "101000.00"))
    await page.wait_for_function("window.__stream.portfolio.account?.equity === '101000.00'")
    server.publish(position(user, "AAPL", "100", "176.20"))
    server.publish(position(user, "MSFT", "0", "401.00", "390.00"))
    server.publish(order(user, "order-9", "filled", filled="50", avg="245.75"))  # immediate: flushes
    server.publish(trade(user, "trade-9"))
    await page.wait_for_function("window.__log.some(e => e[0] === 'trade' && e[1].tradeId === 'trade-9')")
    state = await page.evaluate("""() => {
      const s = window.__stream;
      return {positions: [...s.portfolio.positions.keys()], orders: [...s.portfolio.orders.keys()],
              trades: s.portfolio.trades.map(t => t.tradeId), lastSeq: s.lastSeq,
              removed: window.__log.filter(e => e[0] === 'position' && e[2].removed).map(e => e[1].symbol),
              sources: [...new Set(window.__log.filter(e => e[0] === 'position').map(e => e[2].source))]};
    }""")
    assert state["positions"] == ["AAPL"]
    assert state["removed"] == ["MSFT"]
    assert state["orders"] == ["order-9"] and state["trades"] == ["trade-9"]
    assert sorted(state["sources"]) == ["live", "snapshot"]
    assert state["lastSeq"] == server.service.core.portfolio(user)[0]


async def test_close_policy_and_backoff(browser: Any, servers: Any) -> None:
    """The module the dashboard loads follows the close-policy table of constants, by code and cause."""
    from portfolio_ws import constants as c

    server = await servers.start()
    page = await new_page(await browser.new_context(bypass_csp=True))  # page-evaluated code (see open_stream)
    await page.goto(server.url + "/api/health")
    cases = [[int(code), cause.value] for cause, (code, _) in c.CLOSE_CAUSES.items()]
    cases += [[code, None] for code in (1000, 1001, 1006, 1008, 1009, 1011, 1013, 4000)]
    cases += [[1006, "SESSION_EXPIRED"], [1013, "NOT_A_CAUSE"]]
    result = await page.evaluate("""async (cases) => {
      const {closePolicy, backoffDelay} = await import("/static/portfolio-stream.js");
      const policy = cases.map(([code, cause]) => closePolicy(code, cause));
      const opts = {baseDelayMs: 1000, maxDelayMs: 30000};
      const top = [0, 1, 2, 5, 10].map(a => backoffDelay(a, opts, () => 0.999999));
      const bottom = backoffDelay(3, opts, () => 0);
      return {policy, top, bottom};
    }""", cases)
    assert result["policy"] == [{"action": c.close_policy(code, cause).action, "delay": c.close_policy(code, cause).delay}
                                for code, cause in cases]
    assert result["policy"][cases.index([1000, None])]["action"] == "stop"  # a server's 1000 is final too
    assert [round(d) for d in result["top"]] == [1000, 2000, 4000, 30000, 30000]
    assert result["bottom"] == 0


async def test_streaming_disabled_polls_rest(browser: Any, servers: Any) -> None:
    server = await servers.start(streaming__enabled=False)
    page = await open_stream(browser, server, "carol")
    user = server.users.by_username("carol").user_id
    await page.wait_for_function("window.__stream.status === 'polling'")
    assert await page.evaluate("window.__stream.pollReason") == "disabled"
    server.publish(position(user, "IBM", "7", "190.00", "180.00"))
    await page.wait_for_function("window.__stream.portfolio.positions.has('IBM')")
    sources = await page.evaluate("[...new Set(window.__log.filter(e => e[0] === 'position').map(e => e[2].source))]")
    assert sources == ["poll"]
    # The socket is retried meanwhile (socketRetryMs) and refused again: still polling.
    await page.wait_for_function("window.__log.filter(e => e[0] === 'close').length >= 2")
    closes = await page.evaluate("window.__log.filter(e => e[0] === 'close').map(e => [e[1].code, e[1].reason])")
    assert set(map(tuple, closes)) == {(1013, "Realtime streaming disabled")}
    assert await page.evaluate("window.__stream.status") == "polling"
