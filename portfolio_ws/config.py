"""Loading settings: defaults < YAML file < environment < CLI overrides, validated by field type
and by the rules of ``settings_rules`` (ranges, formats, settings that go together).

Every bad value raises ``ConfigError`` naming its dotted key; the CLI prints that one line and
exits 2. Unknown keys are errors too (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError
from .settings import Settings
from .settings_rules import check_together, check_value

ENV_PREFIX = "PORTFOLIO_WS_"
FLAG_ENV = "ENABLE_REALTIME_PORTFOLIO"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def load_settings(
    config_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build validated ``Settings``. ``overrides`` maps dotted keys (``server.port``) to values."""
    raw: dict[str, Any] = {}
    if config_path is not None:
        raw = _read_yaml(Path(config_path))
        # Each layer is checked on its own too: a bad value in the file is reported even where the
        # environment or a flag (simulate's own database) replaces it, not left to bite later.
        _build(Settings, raw, "")
    if env:
        _apply_env(raw, env)
        _build(Settings, raw, "")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, name = key.partition(".")
        _section(raw, section)[name] = value
    settings: Settings = _build(Settings, raw, "")
    check_together(settings)
    return settings


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """The raw mapping of one section, created when absent (or empty in the file)."""
    if raw.get(name) is None:
        raw[name] = {}
    if not isinstance(raw[name], dict):
        raise ConfigError(name, "must be a mapping")
    section: dict[str, Any] = raw[name]
    return section


def default_config_path() -> Path | None:
    """``./config.yaml`` when it exists, else None (built-in defaults)."""
    path = Path("config.yaml")
    return path if path.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError("config", f"{path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path} must hold a mapping of sections")
    # A section whose keys are all commented out is empty, not an error.
    return {name: {} if value is None else value for name, value in data.items()}


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    sections = {f.name: f for f in dataclasses.fields(Settings)}
    if FLAG_ENV in env:
        raw.setdefault("streaming", {})["enabled"] = env[FLAG_ENV]
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        # Longest first: PORTFOLIO_WS_ALPACA_BROKER_KEY_ENV is alpaca_broker's, not alpaca's.
        for section in sorted(sections, key=len, reverse=True):
            if rest.startswith(section + "_"):
                _section(raw, section)[rest[len(section) + 1:]] = value
                break
        else:  # a typo in the section must not silently fall back to a default
            raise ConfigError(name, f"unknown setting (sections: {', '.join(sections)})")


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(prefix.rstrip(".") or "config", "must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(f"{prefix}{key}", f"unknown setting (known: {', '.join(sorted(names))})")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            key = f"{prefix}{f.name}"
            values[f.name] = value = _coerce(hints[f.name], raw[f.name], key)
            if isinstance(value, tuple):
                for i, item in enumerate(value):
                    if not dataclasses.is_dataclass(item):
                        check_value(f"{key}[{i}]", item)
            elif not dataclasses.is_dataclass(value):
                check_value(key, value)
    return cls(**values)


def _coerce(kind: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, key + ".")  # type: ignore[arg-type]
    if origin is typing.Literal:
        choices = typing.get_args(kind)
        if isinstance(value, str):
            for choice in choices:
                if value.lower() == str(choice).lower():
                    return choice
        raise ConfigError(key, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
    if origin is tuple:
        item = typing.get_args(kind)[0]
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list, got {value!r}")
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if value is None else _coerce(args[0], value, key)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(key, f"must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(key, f"must be a whole number, got {value!r}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"must be a whole number, got {value!r}") from None
    if kind is float:
        if isinstance(value, bool):
            raise ConfigError(key, f"must be a number, got {value!r}")
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"must be a number, got {value!r}") from None
        if result != result or result in (float("inf"), float("-inf")):
            raise ConfigError(key, f"must be a finite number, got {value!r}")
        return result
    if kind is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(key, f"must be text, got {value!r}")
        return "" if value is None else str(value)
    raise ConfigError(key, f"unsupported setting type {kind!r}")  # pragma: no cover - our own bug
