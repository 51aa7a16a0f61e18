"""``portfolio-ws serve``: settings from config.yaml < environment < flags; a bad setting prints one
line naming the key and exits 2, before anything listens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import cli
from portfolio_ws.commands import serve as serve_command
from portfolio_ws.settings import Settings
from tests import ROOT


@pytest.fixture(autouse=True)
def isolated(empty_environment: None) -> None:
    """Every test here in an empty directory, with no variable of the service set (tests/conftest.py)."""


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Replaces the server itself: records the settings ``serve`` would have run with."""
    runs: list[Settings] = []

    async def fake_serve(settings: Settings, **kwargs: Any) -> None:
        runs.append(settings)

    monkeypatch.setattr(serve_command, "serve", fake_serve)
    return runs


def serve(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.main, ["serve", *args], env=env)


def assert_bad_setting(result: Result, key: str, started: list[Settings]) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and key in lines[0], lines[0]
    assert not started, "the server must not start with a bad setting"
    return lines[0]


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_help_lists_the_options(started):
    result = serve("--help")
    assert result.exit_code == 0, result.output
    for option in ("--config", "--host", "--port", "--feed", "--database"):
        assert option in result.stdout
    assert not started


def test_bad_environment_value_names_the_key(started):
    line = assert_bad_setting(serve(env={"PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS": "abc"}),
                              "limits.total_connections", started)
    assert "abc" in line


def test_bad_feature_flag_names_the_key(started):
    assert_bad_setting(serve(env={"ENABLE_REALTIME_PORTFOLIO": "maybe"}), "streaming.enabled", started)


def test_unknown_environment_key_in_a_known_section_is_an_error(started):
    assert_bad_setting(serve(env={"PORTFOLIO_WS_SERVER_PROT": "6000"}), "server.prot", started)


def test_unknown_key_in_the_config_file_names_it(tmp_path, started):
    config = write(tmp_path / "settings.yaml", "server:\n  prot: 6000\n")
    assert_bad_setting(serve("--config", config), "server.prot", started)


def test_unknown_section_in_the_config_file_names_it(tmp_path, started):
    config = write(tmp_path / "settings.yaml", "servr:\n  port: 6000\n")
    assert_bad_setting(serve("--config", config), "servr", started)


def test_out_of_range_value_in_the_config_file_names_it(tmp_path, started):
    config = write(tmp_path / "settings.yaml", "streaming:\n  batch_window_ms: -5\n")
    assert_bad_setting(serve("--config", config), "streaming.batch_window_ms", started)


def test_invalid_yaml_says_where(tmp_path, started):
    config = write(tmp_path / "settings.yaml", "server:\n  port: [6000\n")
    line = assert_bad_setting(serve("--config", config), "config", started)
    assert "settings.yaml" in line and "YAML" in line


def test_the_default_config_yaml_is_read_and_checked_too(tmp_path, started):
    write(tmp_path / "config.yaml", "limits:\n  connections_per_user: many\n")
    assert_bad_setting(serve(), "limits.connections_per_user", started)


def test_a_missing_config_file_is_a_bad_setting(tmp_path, started):
    assert_bad_setting(serve("--config", str(tmp_path / "nope.yaml")), "config", started)


def test_a_bad_flag_value_names_the_key(started):
    assert_bad_setting(serve("--port", "0"), "server.port", started)


def test_a_non_numeric_port_flag_is_a_usage_error(started):
    result = serve("--port", "abc")
    assert result.exit_code == 2 and "--port" in result.stderr
    assert not started


def test_flags_beat_the_environment_which_beats_the_file(tmp_path, started):
    write(tmp_path / "config.yaml", "server:\n  port: 6000\nstreaming:\n  batch_window_ms: 250\n")
    env = {"PORTFOLIO_WS_SERVER_PORT": "6001", "ENABLE_REALTIME_PORTFOLIO": "false"}
    assert serve(env=env).exit_code == 0
    assert serve("--port", "6002", "--feed", "none", "--database", "x.sqlite3", env=env).exit_code == 0
    from_env, from_flags = started
    assert (from_env.server.port, from_env.streaming.enabled, from_env.streaming.batch_window_ms) == (6001, False, 250)
    assert from_flags.server.port == 6002
    assert (from_flags.feed.source, from_flags.auth.database) == ("none", "x.sqlite3")


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
def test_a_real_process_prints_one_line_and_exits_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_WS_")}
    env.update(PYTHONPATH=str(ROOT), PORTFOLIO_WS_LIMITS_TOTAL_CONNECTIONS="abc")
    done = subprocess.run([sys.executable, "-m", "cli", "serve", "--feed", "none"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()] and "limits.total_connections" in done.stderr
