"""``portfolio-ws accounts``: link users to their Alpaca accounts (kept in ``auth.database``, the
secret encrypted under ``accounts.key``), list, unlink, rotate the encryption key.

A running ``serve --feed alpaca`` picks a link or unlink up within ``accounts.poll_seconds``, no
restart. The secret (API secret key or OAuth token) is read unechoed from the terminal, or from
stdin for scripts; it is never printed, logged or returned. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import os
import sys

import click

from ..auth.linked import BROKER, KEY_ENV, LinkedAccountStore, MissingKey, mask, new_key
from ..auth.users import UserStoreBase
from ..config import default_config_path, load_settings
from ..errors import ConfigError, UsageError
from ..settings import Settings
from .users import BadInput, _database_options, _open_users, _when


def _settings(config_path: str | None, database: str | None) -> Settings:
    path = config_path if config_path is not None else default_config_path()
    try:
        return load_settings(path, os.environ, {"auth.database": database})
    except ConfigError as exc:
        raise BadInput(str(exc)) from None


def _open(settings: Settings) -> LinkedAccountStore:
    try:
        return LinkedAccountStore(settings.auth.database, settings.accounts.key)
    except UsageError as exc:
        raise BadInput(f"auth.database: {exc}") from None


def _find_user(users: UserStoreBase, name: str) -> tuple[str, str]:
    """(user id, username) of a username or user id."""
    user = users.by_username(name) or users.get(name)
    if user is None:
        raise BadInput(f"no user {name!r} (add one with: portfolio-ws users add NAME)")
    return user.user_id, user.username


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _read(prompt: str, from_stdin: bool) -> str:
    if from_stdin or not _stdin_is_tty():
        value = sys.stdin.readline().strip()
        if not value:
            raise BadInput(f"no {prompt.lower()} on standard input")
        return value
    return str(click.prompt(prompt, hide_input=True)).strip()


@click.group(name="accounts")
def command() -> None:
    """Link users to their broker (Alpaca) accounts; a running server picks changes up."""


@command.command(name="link")
@click.argument("user")
@click.option("--paper/--live", default=True, show_default=True, help="Alpaca's paper or live endpoints.")
@click.option("--oauth", is_flag=True,
              help="Link with an OAuth access token (Alpaca Connect) instead of an API key id and secret.")
@click.option("--broker-account", "broker_account", default=None, metavar="ID",
              help="Link an account of your broker partner (Broker API account id) for serve --feed "
                   "alpaca-broker: no secret asked, accounts.key not needed.")
@click.option("--stdin", "from_stdin", is_flag=True,
              help="Read the key id and secret (or the token) as lines of stdin (the default when stdin is "
                   "not a terminal).")
@_database_options
def link(user: str, paper: bool, oauth: bool, broker_account: str | None, from_stdin: bool,
         config_path: str | None, database: str | None) -> None:
    """Link USER (username or user id) to an Alpaca account; re-linking replaces the old one."""
    settings = _settings(config_path, database)
    if broker_account is not None and oauth:
        raise BadInput("--broker-account and --oauth: choose one")
    users = _open_users(settings.auth)
    try:
        user_id, username = _find_user(users, user)
    finally:
        users.close()
    store = _open(settings)
    if broker_account is not None:
        try:
            record = store.link(user_id, BROKER, broker_account, "", paper=True)
        except UsageError as exc:
            raise BadInput(str(exc)) from None
        finally:
            store.close()
        click.echo(f"Linked {username} ({user_id}) with broker account {record.key_id}. "
                   f"A running alpaca-broker feed streams it within {settings.accounts.poll_seconds:g} s.")
        return
    try:
        if not settings.accounts.key:  # before asking for a secret that couldn't be stored
            raise BadInput(str(MissingKey()))
        if oauth:
            key_id, secret = "", _read("OAuth token", from_stdin)
        else:
            key_id = _read("API key id", from_stdin)
            secret = _read("API secret key", from_stdin)
        try:
            record = store.link(user_id, "oauth" if oauth else "keys", key_id, secret, paper=paper)
        except UsageError as exc:
            raise BadInput(str(exc)) from None
    finally:
        store.close()
    what = "an OAuth token" if oauth else f"API key {mask(record.key_id)}"
    click.echo(f"Linked {username} ({user_id}) with {what} ({'paper' if paper else 'live'}). "
               f"A running alpaca feed streams it within {settings.accounts.poll_seconds:g} s.")


@command.command(name="list")
@_database_options
def list_(config_path: str | None, database: str | None) -> None:
    """List linked accounts: user, key id (masked), created, status. Never a secret."""
    settings = _settings(config_path, database)
    store = _open(settings)
    users = _open_users(settings.auth)
    try:
        rows = []
        for account in store.list():
            user = users.get(account.user_id)
            rows.append((user.username if user else "(removed user)", account.user_id, account.kind,
                         account.key_id if account.kind == BROKER else mask(account.key_id) if account.key_id else "-",
                         "broker" if account.kind == BROKER else "paper" if account.paper else "live",
                         _when(account.created_at), store.status(account)))
    finally:
        users.close()
        store.close()
    header = ("USER", "USER ID", "KIND", "KEY ID", "ACCOUNT", "CREATED", "STATUS")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if not rows:
        click.echo("No linked accounts yet; link one with: portfolio-ws accounts link USER", err=True)


@command.command(name="unlink")
@click.argument("user")
@_database_options
def unlink(user: str, config_path: str | None, database: str | None) -> None:
    """Unlink USER's account: a running feed stops streaming it within accounts.poll_seconds."""
    settings = _settings(config_path, database)
    users = _open_users(settings.auth)
    try:
        found = users.by_username(user) or users.get(user)
    finally:
        users.close()
    user_id = found.user_id if found else user  # a removed user's row can still be unlinked by id
    store = _open(settings)
    try:
        if not store.unlink(user_id):
            raise BadInput(f"{user!r} has no linked account")
    finally:
        store.close()
    # Named as ``link`` names it: the stored username and the id; a removed user by the id alone.
    click.echo(f"Unlinked {found.username} ({user_id})." if found else f"Unlinked {user_id}.")


@command.command(name="rotate")
@_database_options
def rotate(config_path: str | None, database: str | None) -> None:
    """Re-encrypt every secret with the first key of accounts.key (then drop the old keys)."""
    settings = _settings(config_path, database)
    store = _open(settings)
    try:
        done, failed = store.rotate()
    except UsageError as exc:
        raise BadInput(str(exc)) from None
    finally:
        store.close()
    click.echo(f"Re-encrypted {done} account(s) with the first key of {KEY_ENV}.")
    if failed:
        raise BadInput(f"{failed} account(s) could not be decrypted with any key of {KEY_ENV}: "
                       "add the key they were encrypted with (after the new one) and run rotate again")


@command.command(name="new-key")
def new_key_() -> None:
    """Print a new encryption key for accounts.key (PORTFOLIO_WS_ACCOUNTS_KEY)."""
    click.echo(new_key())
