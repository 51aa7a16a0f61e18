"""``portfolio-ws accounts link|list|unlink|rotate|new-key`` through click's CliRunner and the real
``cli.main``: secrets prompted unechoed or read from stdin, stored encrypted, never printed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import cli
from portfolio_ws.auth.linked import LinkedAccountStore, new_key
from portfolio_ws.commands import accounts
from tests.procs import add_users

KEY_ID, SECRET = "AKCLI000000000000042", "cli-secret-never-printed-0042"


@pytest.fixture(autouse=True)
def isolated(empty_environment: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here in an empty directory with only an accounts key set; returns the key."""
    key = new_key()
    monkeypatch.setenv("PORTFOLIO_WS_ACCOUNTS_KEY", key)
    return key


@pytest.fixture
def db(tmp_path: Path) -> str:
    database = str(tmp_path / "users.sqlite3")
    add_users(database, ["alice", "bob"])
    return database


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli.main, ["accounts", *args], input=input)


def test_link_from_stdin_list_and_unlink(db: str) -> None:
    linked = run("link", "alice", "--live", "--database", db, input=f"{KEY_ID}\n{SECRET}\n")
    assert linked.exit_code == 0, linked.output
    assert "Linked alice" in linked.output and "live" in linked.output and SECRET not in linked.output
    listed = run("list", "--database", db)
    assert listed.exit_code == 0
    line = next(row for row in listed.stdout.splitlines() if row.startswith("alice"))
    assert "AKCL****42" in line and "live" in line and line.rstrip().endswith("ok")
    assert KEY_ID not in listed.output and SECRET not in listed.output
    unlinked = run("unlink", "ALICE", "--database", db)
    assert unlinked.exit_code == 0 and run("list", "--database", db).stdout.count("alice") == 0
    assert unlinked.stdout == f"Unlinked alice ({line.split()[1]}).\n"
    again = run("unlink", "alice", "--database", db)
    assert again.exit_code == 2 and "no linked account" in again.output


def test_unlink_by_user_id_names_the_user_once(db: str) -> None:
    assert run("link", "bob", "--database", db, input=f"{KEY_ID}\n{SECRET}\n").exit_code == 0
    user_id = next(row.split()[1] for row in run("list", "--database", db).stdout.splitlines() if row.startswith("bob"))
    unlinked = run("unlink", user_id, "--database", db)
    assert unlinked.exit_code == 0 and unlinked.stdout == f"Unlinked bob ({user_id}).\n"


def test_a_terminal_gets_hidden_prompts(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "_stdin_is_tty", lambda: True)
    linked = run("link", "bob", "--database", db, input=f"{KEY_ID}\n{SECRET}\n")
    assert linked.exit_code == 0, linked.output
    assert "API key id:" in linked.output and "API secret key:" in linked.output
    assert SECRET not in linked.output and KEY_ID not in linked.output  # not echoed
    store = LinkedAccountStore(db, os.environ["PORTFOLIO_WS_ACCOUNTS_KEY"])
    try:
        assert store.secret(store.list()[0]).value == SECRET
    finally:
        store.close()


def test_an_oauth_token(db: str) -> None:
    linked = run("link", "bob", "--oauth", "--database", db, input="oauth-token-123\n")
    assert linked.exit_code == 0 and "OAuth token" in linked.output and "oauth-token-123" not in linked.output
    assert "oauth" in run("list", "--database", db).stdout


@pytest.mark.parametrize("args, stdin, message", [
    (["link", "nobody"], f"{KEY_ID}\n{SECRET}\n", "no user 'nobody'"),
    (["link", "alice"], "", "no api key id on standard input"),
    (["link", "alice"], f"{KEY_ID}\n", "no api secret key on standard input"),
    (["link", "alice"], f"{KEY_ID}\ntwo words\n", "must not contain spaces"),
])
def test_bad_input_is_one_line_and_exit_2(db: str, args: list[str], stdin: str, message: str) -> None:
    result = run(*args, "--database", db, input=stdin)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and SECRET not in result.output


def test_without_the_key_link_refuses_before_asking(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTFOLIO_WS_ACCOUNTS_KEY")
    result = run("link", "alice", "--database", db, input=f"{KEY_ID}\n{SECRET}\n")
    assert result.exit_code == 2 and "PORTFOLIO_WS_ACCOUNTS_KEY" in result.output
    monkeypatch.setenv("PORTFOLIO_WS_ACCOUNTS_KEY", "not-a-key")
    result = run("list", "--database", db)
    assert result.exit_code == 2 and "accounts.key" in result.output and "not-a-key" not in result.output


def test_rotate_then_the_old_key_can_go(db: str, isolated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("link", "alice", "--database", db, input=f"{KEY_ID}\n{SECRET}\n").exit_code == 0
    fresh = run("new-key").stdout.strip()
    monkeypatch.setenv("PORTFOLIO_WS_ACCOUNTS_KEY", f"{fresh},{isolated}")
    rotated = run("rotate", "--database", db)
    assert rotated.exit_code == 0 and "Re-encrypted 1" in rotated.output
    monkeypatch.setenv("PORTFOLIO_WS_ACCOUNTS_KEY", fresh)
    assert run("list", "--database", db).stdout.splitlines()[1].rstrip().endswith("ok")
    monkeypatch.setenv("PORTFOLIO_WS_ACCOUNTS_KEY", isolated)
    assert "cannot decrypt" in run("list", "--database", db).stdout
    assert run("rotate", "--database", db).exit_code == 2


def test_removing_a_user_unlinks_their_account(db: str) -> None:
    assert run("link", "alice", "--database", db, input=f"{KEY_ID}\n{SECRET}\n").exit_code == 0
    assert run("link", "bob", "--oauth", "--database", db, input="oauth-token-123\n").exit_code == 0
    removed = CliRunner().invoke(cli.main, ["users", "remove", "alice", "--database", db])
    assert removed.exit_code == 0 and "unlinked their broker account" in removed.stdout
    listed = run("list", "--database", db).stdout
    assert "alice" not in listed and "bob" in listed


BROKER_ACCOUNT = "6f2c9b1e-3a4d-4e5f-8a7b-1c2d3e4f5a6b"


def test_a_broker_account_needs_no_secret_and_no_key(db: str, isolated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTFOLIO_WS_ACCOUNTS_KEY")
    linked = run("link", "alice", "--broker-account", BROKER_ACCOUNT.upper(), "--database", db, input="")
    assert linked.exit_code == 0, linked.output
    assert f"broker account {BROKER_ACCOUNT}" in linked.output and "alpaca-broker" in linked.output
    line = next(row for row in run("list", "--database", db).stdout.splitlines() if row.startswith("alice"))
    assert "broker" in line and BROKER_ACCOUNT in line and line.rstrip().endswith("ok")
    # A key pair row beside it still rotates; the broker row has nothing to re-encrypt.
    monkeypatch.setenv("PORTFOLIO_WS_ACCOUNTS_KEY", isolated)
    assert run("link", "bob", "--database", db, input=f"{KEY_ID}\n{SECRET}\n").exit_code == 0
    rotated = run("rotate", "--database", db)
    assert rotated.exit_code == 0 and "Re-encrypted 1 account" in rotated.output, rotated.output


@pytest.mark.parametrize("args, message", [
    (["--broker-account", "not-a-uuid"], "a UUID"),
    (["--broker-account", BROKER_ACCOUNT, "--oauth"], "choose one"),
])
def test_a_bad_broker_account_is_one_line_and_exit_2(db: str, args: list[str], message: str) -> None:
    result = run("link", "alice", *args, "--database", db, input="")
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
