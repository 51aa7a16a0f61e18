"""What the commands share: loading settings from --config, the environment and flags."""

from __future__ import annotations

import os
from typing import Any, Mapping

import click

from ..config import default_config_path, load_settings
from ..errors import ConfigError
from ..settings import Settings


def settings_from_cli(config: str | None, overrides: Mapping[str, Any]) -> Settings:
    """Settings for a command; a bad setting prints one line naming the key and exits 2."""
    path = config if config is not None else default_config_path()
    try:
        return load_settings(path, os.environ, overrides)
    except ConfigError as exc:
        click.echo(f"Error: invalid setting {exc}", err=True)
        raise SystemExit(2) from None


config_option = click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
                             help="YAML settings file (default: ./config.yaml when present).")
