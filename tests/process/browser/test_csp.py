"""The dashboard under the server's Content-Security-Policy header (server/headers.py) in real
Chromium: logged in and streaming, no CSP violation and no console error; the policy forbids
framing it."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from portfolio_ws.server.headers import CONTENT_SECURITY_POLICY
from tests.process.browser.conftest import new_page
from tests.process.browser.dashboard import log_in, seed

# Every violation of the page's policy, recorded before any of its own scripts run.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


async def test_the_dashboard_runs_under_the_policy_without_a_violation(browser: Any, servers: Any) -> None:
    server = await servers.start(streaming__batch_window_ms=200)
    seed(server, server.add_user("alice").user_id)
    errors: list[str] = []
    page = await new_page(await browser.new_context(viewport={"width": 1280, "height": 900}), errors)
    await page.add_init_script(RECORD_VIOLATIONS)
    response = await page.goto(server.url + "/")
    assert response is not None and response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY" and "server" not in response.headers
    await log_in(page, server, "alice")
    await expect(page.locator("#conn")).to_have_attribute("data-status", "connected")
    await expect(page.locator("#acct-equity")).not_to_have_text("—")
    await page.reload()  # a second load with the session cookie: straight to the dashboard
    await expect(page.locator("#conn")).to_have_attribute("data-status", "connected")
    assert await page.evaluate("window.__violations") == []
    assert [e for e in errors if "Content Security Policy" in e or "pageerror" in e] == []


async def test_another_site_cannot_frame_the_dashboard(browser: Any, servers: Any) -> None:
    server = await servers.start()
    page = await new_page(await browser.new_context())
    messages: list[str] = []
    page.on("console", lambda msg: messages.append(msg.text))
    # A page of no origin of ours, without a policy of its own, frames the dashboard.
    await page.set_content(f'<iframe id="f" src="{server.url}/"></iframe>', wait_until="load")
    [framed] = [f for f in page.frames if f is not page.main_frame]
    assert "login-form" not in await framed.content(), (framed.url, messages)
    assert any("frame-ancestors" in m for m in messages), (framed.url, messages)
