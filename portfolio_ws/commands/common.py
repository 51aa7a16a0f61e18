"""What the commands share: loading settings from --config, the environment and flags."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Coroutine, Mapping

import click

from ..config import default_config_path, load_settings
from ..errors import ConfigError
from ..settings import ServerSettings, Settings
from ..settings_rules import check_environment


def settings_from_cli(config: str | None, overrides: Mapping[str, Any]) -> Settings:
    """Settings for a command; a bad setting (or a variable it names missing from the environment)
    prints one line naming the key and exits 2."""
    path = config if config is not None else default_config_path()
    try:
        settings = load_settings(path, os.environ, overrides)
        check_environment(settings, os.environ)
        return settings
    except ConfigError as exc:
        click.echo(f"Error: invalid setting {exc}", err=True)
        raise SystemExit(2) from None


config_option = click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
                             help="YAML settings file (default: ./config.yaml when present).")


def run_server_loop(settings: ServerSettings, main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run(main)`` on the event loop ``server.event_loop`` names; uvloop when asked for
    but not installed stops the program with one line naming the key (exit 2)."""
    if settings.event_loop == "uvloop":
        try:
            import uvloop  # type: ignore[import-not-found]
        except ImportError:
            main.close()
            click.echo("Error: invalid setting server.event_loop: uvloop is not installed "
                       "(pip install 'portfolio-ws[fast]')", err=True)
            raise SystemExit(2) from None
        uvloop.run(main)
    else:
        asyncio.run(main)
