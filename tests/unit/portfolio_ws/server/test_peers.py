"""Client addresses behind trusted proxies and allowed Origins (portfolio_ws/server/peers.py), and
the validation of the settings they read."""

from __future__ import annotations

from typing import Any

import pytest

from portfolio_ws.config import load_settings
from portfolio_ws.errors import ConfigError
from portfolio_ws.server.peers import TrustedProxies, origin_allowed

PROXIES = TrustedProxies.from_cidrs(["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"])


@pytest.mark.parametrize("peer, headers, client", [
    ("203.0.113.9", {"X-Forwarded-For": "1.2.3.4"}, "203.0.113.9"),          # untrusted peer: headers ignored
    ("203.0.113.9", {"X-Real-IP": "1.2.3.4"}, "203.0.113.9"),
    ("10.1.2.3", {}, "10.1.2.3"),                                             # trusted, no header: the proxy
    ("10.1.2.3", {"X-Forwarded-For": "198.51.100.7"}, "198.51.100.7"),
    ("10.1.2.3", {"X-Forwarded-For": "6.6.6.6, 198.51.100.7"}, "198.51.100.7"),  # the client's own entry ignored
    ("10.1.2.3", {"X-Forwarded-For": "198.51.100.7, 10.9.9.9"}, "198.51.100.7"),  # past every trusted hop
    ("10.1.2.3", {"X-Forwarded-For": "10.8.8.8, 10.9.9.9"}, "10.8.8.8"),      # all trusted: the leftmost
    ("10.1.2.3", {"X-Forwarded-For": "198.51.100.7, garbage"}, "10.1.2.3"),   # unparseable: no further
    ("10.1.2.3", {"X-Forwarded-For": "198.51.100.7:5555"}, "198.51.100.7"),
    ("10.1.2.3", {"X-Forwarded-For": "[2001:db9::5]:443"}, "2001:db9::5"),
    ("10.1.2.3", {"X-Real-IP": "198.51.100.8"}, "198.51.100.8"),
    ("10.1.2.3", {"X-Real-IP": "not an address"}, "10.1.2.3"),
    ("2001:db8::1", {"X-Forwarded-For": "198.51.100.7"}, "198.51.100.7"),
    ("::ffff:192.0.2.1", {"X-Forwarded-For": "198.51.100.7"}, "198.51.100.7"),  # IPv4-mapped
    ("192.0.2.2", {"X-Forwarded-For": "198.51.100.7"}, "192.0.2.2"),
])
def test_the_client_address_comes_from_headers_only_through_a_trusted_proxy(peer: str, headers: Any, client: str):
    assert PROXIES.client_address(peer, headers) == client


def test_with_no_trusted_proxies_the_peer_is_the_client():
    assert TrustedProxies().client_address("127.0.0.1", {"X-Forwarded-For": "1.2.3.4"}) == "127.0.0.1"
    assert TrustedProxies().client_address(None, {}) == "unknown"


def test_origins():
    assert origin_allowed("http://127.0.0.1:5000", "127.0.0.1:5000", ())
    assert not origin_allowed("http://127.0.0.1:5001", "127.0.0.1:5000", ())
    assert not origin_allowed("null", "127.0.0.1:5000", ())
    assert origin_allowed("https://App.example/", "x", ("https://app.example",))
    assert not origin_allowed("http://127.0.0.1:5000", "127.0.0.1:5000", ("https://app.example",))


@pytest.mark.parametrize("key, value, named", [
    ("server.trusted_proxies", ["10.0.0.0/8", "10.0.0.0/33"], "server.trusted_proxies[1]"),
    ("server.trusted_proxies", "proxy.local", "server.trusted_proxies[0]"),
    ("auth.login_failures_per_user_address", 0, "auth.login_failures_per_user_address"),
    ("auth.login_user_delay_seconds", -1, "auth.login_user_delay_seconds"),
    ("auth.login_user_max_delay_seconds", "soon", "auth.login_user_max_delay_seconds"),
    ("auth.hash_workers", 0, "auth.hash_workers"),
    ("auth.hash_queue_size", -1, "auth.hash_queue_size"),
])
def test_bad_login_settings_name_their_key(key: str, value: Any, named: str):
    with pytest.raises(ConfigError) as error:
        load_settings(overrides={key: value})
    assert str(error.value).startswith(named), str(error.value)


def test_trusted_proxies_from_the_environment():
    settings = load_settings(env={"PORTFOLIO_WS_SERVER_TRUSTED_PROXIES": "10.0.0.0/8, ::1"})
    assert settings.server.trusted_proxies == ("10.0.0.0/8", "::1")
