"""Every setting of ``Settings``, walked from the schema itself (a setting added tomorrow is walked
too), with bad values for its type and for its rule in ``portfolio_ws.settings_rules``: ``serve`` and
``simulate`` each stop with one line naming the key and exit 2, before anything is served or a
password printed, whether the value comes from the YAML file or the environment."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from click.testing import CliRunner, Result

import cli
from portfolio_ws.commands import serve as serve_command
from portfolio_ws.commands import simulate as simulate_command
from portfolio_ws.config import ENV_PREFIX, load_settings
from portfolio_ws.errors import ConfigError
from portfolio_ws.settings import Settings
from portfolio_ws.settings_rules import RULES, check_environment, rule_for

# A valid Alpaca account: the walk changes one field of it at a time.
ACCOUNT = {"user": "alice", "key_env": "ALICE_KEY", "secret_env": "ALICE_SECRET", "paper": True}
# A valid item of each section's ``accounts`` list, one field of which a case makes bad.
ACCOUNTS = {"alpaca": ACCOUNT,
            "alpaca_broker": {"user": "alice", "account_id": "6f2c9b1e-3a4d-4e5f-8a7b-1c2d3e4f5a6b"}}


@dataclasses.dataclass(frozen=True)
class Leaf:
    key: str          # dotted, as the error names it (alpaca.accounts[0].user)
    kind: Any         # the type hint
    default: Any


def leaves(cls: type = Settings, prefix: str = "") -> Iterator[Leaf]:
    hints = typing.get_type_hints(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        kind, key = hints[f.name], f"{prefix}{f.name}"
        item = _tuple_item(kind)
        if dataclasses.is_dataclass(kind):
            yield from leaves(kind, key + ".")  # type: ignore[arg-type]
        elif item is not None and dataclasses.is_dataclass(item):
            yield Leaf(key, kind, getattr(instance, f.name))
            yield from leaves(item, f"{key}[0].")  # type: ignore[arg-type]
        else:
            yield Leaf(key, kind, getattr(instance, f.name))


def _tuple_item(kind: Any) -> Any:
    return typing.get_args(kind)[0] if typing.get_origin(kind) is tuple else None


def _base(kind: Any) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(kind) if a is not type(None))
    return kind


def bad_values(leaf: Leaf) -> list[tuple[str, Any]]:
    """(the key the error must name, a bad value) for one setting: its type's, then its rule's."""
    kind = _base(leaf.kind)
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        out: list[tuple[str, Any]] = [(leaf.key, "bogus"), (leaf.key, 3)]
    elif kind is bool:
        out = [(leaf.key, "maybe"), (leaf.key, 2)]
    elif kind is int:
        out = [(leaf.key, "abc"), (leaf.key, 1.5)]
    elif kind is float:
        out = [(leaf.key, "abc"), (leaf.key, "nan")]
    elif kind is str:
        out = [(leaf.key, ["a", "list"])]
    elif origin is tuple:
        out = [(leaf.key, {"a": "mapping"})]
        item = typing.get_args(kind)[0]
        rule = RULES.get(leaf.key + "[]")
        if not dataclasses.is_dataclass(item) and rule is not None:
            out += [(f"{leaf.key}[0]", [bad]) for bad in rule.bad_examples("")]
        return out
    else:
        raise AssertionError(f"{leaf.key}: teach this walk the setting type {kind!r}")
    rule = rule_for(leaf.key, leaf.default)
    if rule is not None:
        out += [(leaf.key, bad) for bad in rule.bad_examples(leaf.default)]
    return out


CASES = [(key, bad) for leaf in leaves() for key, bad in bad_values(leaf)]


def as_yaml(key: str, value: Any) -> dict[str, Any]:
    """The config file setting ``key`` (a leaf, or an item's first element) to ``value``."""
    section, _, rest = key.partition(".")
    if rest.startswith("accounts[0]."):
        return {section: {"accounts": [{**ACCOUNTS[section], rest.split(".", 1)[1]: value}]}}
    return {section: {rest.split("[")[0]: value}}


def as_env(key: str, value: Any) -> dict[str, str] | None:
    """The environment variable setting ``key`` to ``value``, when a variable can say it."""
    if "accounts[" in key or isinstance(value, dict):
        return None
    if isinstance(value, list):
        if not all(isinstance(v, str) and "," not in v for v in value) or "[" not in key:
            return None
        value = ",".join(value)
    section, _, name = key.split("[")[0].partition(".")
    return {f"{ENV_PREFIX}{section}_{name}".upper(): str(value).lower() if isinstance(value, bool) else str(value)}


@pytest.fixture(autouse=True)
def isolated(empty_environment: None) -> None:
    """Every test here in an empty directory, with no variable of the service set (tests/conftest.py)."""


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stands in for the server: a bad setting must stop the command before it gets here."""
    runs: list[str] = []

    async def would_serve(settings: Settings, **kwargs: Any) -> None:
        runs.append("served")

    monkeypatch.setattr(serve_command, "serve", would_serve)
    monkeypatch.setattr(simulate_command, "serve", would_serve)
    return runs


def assert_stopped(result: Result, key: str, started: list[str]) -> None:
    assert result.exit_code == 2, (key, result.exit_code, result.output, result.exception)
    assert result.stdout == "", (key, result.stdout)          # no banner, no demo passwords
    lines = result.stderr.splitlines()
    assert len(lines) == 1, (key, result.stderr)
    assert lines[0].startswith(f"Error: invalid setting {key}: "), (key, lines[0])
    assert not started, f"{key}: served with a bad value"


def test_the_walk_covers_every_setting_and_every_rule() -> None:
    keys = {leaf.key for leaf in leaves()}
    assert {"server.port", "simulator.start", "simulator.margin", "alpaca.accounts[0].key_env",
            "logging.json"} <= keys
    walked = {key.split("[0]")[0] if key.endswith("[0]") else key for key, _ in CASES}
    assert keys <= walked
    for rule_key in RULES:
        assert rule_key.replace("[]", "[0]") in {k for k, _ in CASES} | keys, f"{rule_key} names no setting"


def test_the_defaults_keep_every_rule() -> None:
    assert load_settings() == Settings()


@pytest.mark.parametrize("key, value", CASES, ids=[f"{k}={v!r}" for k, v in CASES])
def test_a_bad_value_in_the_file_stops_serve_and_simulate(key: str, value: Any, tmp_path: Path,
                                                         started: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(as_yaml(key, value)), encoding="utf-8")
    for command in ("serve", "simulate"):
        assert_stopped(CliRunner().invoke(cli.main, [command, "--config", str(path)]), key, started)


ENV_CASES = [(key, env) for key, value in CASES if (env := as_env(key, value)) is not None]


@pytest.mark.parametrize("key, env", ENV_CASES, ids=[f"{next(iter(e.items()))}" for _, e in ENV_CASES])
def test_a_bad_value_in_the_environment_stops_serve_and_simulate(key: str, env: dict[str, str],
                                                                started: list[str]) -> None:
    for command in ("serve", "simulate"):
        assert_stopped(CliRunner().invoke(cli.main, [command], env=env), key, started)


@pytest.mark.parametrize("args", [["--start", "yesterday"], ["--speed", "0"], ["--users", "0"],
                                  ["--symbols", "-1"], ["--port", "70000"], ["--seed", "-1"]])
def test_a_bad_flag_stops_simulate(args: list[str], started: list[str]) -> None:
    key = {"--start": "simulator.start", "--speed": "simulator.speed", "--users": "simulator.users",
           "--symbols": "simulator.symbols", "--port": "server.port", "--seed": "simulator.seed"}[args[0]]
    assert_stopped(CliRunner().invoke(cli.main, ["simulate", *args]), key, started)


# ---- settings that only make sense together, and what they need from the environment -------------
def test_alpaca_feed_with_no_account_keys_in_the_environment_refuses(tmp_path: Path, started: list[str]) -> None:
    path = tmp_path / "alpaca.yaml"
    path.write_text(yaml.safe_dump({"alpaca": {"accounts": [ACCOUNT, {**ACCOUNT, "user": "bob",
                                                                      "key_env": "BOB_KEY", "secret_env": "BOB_SECRET"}]}}))
    result = CliRunner().invoke(cli.main, ["serve", "--feed", "alpaca", "--config", str(path)],
                                env={"ALICE_KEY": None, "ALICE_SECRET": None, "BOB_KEY": None, "BOB_SECRET": None})
    assert_stopped(result, "alpaca.accounts", started)
    assert "ALICE_KEY" in result.stderr and "BOB_SECRET" in result.stderr
    # No mapping at all: refused too.
    assert_stopped(CliRunner().invoke(cli.main, ["serve", "--feed", "alpaca"]), "alpaca.accounts", started)
    # One account with its keys is enough: the others are reported by /api/health.
    result = CliRunner().invoke(cli.main, ["serve", "--feed", "alpaca", "--config", str(path)],
                                env={"BOB_KEY": "k", "BOB_SECRET": "s"})
    assert result.exit_code == 0, result.output
    assert started == ["served"]


def test_the_alpaca_feed_with_only_linked_accounts_starts(started: list[str]) -> None:
    from portfolio_ws.auth.linked import new_key

    result = CliRunner().invoke(cli.main, ["serve", "--feed", "alpaca"],
                                env={"PORTFOLIO_WS_ACCOUNTS_KEY": new_key()})
    assert result.exit_code == 0, result.output
    assert started == ["served"]
    with pytest.raises(ConfigError, match="or accounts.key for linked accounts"):
        check_environment(load_settings(overrides={"feed.source": "alpaca"}), {})


def test_a_bad_accounts_key_is_named_never_quoted(started: list[str]) -> None:
    result = CliRunner().invoke(cli.main, ["serve", "--feed", "alpaca"],
                                env={"PORTFOLIO_WS_ACCOUNTS_KEY": "my-secret-passphrase"})
    assert_stopped(result, "accounts.key", started)
    assert "my-secret-passphrase" not in result.output


def test_check_environment_only_asks_the_alpaca_feed() -> None:
    check_environment(load_settings(overrides={"feed.source": "none"}), {})
    with pytest.raises(ConfigError) as info:
        check_environment(load_settings(overrides={"feed.source": "alpaca"}), {})
    assert info.value.key == "alpaca.accounts"


def test_the_broker_feed_needs_its_key_in_the_environment(started: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        check_environment(load_settings(overrides={"feed.source": "alpaca-broker"}), {"ALPACA_BROKER_KEY": "CK1"})
    assert info.value.key == "alpaca_broker.key_env" and "ALPACA_BROKER_SECRET not set" in str(info.value)
    assert "CK1" not in str(info.value)
    check_environment(load_settings(overrides={"feed.source": "alpaca-broker"}),
                      {"ALPACA_BROKER_KEY": "CK1", "ALPACA_BROKER_SECRET": "s"})
    assert_stopped(CliRunner().invoke(cli.main, ["serve", "--feed", "alpaca-broker"]), "alpaca_broker.key_env", started)


@pytest.mark.parametrize("overrides, key", [
    ({"server.certfile": __file__}, "server.keyfile"),
    ({"server.keyfile": __file__}, "server.certfile"),
    ({"server.workers": 2}, "server.workers"),
    ({"alpaca.accounts": [ACCOUNT, ACCOUNT]}, "alpaca.accounts[1].user"),
    ({"alpaca_broker.accounts": [ACCOUNTS["alpaca_broker"]] * 2}, "alpaca_broker.accounts[1].user"),
])
def test_settings_that_go_together(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(overrides=overrides)
    assert info.value.key == key
