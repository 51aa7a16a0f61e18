"""The ``portfolio-ws`` command line: ``serve``, ``simulate``, ``users``, ``keys``, ``accounts``, ...

Each command lives in ``portfolio_ws/commands/``; this module only assembles the group.
"""

from __future__ import annotations

import click

from portfolio_ws import __version__


@click.group()
@click.version_option(__version__, prog_name="portfolio-ws")
def main() -> None:
    """Stream trading portfolios (positions, orders, account, trades) over one WebSocket."""


def _register() -> None:
    import importlib

    for name in ("serve", "simulate", "users", "keys", "accounts", "publish", "watch", "loadtest"):
        try:
            module = importlib.import_module(f"portfolio_ws.commands.{name}")
        except ModuleNotFoundError as exc:  # a command still being built
            if exc.name != f"portfolio_ws.commands.{name}":
                raise
            continue
        main.add_command(module.command)


_register()

if __name__ == "__main__":
    main()
