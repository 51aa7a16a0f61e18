"""``portfolio-ws keys add|list|revoke`` through click's CliRunner and the real ``cli.main``: the key
is printed once, only its digest is stored, and a revoked key no longer verifies."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import cli
from portfolio_ws.auth.apikeys import ApiKeyStore


@pytest.fixture(autouse=True)
def isolated(empty_environment: None) -> None:
    """Every test here in an empty directory, with no variable of the service set (tests/conftest.py)."""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.main, ["keys", *args])


def test_a_key_is_printed_once_and_only_its_digest_is_stored(tmp_path: Path) -> None:
    db = str(tmp_path / "users.sqlite3")
    added = run("add", "platform", "--scope", "publish", "--database", db)
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    assert key.startswith("pws_") and "shown only now" in added.stderr
    stored = sqlite3.connect(db).execute("SELECT * FROM api_keys").fetchall()
    assert key not in repr(stored) and key.split("_", 2)[2] not in repr(stored)
    assert hashlib.sha256(key.split("_", 2)[2].encode()).hexdigest() in repr(stored)
    listed = run("list", "--database", db)
    assert "platform" in listed.stdout and "publish" in listed.stdout and key not in listed.output
    store = ApiKeyStore(db)
    record = store.verify(key)
    assert record is not None and record.scopes == {"publish"}
    assert store.verify(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    revoked = run("revoke", "PLATFORM", "--database", db)  # names match whatever their case
    assert revoked.exit_code == 0 and revoked.stdout == "Revoked key platform.\n"
    assert store.verify(key) is None


@pytest.mark.parametrize("args,message", [
    (["add", "bad name!", "--scope", "publish"], "invalid key name"),
    (["add", "platform", "--scope", "everything"], "everything"),
    (["revoke", "nobody"], "no key 'nobody'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(*args, "--database", str(tmp_path / "users.sqlite3"))
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_second_key_of_the_same_name_is_refused(tmp_path: Path) -> None:
    db = str(tmp_path / "users.sqlite3")
    assert run("add", "platform", "--scope", "publish", "--database", db).exit_code == 0
    again = run("add", "Platform", "--scope", "publish", "--database", db)
    assert again.exit_code == 2 and "exists" in again.output


def test_an_admin_scope_key_is_added_and_listed(tmp_path: Path) -> None:
    db = str(tmp_path / "users.sqlite3")
    added = run("add", "ops", "--scope", "admin", "--database", db)
    assert added.exit_code == 0, added.output
    store = ApiKeyStore(db)
    assert store.verify(added.stdout.strip()).scopes == {"admin"}
    assert "admin" in run("list", "--database", db).stdout
