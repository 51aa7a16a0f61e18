"""portfolio-stream.js timing behaviour that a healthy server never shows, in Chromium with a
scripted WebSocket (options.WebSocket) and fetch: a missing pong, a socket that never opens, and
the live/delayed/stale clock. Timings are shrunk through the options."""

from __future__ import annotations

from typing import Any

from tests.process.browser.conftest import new_page

# A WebSocket stand-in: window.__mode decides what each new socket does ("silent": accepts, never
# pongs; "refuse": closes 1006 without opening; "healthy": accepts and pongs).
FAKE = """() => {
  window.__sockets = [];
  window.__mode = "silent";
  window.FakeWS = class {
    constructor(url) {
      this.url = url; this.sent = []; this.closedWith = null; this.mode = window.__mode;
      window.__sockets.push(this);
      setTimeout(() => {
        if (this.mode === "refuse") return this.onclose && this.onclose({code: 1006, reason: ""});
        this.onopen && this.onopen();
      }, 5);
    }
    push(message) { setTimeout(() => this.onmessage && this.onmessage({data: JSON.stringify(message)}), 1); }
    send(raw) {
      const m = JSON.parse(raw);
      this.sent.push(m);
      if (m.type === "subscribe") {
        this.push({type: "info", data: {code: "CONNECTED", details: {connectionId: "fake"}}});
        this.push({type: "snapshot", seq: 42, data: {positions: [], orders: [], account: null, trades: []}});
      }
      if (m.type === "ping" && this.mode === "healthy") this.push({type: "pong", data: {}});
    }
    close(code, reason) { this.closedWith = [code, reason]; }
  };
  window.__polls = 0;
  window.fakeFetch = async () => {
    window.__polls += 1;
    return {ok: true, status: 200, json: async () => ({type: "snapshot", seq: 7, data: {
      positions: [{symbol: "AAPL", quantity: "1"}], orders: [], account: null, trades: []}})};
  };
}"""

START = """async (options) => {
  const {PortfolioStream} = await import("/static/portfolio-stream.js");
  window.__events = [];
  const record = (name) => (...args) => window.__events.push([name, ...args]);
  window.__stream = new PortfolioStream({url: "ws://fake/", WebSocket: window.FakeWS, fetch: window.fakeFetch,
    onStatus: record("status"), onStaleness: record("staleness"), onClose: record("close"), ...options});
  window.__stream.start();
}"""


async def fake_page(browser: Any, servers: Any, mode: str, **options: Any) -> Any:
    server = await servers.start()
    page = await new_page(await browser.new_context(bypass_csp=True))  # page-evaluated code (see open_stream)
    await page.goto(server.url + "/api/health")
    await page.evaluate(FAKE)
    await page.evaluate(f"window.__mode = {mode!r}")
    await page.evaluate(START, options)
    return page


async def test_no_pong_reconnects_and_resumes(browser: Any, servers: Any) -> None:
    page = await fake_page(browser, servers, "silent", pingIntervalMs=100, pongTimeoutMs=150, baseDelayMs=10,
                           maxDelayMs=20)
    await page.wait_for_function("window.__sockets.length >= 2 && window.__sockets[1].sent.length > 0")
    first, second = await page.evaluate("[window.__sockets[0], window.__sockets[1]].map(s => ({sent: s.sent, closedWith: s.closedWith}))")
    assert [m["type"] for m in first["sent"]] == ["subscribe", "ping"]
    assert "resumeFrom" not in first["sent"][0]
    assert first["closedWith"] == [4000, "Pong timeout"]
    assert second["sent"][0] == {"type": "subscribe", "channels": ["positions", "orders", "account", "trades"],
                                 "resumeFrom": 42}
    statuses = await page.evaluate("window.__events.filter(e => e[0] === 'status').map(e => e[1])")
    assert statuses[:4] == ["connecting", "connected", "reconnecting", "connected"]


async def test_ten_failed_attempts_poll_then_socket_retry(browser: Any, servers: Any) -> None:
    page = await fake_page(browser, servers, "refuse", baseDelayMs=5, maxDelayMs=20, pollIntervalMs=50,
                           socketRetryMs=500)
    await page.wait_for_function("window.__stream.status === 'polling'")
    assert await page.evaluate("[window.__sockets.length, window.__stream.pollReason]") == [10, "unreachable"]
    await page.wait_for_function("window.__stream.portfolio.positions.has('AAPL') && window.__polls >= 2")
    # While polling the socket is retried every socketRetryMs; once it connects, polling stops.
    await page.wait_for_function("window.__sockets.length >= 11")
    assert await page.evaluate("window.__stream.status") == "polling"
    await page.evaluate("window.__mode = 'healthy'")
    await page.wait_for_function("window.__stream.status === 'connected'")
    polls = await page.evaluate("window.__polls")
    assert await page.evaluate("window.__sockets[window.__sockets.length - 1].sent[0].resumeFrom") == 7
    await page.wait_for_function("window.__stream.lastSeq === 42")   # the snapshot after connecting
    assert await page.evaluate("[window.__stream.pollReason, '_timers' in window.__stream && "
                               "'poll' in window.__stream._timers]") == [None, False]
    assert await page.evaluate("window.__polls") == polls


async def test_staleness_live_delayed_stale(browser: Any, servers: Any) -> None:
    page = await fake_page(browser, servers, "silent", liveMs=150, delayedMs=400, stalenessCheckMs=20)
    await page.wait_for_function("window.__events.filter(e => e[0] === 'staleness').length >= 3")
    levels = await page.evaluate("window.__events.filter(e => e[0] === 'staleness').map(e => e[1])")
    assert levels[:3] == ["live", "delayed", "stale"]
