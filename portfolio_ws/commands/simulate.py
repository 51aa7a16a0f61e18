"""``portfolio-ws simulate``: the server with a simulated market and demo users, in one command.

Demo users live in a throwaway SQLite file (deleted on exit) unless ``--database`` is given; their
passwords are hashed with cheap argon2 parameters, since the file never outlives the demo.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
import tempfile
from pathlib import Path

import click
from argon2 import PasswordHasher, profiles

from ..auth.users import UserStore
from ..errors import ConfigError, UsageError
from ..logs import configure
from ..server.runner import serve
from .common import config_option, run_server_loop, settings_from_cli

DEMO_PREFIX = "demo"


@click.command("simulate")
@config_option
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 5000).")
@click.option("--users", "users_count", type=int, default=None, help="Demo users to create (default 3).")
@click.option("--symbols", type=int, default=None, help="Stocks in the simulated universe (default 30).")
@click.option("--seed", type=int, default=None, help="Random seed: same seed, same events (default 1).")
@click.option("--speed", type=float, default=None, help="Simulated seconds per real second (default 1).")
@click.option("--start", default=None,
              help="latest-open (default), wall-clock (follow real market hours), or an ISO 8601 time.")
@click.option("--password", default=None, help="Password for every demo user (default: random, printed).")
@click.option("--database", default=None, help="Keep users in this SQLite file instead of a throwaway one.")
def command(config: str | None, host: str | None, port: int | None, users_count: int | None,
            symbols: int | None, seed: int | None, speed: float | None, start: str | None,
            password: str | None, database: str | None) -> None:
    """Serve a simulated trading day for demo users (no keys, no outside service)."""
    with tempfile.TemporaryDirectory(prefix="portfolio-ws-") as scratch:
        db = database or str(Path(scratch) / "demo.sqlite3")
        settings = settings_from_cli(config, {
            "server.host": host, "server.port": port, "feed.source": "simulator", "auth.database": db,
            "simulator.users": users_count, "simulator.symbols": symbols, "simulator.seed": seed,
            "simulator.speed": speed, "simulator.start": start,
        })
        if not settings.auth.admin_token:  # a fresh operator token for this demo, printed below
            auth = replace(settings.auth, admin_token=secrets.token_urlsafe(24))
            settings = replace(settings, auth=auth)
        configure(settings.logging)
        try:
            credentials = create_demo_users(db, settings.simulator.users, password)
        except UsageError as exc:
            click.echo(f"Error: {exc}", err=True)
            raise SystemExit(2) from None

        def ready(url: str) -> None:
            click.echo(f"\nportfolio-ws simulator running at {url}  (Ctrl-C to stop)")
            click.echo(f"WebSocket: {url.replace('http', 'ws', 1)}/ws/portfolio")
            shown = credentials[:10]
            for username, pw in shown:
                click.echo(f"  user {username:<10} password {pw}")
            if len(credentials) > len(shown):
                click.echo(f"  ... and {len(credentials) - len(shown)} more ({DEMO_PREFIX}1..{DEMO_PREFIX}{len(credentials)})")
            click.echo(f"Admin stats: curl -H 'Authorization: Bearer {settings.auth.admin_token}' "
                       f"{url}/api/admin/websocket-stats\n", nl=True)

        try:
            run_server_loop(settings.server, serve(settings, ready=ready))
        except ConfigError as exc:
            click.echo(f"Error: invalid setting {exc}", err=True)
            raise SystemExit(2) from None
        except OSError as exc:
            click.echo(f"Error: cannot listen on {settings.server.host}:{settings.server.port}: {exc.strerror}",
                       err=True)
            raise SystemExit(1) from None


def create_demo_users(database: str, count: int, password: str | None) -> list[tuple[str, str]]:
    """Create (or keep) users demo1..demoN; returns their names and passwords (None if they existed)."""
    store = UserStore(database, hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    try:
        credentials = []
        for n in range(1, count + 1):
            username = f"{DEMO_PREFIX}{n}"
            if store.by_username(username) is not None:
                credentials.append((username, "(existing user: password unchanged)"))
                continue
            pw = password or secrets.token_urlsafe(9)
            store.add(username, pw)
            credentials.append((username, pw))
        return credentials
    finally:
        store.close()
