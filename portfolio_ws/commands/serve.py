"""``portfolio-ws serve``: the streaming server with the live Alpaca feed, the simulator, or none."""

from __future__ import annotations

import sys

import click

from ..errors import ConfigError
from ..logs import configure
from ..server.runner import serve
from ..server.workers import Supervisor
from .common import config_option, run_server_loop, settings_from_cli


@click.command("serve")
@config_option
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 5000).")
@click.option("--feed", type=click.Choice(["simulator", "alpaca", "alpaca-broker", "publish", "none"]), default=None,
              help="Event source (default: simulator).")
@click.option("--database", default=None, help="SQLite file, or postgresql:// URL, of users and sessions.")
@click.option("--certfile", default=None, help="PEM certificate (chain): serve https and wss (needs --keyfile).")
@click.option("--keyfile", default=None, help="PEM private key of --certfile.")
@click.option("--workers", type=int, default=None,
              help="Server processes on the port (SO_REUSEPORT; more than 1 needs cluster.redis_url).")
@click.option("--reuse-port", is_flag=True, hidden=True, help="Bind with SO_REUSEPORT (a worker of --workers).")
def command(config: str | None, host: str | None, port: int | None, feed: str | None,
            database: str | None, certfile: str | None, keyfile: str | None, workers: int | None,
            reuse_port: bool) -> None:
    """Serve /ws/portfolio and the HTTP API until SIGINT/SIGTERM."""
    settings = settings_from_cli(config, {"server.host": host, "server.port": port, "feed.source": feed,
                                          "auth.database": database, "server.certfile": certfile,
                                          "server.keyfile": keyfile, "server.workers": workers})
    configure(settings.logging)
    if settings.server.workers > 1:
        supervisor = Supervisor(settings.server.workers, sys.argv[1:], settings.cluster.node_id,
                                settings.server.drain_seconds)
        raise SystemExit(supervisor.run())
    try:
        run_server_loop(settings.server, serve(settings, reuse_port=reuse_port))
    except ConfigError as exc:
        click.echo(f"Error: invalid setting {exc}", err=True)
        raise SystemExit(2) from None
    except OSError as exc:
        click.echo(f"Error: cannot listen on {settings.server.host}:{settings.server.port}: {exc.strerror}", err=True)
        raise SystemExit(1) from None
