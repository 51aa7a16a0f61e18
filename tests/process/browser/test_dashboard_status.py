"""The dashboard's connection indicator in Chromium: one state at a time from one source (the
stream's ``connectionState``), and a polling page back to live within 5 s of streaming returning."""

from __future__ import annotations

import json
import logging
from typing import Any

from playwright.async_api import expect

from tests.process.browser.conftest import FAST_OPTIONS, WAIT_MS, new_page
from tests.process.browser.dashboard import log_in, seed

expect.set_options(timeout=WAIT_MS)

STATE_WORDS = ["live", "delayed", "stale", "connecting", "reconnecting", "polling", "offline", "connected"]

# Records every rendering of the header's indicator (a MutationObserver sees each change).
WATCH_INDICATOR = """() => {
  const conn = document.getElementById("conn");
  const seen = window.__indicator = [];
  const record = () => seen.push({status: conn.dataset.status, state: conn.dataset.state,
                                  label: document.getElementById("conn-label").textContent,
                                  header: document.querySelector("header").innerText,
                                  at: Date.now()});
  new MutationObserver(record).observe(conn, {attributes: true, childList: true, subtree: true,
                                              characterData: true});
  record();
}"""


def words_in(text: str) -> list[str]:
    return [w for w in text.replace("·", " ").split() if w in STATE_WORDS]


async def test_server_down_shows_one_state(browser: Any, servers: Any, shoot: Any) -> None:
    server = await servers.start()
    user = server.add_user("dave").user_id
    seed(server, user)
    errors: list[str] = []
    page = await new_page(await browser.new_context(viewport={"width": 1400, "height": 900}), errors,
                          maxFailedAttempts=3)
    await log_in(page, server, "dave")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(page.locator("#conn-label")).to_have_text("live")
    await page.evaluate(WATCH_INDICATOR)

    # Down: reconnecting, then polling, whose polls fail: offline. Every rendering on the way shows
    # one state word, and never a fresh-data word ("live") without a connected socket.
    await servers.stop(server)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    await expect(page.locator("#conn-detail")).to_have_text("server unreachable, retrying")
    await shoot(page, "offline")
    seen = await page.evaluate("window.__indicator")
    assert {s["state"] for s in seen} >= {"live", "reconnecting", "offline"}
    for s in seen:
        assert s["label"] == s["state"]
        assert words_in(s["header"]) == [s["state"]], s
        if s["status"] != "connected":
            assert s["state"] not in ("live", "delayed", "stale"), s
    assert errors == []


async def test_polling_page_is_live_within_5_s_of_streaming_returning(browser: Any, servers: Any,
                                                                      shoot: Any) -> None:
    server = await servers.start(streaming__enabled=False)
    user = server.add_user("erin").user_id
    seed(server, user)
    errors: list[str] = []
    # The real socket retry schedule (not the tests' fast one), at its slowest: jitter always at the top.
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await new_page(context, errors, socketRetryMs=None)
    await page.add_init_script("window.PORTFOLIO_STREAM_OPTIONS.random = () => 0.999999;")
    await log_in(page, server, "erin")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "polling")
    await expect(page.locator("#conn-detail")).to_have_text("realtime streaming is off")
    await page.evaluate(WATCH_INDICATOR)
    # Let the retries reach their longest gap before streaming comes back.
    await page.evaluate("""() => new Promise((resolve) => {
      const closes = [];
      window.dashboard.stream.on("close", () => { closes.push(Date.now()); if (closes.length >= 4) resolve(); });
    })""")
    port = server.port
    await servers.stop(server)
    await servers.start(port=port, streaming__enabled=True)
    back_at = await page.evaluate("Date.now()")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    live_at = await page.evaluate("window.__indicator.find(s => s.state === 'live').at")
    assert live_at - back_at <= 5000, f"live {live_at - back_at} ms after streaming returned"
    await shoot(page, "live-again")
    for s in await page.evaluate("window.__indicator"):
        assert words_in(s["header"]) == [s["state"]], s
    assert errors == []


async def test_a_dashboard_load_is_quiet_in_the_log_and_the_console(browser: Any, servers: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    server = await servers.start()
    user = server.add_user("fay").user_id
    seed(server, user)
    page = await (await browser.new_context()).new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}") if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    await page.add_init_script(f"window.PORTFOLIO_STREAM_OPTIONS = {json.dumps(FAST_OPTIONS)};")

    await log_in(page, server, "fay")                      # a load logged out, then the login
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await page.reload()                                    # a load logged in
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(page.locator("#acct-equity")).not_to_have_text("—")
    assert console == []
    loud = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []
