"""The app factory (server/app.py) hands each handler the few parts it uses, never the service as
a whole (issue 12: a thin Service, no service locator)."""

from __future__ import annotations

from typing import Any

from portfolio_ws.server.service import Service


def _kwargs(app: Any) -> list[tuple[str, dict[str, Any]]]:
    rules = app.wildcard_router.rules
    return [(str(rule.matcher), rule.target_kwargs) for rule in rules]


async def test_no_handler_is_given_the_whole_service(make_server):
    server = await make_server()
    routes = _kwargs(server.http.request_callback)
    assert len(routes) >= 10
    given = [(route, key) for route, kwargs in routes for key, value in kwargs.items() if isinstance(value, Service)]
    # The two stream handlers see it only as their narrow Stream protocols (ws.Stream, http.Stream).
    assert {key for _, key in given} <= {"stream"}, given
    for _, kwargs in routes:
        for value in kwargs.values():
            assert not isinstance(value, dict) or not any(isinstance(v, Service) for v in value.values())


def test_the_service_makes_no_login_limits_password_queue_or_equity_history():
    service = Service.__init__.__code__.co_names
    for name in ("login_throttle", "HashQueue", "EquityHistory", "TrustedProxies", "Publishing"):
        assert name not in service, name
