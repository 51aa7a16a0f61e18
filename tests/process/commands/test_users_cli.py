"""``portfolio-ws users add|list|remove`` through click's CliRunner and the real ``cli.main``."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from click.testing import CliRunner, Result

import cli
from portfolio_ws.auth import passwords
from portfolio_ws.auth.sessions import SessionLifetime
from portfolio_ws.auth.sessions.sqlite import SQLiteSessionStore
from portfolio_ws.auth.users import UserStore
from portfolio_ws.commands import users as users_command

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "default_hasher", lambda: PasswordHasher.from_parameters(profiles.CHEAPEST)
    )


@pytest.fixture(autouse=True)
def isolated(empty_environment: None) -> None:
    """Every test here in an empty directory, with no variable of the service set (tests/conftest.py)."""


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "users.sqlite3")


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli.main, ["users", *args], input=input)


def add(db: str, name: str, *flags: str, password: str = PASSWORD) -> Result:
    return run("add", name, "--database", db, *flags, input=password + "\n")


def test_add_reads_the_password_from_stdin_when_not_a_tty(db):
    result = add(db, "alice")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"Added user alice \(user-[0-9a-f]{12}\)\.\n", result.stdout)
    assert PASSWORD not in result.output
    assert UserStore(db).authenticate("alice", PASSWORD) is not None


def test_add_admin(db):
    result = add(db, "root", "--admin", "--password-stdin")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Added admin root (")
    user = UserStore(db).by_username("root")
    assert user is not None and user.is_admin


def test_password_keeps_its_spaces_but_not_the_line_ending(db):
    assert run("add", "alice", "--database", db, input="  spaced out  \r\n").exit_code == 0
    assert UserStore(db).authenticate("alice", "  spaced out  ") is not None


def test_prompt_asks_twice_and_echoes_nothing(db, monkeypatch):
    monkeypatch.setattr(users_command, "_stdin_is_tty", lambda: True)
    result = run("add", "alice", "--database", db, input=f"short\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "at least 8 characters" in result.output  # the short one was refused, then asked again
    assert "Repeat for confirmation" in result.output
    assert PASSWORD not in result.output and "short\n" not in result.output
    assert UserStore(db).authenticate("alice", PASSWORD) is not None


def test_prompt_mismatch_asks_again(db, monkeypatch):
    monkeypatch.setattr(users_command, "_stdin_is_tty", lambda: True)
    result = run(
        "add", "alice", "--database", db, input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output


def test_password_stdin_wins_over_a_tty(db, monkeypatch):
    monkeypatch.setattr(users_command, "_stdin_is_tty", lambda: True)
    result = run("add", "alice", "--password-stdin", "--database", db, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "Password" not in result.output


def _bad(result: Result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == f"Error: {message}\n"
    assert PASSWORD not in result.output


def test_duplicate_user_is_exit_2(db):
    add(db, "alice")
    _bad(add(db, "alice"), "user 'alice' already exists")
    _bad(add(db, "ALICE"), "user 'ALICE' already exists")


def test_bad_username_is_exit_2(db):
    result = add(db, "no spaces please")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: invalid username 'no spaces please'")
    assert result.stderr.count("\n") == 1


def test_short_password_is_exit_2(db):
    _bad(add(db, "alice", password="short"), "password too short: use at least 8 characters")
    assert UserStore(db).list() == []


def test_empty_stdin_is_exit_2(db):
    _bad(run("add", "alice", "--database", db, input=""), "no password on standard input")


def test_list(db):
    add(db, "alice", "--admin")
    add(db, "bob")
    result = run("list", "--database", db)
    assert result.exit_code == 0, result.output
    header, alice, bob = result.stdout.splitlines()
    assert header.split() == ["USERNAME", "USER", "ID", "ADMIN", "CREATED"]
    assert re.fullmatch(r"alice +user-[0-9a-f]{12} +yes +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", alice)
    assert re.fullmatch(r"bob +user-[0-9a-f]{12} +no +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", bob)
    assert alice.index("user-") == header.index("USER ID")


def test_list_empty(db):
    result = run("list", "--database", db)
    assert result.exit_code == 0
    assert result.stdout.split() == ["USERNAME", "USER", "ID", "ADMIN", "CREATED"]
    assert "users add" in result.stderr


def test_remove_ends_the_users_sessions(db):
    add(db, "alice")
    add(db, "bob")
    store = UserStore(db)
    alice, bob = store.by_username("alice"), store.by_username("bob")
    assert alice is not None and bob is not None

    async def sessions() -> tuple[str, str]:
        store = SQLiteSessionStore(db, SessionLifetime(1800, 43200))
        await store.create(alice.user_id, 1000.0)
        return await store.create(alice.user_id, 1000.0), await store.create(bob.user_id, 1000.0)

    alice_session, bob_session = asyncio.run(sessions())
    result = run("remove", "alice", "--database", db)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Removed alice ({alice.user_id}); ended 2 sessions.\n"
    assert [u.username for u in store.list()] == ["bob"]

    async def lookups() -> tuple[object, object]:
        store = SQLiteSessionStore(db, SessionLifetime(1800, 43200))
        return await store.lookup(alice_session, 1001.0), await store.lookup(bob_session, 1001.0)

    gone, kept = asyncio.run(lookups())
    assert gone is None and kept is not None


def test_remove_unknown_is_exit_2(db):
    _bad(run("remove", "nobody", "--database", db), "no user 'nobody'")


def test_database_comes_from_the_config_file(tmp_path):
    config = tmp_path / "elsewhere.yaml"
    config.write_text(f"auth:\n  database: {tmp_path / 'from-config.sqlite3'}\n")
    result = run("add", "alice", "--config", str(config), input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-config.sqlite3").exists()
    listed = run("list", "--config", str(config))
    assert "alice" in listed.stdout


def test_config_yaml_in_the_current_directory_is_the_default(tmp_path):
    (tmp_path / "config.yaml").write_text("auth:\n  database: cwd.sqlite3\n")
    assert run("add", "alice", input=PASSWORD + "\n").exit_code == 0
    assert (tmp_path / "cwd.sqlite3").exists()


def test_environment_names_the_database(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTFOLIO_WS_AUTH_DATABASE", str(tmp_path / "env.sqlite3"))
    assert run("add", "alice", input=PASSWORD + "\n").exit_code == 0
    assert (tmp_path / "env.sqlite3").exists()


def test_database_flag_beats_the_config_file(tmp_path, db):
    (tmp_path / "config.yaml").write_text("auth:\n  database: cwd.sqlite3\n")
    assert add(db, "alice").exit_code == 0
    assert Path(db).exists() and not (tmp_path / "cwd.sqlite3").exists()


def test_without_config_the_default_database_is_used(tmp_path):
    assert run("add", "alice", input=PASSWORD + "\n").exit_code == 0
    assert (tmp_path / "portfolio-ws.sqlite3").exists()


def test_bad_config_is_one_line_exit_2(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("auth:\n  session_idle_seconds: soon\n")
    result = run("list", "--config", str(config))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: auth.session_idle_seconds")
    assert result.stderr.count("\n") == 1


def test_missing_config_file_is_exit_2(tmp_path):
    result = run("list", "--config", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_unopenable_database_is_one_line_exit_2(tmp_path):
    result = run("list", "--database", str(tmp_path / "no-such-dir" / "x.sqlite3"))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: auth.database: cannot create database")
    assert result.stderr.count("\n") == 1


def test_hashes_are_argon2id(db):
    add(db, "alice")
    with sqlite3.connect(db) as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$")
