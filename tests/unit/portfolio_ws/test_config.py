"""Settings loading: defaults < YAML < environment < overrides; every bad value is a ConfigError
naming its dotted key; unknown keys are errors; the shipped config.yaml is exactly the defaults."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from portfolio_ws.config import default_config_path, load_settings
from portfolio_ws.errors import ConfigError
from portfolio_ws.settings import AlpacaAccount, Settings
from tests import ROOT



def yaml_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def bad(key: str, **sources: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(**sources)
    assert info.value.key == key, str(info.value)
    assert str(info.value).startswith(f"{key}: ")
    return info.value


# ---- the shipped file ------------------------------------------------------------------------------
def test_repo_config_yaml_is_exactly_the_defaults() -> None:
    path = ROOT / "config.yaml"
    assert path.is_file(), "config.yaml at the repo root mirrors portfolio_ws/settings.py"
    assert load_settings(path) == Settings()


# ---- precedence ------------------------------------------------------------------------------------
def test_nothing_given_is_the_defaults() -> None:
    assert load_settings() == Settings()
    assert load_settings(None, {}, {}) == Settings()


def test_defaults_are_the_protocol_defaults() -> None:
    s = Settings()
    assert (s.server.host, s.server.port) == ("127.0.0.1", 5000)
    assert s.streaming.enabled and s.streaming.batch_window_ms == 1000
    assert s.streaming.immediate_channels == ("orders", "trades")
    assert s.streaming.max_message_bytes == 4096  # PROTOCOL.md: what a subscribe needs, a few KiB
    assert (s.limits.connections_per_user, s.limits.total_connections) == (5, 100)
    assert (s.limits.messages_per_second, s.limits.rate_limit_close_after_seconds) == (100.0, 5.0)
    assert (s.recovery.max_events, s.recovery.max_age_seconds) == (1000, 300.0)


def test_yaml_over_defaults(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, "server:\n  port: 6000\nlimits:\n  total_connections: 7\n")
    s = load_settings(path)
    assert s.server.port == 6000 and s.limits.total_connections == 7
    assert s.server.host == "127.0.0.1" and s.limits.connections_per_user == 5  # untouched


def test_env_over_yaml(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, "server:\n  port: 6000\n  host: 0.0.0.0\n")
    s = load_settings(path, {"PORTFOLIO_WS_SERVER_PORT": "7000", "UNRELATED": "x"})
    assert s.server.port == 7000 and s.server.host == "0.0.0.0"


def test_overrides_over_env(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, "server:\n  port: 6000\n")
    s = load_settings(path, {"PORTFOLIO_WS_SERVER_PORT": "7000"}, {"server.port": 8000})
    assert s.server.port == 8000


def test_none_override_means_not_given() -> None:
    s = load_settings(None, {"PORTFOLIO_WS_SERVER_PORT": "7000"}, {"server.port": None})
    assert s.server.port == 7000


def test_env_names_map_to_section_and_key() -> None:
    s = load_settings(None, {
        "PORTFOLIO_WS_LIMITS_CONNECTIONS_PER_USER": "3",
        "PORTFOLIO_WS_LIMITS_MESSAGES_PER_SECOND": "12.5",
        "PORTFOLIO_WS_RECOVERY_MAX_AGE_SECONDS": "60",
        "PORTFOLIO_WS_AUTH_ADMIN_TOKEN": "s3cret",
        "PORTFOLIO_WS_LOGGING_LEVEL": "debug",
        "PORTFOLIO_WS_FEED_SOURCE": "none",
        "PORTFOLIO_WS_SERVER_ALLOWED_ORIGINS": "https://a.example, https://b.example",
    })
    assert s.limits.connections_per_user == 3
    assert s.limits.messages_per_second == 12.5
    assert s.recovery.max_age_seconds == 60.0
    assert s.auth.admin_token == "s3cret"
    assert s.logging.level == "DEBUG"
    assert s.feed.source == "none"
    assert s.server.allowed_origins == ("https://a.example", "https://b.example")


def test_admin_token_is_not_in_the_repr() -> None:
    s = load_settings(None, {"PORTFOLIO_WS_AUTH_ADMIN_TOKEN": "s3cret"})
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize("value, enabled", [
    ("false", False), ("FALSE", False), ("0", False), ("no", False), ("off", False),
    ("true", True), ("True", True), ("1", True), ("yes", True), ("on", True),
])
def test_enable_realtime_portfolio_flag(value: str, enabled: bool) -> None:
    assert load_settings(None, {"ENABLE_REALTIME_PORTFOLIO": value}).streaming.enabled is enabled


def test_flag_over_yaml_and_overrides_over_flag(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, "streaming:\n  enabled: true\n")
    assert load_settings(path, {"ENABLE_REALTIME_PORTFOLIO": "false"}).streaming.enabled is False
    assert load_settings(path, {"ENABLE_REALTIME_PORTFOLIO": "false"},
                         {"streaming.enabled": True}).streaming.enabled is True
    assert load_settings(path, {"PORTFOLIO_WS_STREAMING_ENABLED": "off"}).streaming.enabled is False


def test_immediate_channels_from_env() -> None:
    s = load_settings(None, {"PORTFOLIO_WS_STREAMING_IMMEDIATE_CHANNELS": "trades"})
    assert s.streaming.immediate_channels == ("trades",)
    s = load_settings(None, {"PORTFOLIO_WS_STREAMING_IMMEDIATE_CHANNELS": ""})
    assert s.streaming.immediate_channels == ()  # everything waits for the window


def test_yaml_types(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, """
server:
  drain_seconds: 2
  allowed_origins: [https://app.example]
streaming:
  immediate_channels: []
  batch_window_ms: 250.0
logging:
  level: warning
  json: yes
alpaca:
  accounts:
    - user: alice
      key_env: ALICE_KEY
      secret_env: ALICE_SECRET
      paper: false
""")
    s = load_settings(path)
    assert s.server.drain_seconds == 2.0 and isinstance(s.server.drain_seconds, float)
    assert s.server.allowed_origins == ("https://app.example",)
    assert s.streaming.immediate_channels == ()
    assert s.streaming.batch_window_ms == 250 and isinstance(s.streaming.batch_window_ms, int)
    assert s.logging.level == "WARNING" and s.logging.json is True
    assert s.alpaca.accounts == (AlpacaAccount("alice", "ALICE_KEY", "ALICE_SECRET", False),)


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_settings(yaml_file(tmp_path, "")) == Settings()
    assert load_settings(yaml_file(tmp_path, "# nothing here\n")) == Settings()


def test_a_section_with_only_comments_is_the_defaults(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, "server:\n  # port: 5000\nalpaca:\n  # accounts: []\n")
    assert load_settings(path) == Settings()
    assert load_settings(path, overrides={"server.port": 6000}).server.port == 6000
    assert load_settings(path, {"PORTFOLIO_WS_SERVER_PORT": "6001"}).server.port == 6001


def test_settings_are_frozen_values() -> None:
    s = load_settings()
    assert replace(s.server, port=1) != s.server
    with pytest.raises(Exception):
        s.server.port = 1  # type: ignore[misc]


# ---- bad values --------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value", [
    ("server.port", "abc"),
    ("server.port", 0),
    ("server.port", -1),
    ("server.port", 70000),
    ("server.port", 5000.5),
    ("server.port", True),
    ("server.drain_seconds", "soon"),
    ("server.drain_seconds", 0),
    ("server.allowed_origins", {"a": 1}),
    ("server.host", ["a", "b"]),
    ("streaming.enabled", "maybe"),
    ("streaming.enabled", 2),
    ("streaming.batch_window_ms", 0),
    ("streaming.max_message_bytes", -5),
    ("limits.connections_per_user", 0),
    ("limits.total_connections", 1.5),
    ("limits.messages_per_second", "nan"),
    ("limits.messages_per_second", "inf"),
    ("limits.messages_per_second", 0),
    ("limits.rate_limit_burst", 0),
    ("recovery.max_events", -1),
    ("recovery.max_age_seconds", 0),
    ("auth.session_idle_seconds", -1),
    ("auth.external_session_url", "platform.local/api/auth/me"),
    ("auth.external_session_url", "ftp://platform/me"),
    ("auth.external_user_id_field", "user..id"),
    ("auth.external_cache_seconds", 0),
    ("server.event_loop", "trio"),
    ("feed.source", "kafka"),
    ("feed.source", 1),
    ("logging.level", "verbose"),
    ("alpaca.data_feed", "nyse"),
    ("simulator.speed", 0),
])
def test_bad_override_names_its_key(key: str, value: Any) -> None:
    bad(key, overrides={key: value})


def test_unknown_immediate_channel_names_its_item() -> None:
    # A typo here would silently make orders wait for the window.
    bad("streaming.immediate_channels[1]", overrides={"streaming.immediate_channels": ["trades", "ordrs"]})
    bad("streaming.immediate_channels[0]", env={"PORTFOLIO_WS_STREAMING_IMMEDIATE_CHANNELS": "quotes"})


@pytest.mark.parametrize("name, value, key", [
    ("PORTFOLIO_WS_SERVER_PORT", "http", "server.port"),
    ("PORTFOLIO_WS_SERVER_PORT", "99999", "server.port"),
    ("PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS", "abc", "limits.total_connections"),
    ("PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS", "0", "limits.total_connections"),
    ("PORTFOLIO_WS_RECOVERY_MAX_AGE_SECONDS", "-1", "recovery.max_age_seconds"),
    ("PORTFOLIO_WS_LOGGING_JSON", "sometimes", "logging.json"),
    ("ENABLE_REALTIME_PORTFOLIO", "maybe", "streaming.enabled"),
    ("ENABLE_REALTIME_PORTFOLIO", "", "streaming.enabled"),
])
def test_bad_env_value_names_its_key(name: str, value: str, key: str) -> None:
    bad(key, env={name: value})


def test_bad_yaml_value_names_its_key(tmp_path: Path) -> None:
    bad("limits.total_connections", config_path=yaml_file(tmp_path, "limits:\n  total_connections: lots\n"))
    bad("alpaca.accounts[0].paper", config_path=yaml_file(tmp_path, "alpaca:\n  accounts:\n    - paper: sure\n"))
    bad("alpaca.accounts", config_path=yaml_file(tmp_path, "alpaca:\n  accounts: 3\n"))


# ---- unknown keys --------------------------------------------------------------------------------------
def test_unknown_section_in_yaml(tmp_path: Path) -> None:
    error = bad("servr", config_path=yaml_file(tmp_path, "servr:\n  port: 6000\n"))
    assert "server" in error.message  # the known names are listed


def test_unknown_key_in_yaml(tmp_path: Path) -> None:
    bad("server.prot", config_path=yaml_file(tmp_path, "server:\n  prot: 6000\n"))
    bad("alpaca.accounts[0].secret", config_path=yaml_file(tmp_path, "alpaca:\n  accounts:\n    - secret: x\n"))


def test_unknown_key_in_env() -> None:
    bad("server.prot", env={"PORTFOLIO_WS_SERVER_PROT": "6000"})


def test_unknown_section_in_env() -> None:
    # A typo in the section must not silently fall back to the default either.
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"PORTFOLIO_WS_SERVR_PORT": "6000"})
    assert "PORTFOLIO_WS_SERVR_PORT" in str(info.value)


def test_unknown_override_key() -> None:
    bad("server.prot", overrides={"server.prot": 6000})
    bad("bogus", overrides={"bogus.port": 6000})


# ---- the file itself ---------------------------------------------------------------------------------------
def test_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    bad("server", config_path=yaml_file(tmp_path, "server: 5000\n"))
    bad("server", config_path=yaml_file(tmp_path, "server: 5000\n"), overrides={"server.port": 6000})
    bad("server", config_path=yaml_file(tmp_path, "server: 5000\n"), env={"PORTFOLIO_WS_SERVER_PORT": "6000"})


def test_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    bad("config", config_path=yaml_file(tmp_path, "- server\n- port\n"))


def test_invalid_yaml_says_where(tmp_path: Path) -> None:
    error = bad("config", config_path=yaml_file(tmp_path, "server:\n  port: [5000\n"))
    assert "line" in error.message


def test_missing_file(tmp_path: Path) -> None:
    bad("config", config_path=tmp_path / "nope.yaml")


def test_default_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_config_path() is None
    yaml_file(tmp_path, "")
    assert default_config_path() == Path("config.yaml")


def test_config_yaml_writes_down_every_setting():
    """Every setting of ``Settings`` appears in config.yaml (with its default and a comment)."""
    import dataclasses

    import yaml

    from portfolio_ws.settings import Settings

    written = yaml.safe_load((ROOT / "config.yaml").read_text())
    missing = [f"{section.name}.{f.name}"
               for section in dataclasses.fields(Settings)
               for f in dataclasses.fields(section.default_factory())  # type: ignore[misc]
               if f.name not in (written.get(section.name) or {})]
    assert missing == []
