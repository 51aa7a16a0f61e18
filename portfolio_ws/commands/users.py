"""``portfolio-ws users``: add, list and remove the accounts that may log in.

The database is ``auth.database`` of the settings (``--config``, else ``./config.yaml`` if present,
else built-in defaults; environment variables apply), or ``--database`` when given.
Bad input prints one line on stderr and exits 2. Passwords are never echoed or logged.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

import click

from ..auth.stores import open_session_store, open_user_store
from ..auth.users import UserStoreBase, validate_password, validate_username
from ..config import default_config_path, load_settings
from ..errors import ConfigError, UsageError
from ..settings import AuthSettings

F = TypeVar("F", bound=Callable[..., Any])


class BadInput(click.ClickException):
    """One line on stderr (``Error: ...``), exit status 2."""

    exit_code = 2


def _database_options(func: F) -> F:
    func = click.option(
        "--database",
        metavar="PATH|URL",
        help="SQLite file, or postgresql:// URL, of users and sessions (overrides auth.database).",
    )(func)
    func = click.option(
        "--config",
        "config_path",
        metavar="PATH",
        type=click.Path(exists=True, dir_okay=False),
        help="Settings file [default: ./config.yaml if it exists, else built-in defaults].",
    )(func)
    return func


def _auth_settings(config_path: str | None, database: str | None) -> AuthSettings:
    path = config_path if config_path is not None else default_config_path()
    try:
        settings = load_settings(path, os.environ, {"auth.database": database})
    except ConfigError as exc:
        raise BadInput(str(exc)) from None
    return settings.auth


def _open_users(auth: AuthSettings) -> UserStoreBase:
    try:
        return open_user_store(auth.database)
    except UsageError as exc:
        raise BadInput(f"auth.database: {exc}") from None


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _password_from_prompt(value: str) -> str:
    try:
        validate_password(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None  # click.prompt shows it and asks again
    return value


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not _stdin_is_tty():
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")  # the line ending only: spaces may belong to the password
        if not password:
            raise BadInput("no password on standard input")
        return password
    value = click.prompt(
        "Password", hide_input=True, confirmation_prompt=True, value_proc=_password_from_prompt
    )
    return str(value)


@click.group(name="users")
def command() -> None:
    """Manage the users who may log in."""


@command.command(name="add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Allow the admin endpoints (/api/admin/*).")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin (the default when stdin is not a terminal).",
)
@_database_options
def add(name: str, admin: bool, password_stdin: bool, config_path: str | None, database: str | None) -> None:
    """Add user NAME; the password is asked for twice, unechoed."""
    try:
        validate_username(name)
    except UsageError as exc:
        raise BadInput(str(exc)) from None
    users = _open_users(_auth_settings(config_path, database))
    try:
        # Checked before asking for a password, so nobody types one twice for nothing.
        if users.by_username(name) is not None:
            raise BadInput(f"user {name!r} already exists")
        password = _read_password(password_stdin)
        try:
            user = users.add(name, password, admin=admin)
        except UsageError as exc:
            raise BadInput(str(exc)) from None
    finally:
        users.close()
    role = "admin" if user.is_admin else "user"
    click.echo(f"Added {role} {user.username} ({user.user_id}).")


@command.command(name="list")
@_database_options
def list_(config_path: str | None, database: str | None) -> None:
    """List every user, oldest first."""
    users = _open_users(_auth_settings(config_path, database))
    try:
        rows = [
            (user.username, user.user_id, "yes" if user.is_admin else "no", _when(user.created_at))
            for user in users.list()
        ]
    finally:
        users.close()
    header = ("USERNAME", "USER ID", "ADMIN", "CREATED")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if not rows:
        click.echo("No users yet; add one with: portfolio-ws users add NAME", err=True)


@command.command(name="remove")
@click.argument("name")
@_database_options
def remove(name: str, config_path: str | None, database: str | None) -> None:
    """Remove user NAME and end their sessions."""
    auth = _auth_settings(config_path, database)
    users = _open_users(auth)
    try:
        user = users.by_username(name)
        if user is None or not users.remove(user.username):
            raise BadInput(f"no user {name!r}")
    finally:
        users.close()
    ended = asyncio.run(_end_sessions(auth, user.user_id))
    plural = "" if ended == 1 else "s"
    unlinked = "; unlinked their broker account" if _unlink(auth, user.user_id) else ""
    click.echo(f"Removed {user.username} ({user.user_id}); ended {ended} session{plural}{unlinked}.")


def _unlink(auth: AuthSettings, user_id: str) -> bool:
    """A removed user's linked broker account goes too: a running feed stops streaming it."""
    from ..auth.linked import unlink_user

    try:
        return unlink_user(auth.database, user_id)
    except UsageError as exc:
        raise BadInput(f"auth.database: {exc}") from None


async def _end_sessions(auth: AuthSettings, user_id: str) -> int:
    try:
        sessions = await open_session_store(auth)
    except UsageError as exc:
        raise BadInput(f"auth.database: {exc}") from None
    try:
        return await sessions.delete_for_user(user_id)
    finally:
        await sessions.close()


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
