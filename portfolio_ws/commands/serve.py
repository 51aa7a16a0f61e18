"""``portfolio-ws serve``: the streaming server with the live Alpaca feed, the simulator, or none."""

from __future__ import annotations


import click

from ..errors import ConfigError
from ..logs import configure
from ..server.runner import serve
from .common import config_option, run_server_loop, settings_from_cli


@click.command("serve")
@config_option
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 5000).")
@click.option("--feed", type=click.Choice(["simulator", "alpaca", "none"]), default=None,
              help="Event source (default: simulator).")
@click.option("--database", default=None, help="SQLite file with users and sessions.")
@click.option("--certfile", default=None, help="PEM certificate (chain): serve https and wss (needs --keyfile).")
@click.option("--keyfile", default=None, help="PEM private key of --certfile.")
def command(config: str | None, host: str | None, port: int | None, feed: str | None,
            database: str | None, certfile: str | None, keyfile: str | None) -> None:
    """Serve /ws/portfolio and the HTTP API until SIGINT/SIGTERM."""
    settings = settings_from_cli(config, {"server.host": host, "server.port": port, "feed.source": feed,
                                          "auth.database": database, "server.certfile": certfile,
                                          "server.keyfile": keyfile})
    configure(settings.logging)
    try:
        run_server_loop(settings.server, serve(settings))
    except ConfigError as exc:
        click.echo(f"Error: invalid setting {exc}", err=True)
        raise SystemExit(2) from None
    except OSError as exc:
        click.echo(f"Error: cannot listen on {settings.server.host}:{settings.server.port}: {exc.strerror}", err=True)
        raise SystemExit(1) from None
