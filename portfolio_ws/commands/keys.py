"""``portfolio-ws keys``: add, list and revoke the API keys other servers call portfolio-ws with
(``POST /api/v1/publish`` needs a key with the ``publish`` scope).

The keys live in ``auth.database`` (``--config`` / ``--database`` as for ``users``): the SQLite file
or PostgreSQL. A running server reads them on every request: no restart after add or revoke. A key is printed
once, by ``add``; only its digest is stored. Bad input prints one line on stderr and exits 2.
"""

from __future__ import annotations

import click

from ..auth.apikeys import SCOPES, ApiKeyStoreBase
from ..auth.stores import open_key_store
from ..errors import UsageError
from .users import BadInput, _auth_settings, _database_options, _when


def _open(config_path: str | None, database: str | None) -> ApiKeyStoreBase:
    path = _auth_settings(config_path, database).database
    try:
        return open_key_store(path)
    except UsageError as exc:
        raise BadInput(f"auth.database: {exc}") from None


@click.group(name="keys")
def command() -> None:
    """Manage the API keys of server-to-server calls (publishing events)."""


@command.command(name="add")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="What the key may do (publish: POST /api/v1/publish; admin: POST/DELETE /api/v1/users). Repeatable.")
@_database_options
def add(name: str, scopes: tuple[str, ...], config_path: str | None, database: str | None) -> None:
    """Add key NAME and print it, once: keep it in the calling server's secrets."""
    store = _open(config_path, database)
    try:
        record, key = store.add(name, list(scopes))
    except UsageError as exc:
        raise BadInput(str(exc)) from None
    finally:
        store.close()
    click.echo(key)
    click.echo(f"Added key {record.name} ({', '.join(sorted(record.scopes))}). It is shown only now: "
               "store it; revoke it with: portfolio-ws keys revoke " + record.name, err=True)


@command.command(name="list")
@_database_options
def list_(config_path: str | None, database: str | None) -> None:
    """List the keys (names, ids and scopes; never the keys themselves)."""
    store = _open(config_path, database)
    try:
        rows = [(k.name, k.key_id, ",".join(sorted(k.scopes)), _when(k.created_at)) for k in store.list()]
    finally:
        store.close()
    header = ("NAME", "KEY ID", "SCOPES", "CREATED")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if not rows:
        click.echo("No keys yet; add one with: portfolio-ws keys add NAME --scope publish", err=True)


@command.command(name="revoke")
@click.argument("name")
@_database_options
def revoke(name: str, config_path: str | None, database: str | None) -> None:
    """Revoke key NAME: requests with it are refused (401) from the next one on."""
    store = _open(config_path, database)
    try:
        # Named as stored (the match ignores case), as ``add`` and ``list`` name it.
        stored = next((key.name for key in store.list() if key.name.lower() == name.lower()), name)
        if not store.revoke(name):
            raise BadInput(f"no key {name!r}")
    finally:
        store.close()
    click.echo(f"Revoked key {stored}.")
