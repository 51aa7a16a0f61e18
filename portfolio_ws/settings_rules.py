"""What each setting may hold beyond its type: the one home of ranges, formats and the checks
between settings. ``portfolio_ws.config`` applies them at load, so a bad value stops every command
before anything is opened, served or printed.

Rule 1: a number without an entry in ``RULES`` must be greater than 0 (most are sizes, counts and
durations); a number that may be 0 or has a ceiling says so here. A new setting is covered at once.
Rule 2: every rule knows values that break it (``bad_examples``), so tests/unit/portfolio_ws/test_settings_rules.py can
walk every setting of ``Settings`` with bad values without a list kept by hand.
Rule 3: keys are dotted paths; items of a list are ``key[]`` (``alpaca.accounts[].key_env``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from holidays import NYSE

from .constants import CHANNELS
from .errors import ConfigError
from .auth.linked import check_key
from .settings import Settings

LATEST_OPEN = "latest-open"
WALL_CLOCK = "wall-clock"


class Rule(Protocol):
    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (completes "must ..."), or None when it is."""

    def bad_examples(self, default: Any) -> list[Any]:
        """Values of the setting's type that this rule refuses."""


@dataclass(frozen=True)
class Range:
    """minimum <= value <= maximum; ``above``: value > above."""

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    why: str = ""

    def problem(self, value: Any) -> str | None:
        ok = ((self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)
              and (self.above is None or value > self.above))
        if ok:
            return None
        parts = []
        if self.above is not None:
            parts.append(f"greater than {_num(self.above)}")
        if self.minimum is not None and self.maximum is not None:
            parts.append(f"from {_num(self.minimum)} to {_num(self.maximum)}")
        elif self.minimum is not None:
            parts.append(f"{_num(self.minimum)} or more")
        elif self.maximum is not None:
            parts.append(f"at most {_num(self.maximum)}")
        return "be " + " and ".join(parts) + (f" ({self.why})" if self.why else "")

    def bad_examples(self, default: Any) -> list[Any]:
        step = 1 if isinstance(default, int) else 0.5
        out: list[Any] = []
        if self.above is not None:
            out += [type(default)(self.above), type(default)(self.above - step)]
        if self.minimum is not None:
            out.append(type(default)(self.minimum - step))
        if self.maximum is not None:
            out.append(type(default)(self.maximum + step))
        return out


POSITIVE = Range(above=0)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class Url:
    schemes: tuple[str, ...]
    empty_ok: bool = True

    def problem(self, value: Any) -> str | None:
        if value == "" and self.empty_ok:
            return None
        parts = urlsplit(value)
        if parts.scheme.lower() in self.schemes and (parts.netloc or parts.scheme == "unix"):
            return None
        return "be a " + " or ".join(f"{s}://" for s in self.schemes) + " URL" + (" or empty" if self.empty_ok else "")

    def bad_examples(self, default: Any) -> list[Any]:
        return ["host.example/path", "ftp://host.example/"] + ([] if self.empty_ok else [""])


@dataclass(frozen=True)
class Check:
    """A rule given as a function (None when fine, else what the value must be) and values it refuses."""

    test: Callable[[Any], str | None]
    examples: tuple[Any, ...]

    def problem(self, value: Any) -> str | None:
        return self.test(value)

    def bad_examples(self, default: Any) -> list[Any]:
        return list(self.examples)


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "not be empty"


def _host(value: str) -> str | None:
    """An IP address, or a host name (letters, digits, hyphens, dots) that is not a bad dotted quad."""
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*\.?", value) \
            and not re.fullmatch(r"[\d.]+", value):
        return None
    return "be an IP address (127.0.0.1, 0.0.0.0, ::1) or a host name"


def _origin(value: str) -> str | None:
    parts = urlsplit(value.rstrip("/"))
    if parts.scheme in ("http", "https") and parts.netloc and not parts.path and not parts.query:
        return None
    return "be an Origin: scheme://host[:port] (http or https, no path)"


def _network(value: str) -> str | None:
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return "be an address or CIDR (10.0.0.0/8, 2001:db8::/32)"
    return None


def _channel(value: str) -> str | None:
    return None if value in CHANNELS else f"be one of {', '.join(CHANNELS)}"


def _env_name(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        return None
    return "be the NAME of an environment variable holding the key (never the key itself)"


def _uuid(value: str) -> str | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return "be the account's Broker API id (a UUID)"
    return None


def _dotted_path(value: str) -> str | None:
    return None if value and all(value.split(".")) else "be a field name or dotted path such as user.id"


def _existing_file(value: str) -> str | None:
    return None if not value or os.path.isfile(value) else "name an existing file"


def _key_name(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9_.:\-{}]{1,200}", value):
        return None
    return "be a name of letters, digits and _ . : - { } (the key is cluster.key_prefix + it)"


def parse_start(text: str) -> str | datetime:
    """``simulator.start``: LATEST_OPEN, WALL_CLOCK, or an aware datetime (a naive one is New York time)."""
    word = text.strip().lower()
    if word in (LATEST_OPEN, ""):
        return LATEST_OPEN
    if word == WALL_CLOCK:
        return WALL_CLOCK
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError("simulator.start", f"must be {LATEST_OPEN}, {WALL_CLOCK} or an ISO 8601 time "
                                             f"(2026-03-02T09:30), got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("America/New_York"))
    first, last = NYSE.start_year, NYSE.end_year   # the years whose exchange closures are known
    if not first <= moment.astimezone(ZoneInfo("America/New_York")).year <= last:
        raise ConfigError("simulator.start", f"must fall within the NYSE calendar's years {first}-{last}, "
                                             f"got {text!r}")
    return moment


def _start(value: str) -> str | None:
    try:
        parse_start(value)
    except ConfigError as exc:
        return exc.message.removeprefix("must ")
    return None


# Settings whose values are secrets: an error names them, never quotes them.
SECRETS = frozenset({"accounts.key", "auth.admin_token"})

# Rules by dotted key (see Rule 1: numbers not listed must be greater than 0).
RULES: dict[str, Rule] = {
    "server.host": Check(_host, ("", " ", "999.1.1.1", "local host", "http://127.0.0.1")),
    "server.port": Range(1, 65535, why="a TCP port"),
    "server.allowed_origins[]": Check(_origin, ("app.example", "https://app.example/path", "ws://app.example")),
    "server.certfile": Check(_existing_file, ("/nonexistent/cert.pem",)),
    "server.keyfile": Check(_existing_file, ("/nonexistent/key.pem",)),
    "server.gc_full_collect_seconds": Range(minimum=0, why="0 = CPython's own policy"),
    "streaming.send_buffer_bytes": Range(minimum=0, why="0 = the kernel's own sizing"),
    "server.trusted_proxies[]": Check(_network, ("10.0.0.0/33", "proxy.local")),
    "auth.hash_queue_size": Range(minimum=0, why="0 = only the workers, nobody waits"),
    "server.idle_timeout_seconds": Range(maximum=3600, above=0),
    "server.header_timeout_seconds": Range(maximum=3600, above=0),
    "server.body_timeout_seconds": Range(maximum=3600, above=0),
    "server.max_body_bytes": Range(256, 1048576, why="a login is a few hundred bytes"),
    "server.listen_backlog": Range(16, 65535),
    "server.accept_pause_seconds": Range(0.01, 10),
    "streaming.immediate_channels[]": Check(_channel, ("ordrs", "quotes")),
    "auth.database": Check(_non_empty, ("",)),
    "auth.external_session_url": Url(("http", "https")),
    "auth.external_user_id_field": Check(_dotted_path, ("", "user..id", ".id")),
    "simulator.seed": Range(minimum=0),
    "simulator.start": Check(_start, ("yesterday", "2026-13-45", "now", "2200-01-02T10:00")),
    "simulator.orders_per_day": Range(minimum=0),
    # The engine spaces a user's account updates >= 6.05 s apart and each user draws up to 1.5x the mean.
    "simulator.account_updates_per_minute": Range(maximum=6.5, above=0, why="one at most every 6 s a user"),
    "simulator.margin": Range(1, 4, why="1 = cash account, 2 = Reg-T, 4 = day-trading margin"),
    "simulator.pregenerate_seconds": Range(0, 3600),
    "simulator.user_poll_seconds": Range(0, 3600),
    "alpaca.accounts[].user": Check(_non_empty, ("",)),
    "alpaca.accounts[].key_env": Check(_env_name, ("", "PK ABC/123")),
    "alpaca.accounts[].secret_env": Check(_env_name, ("", "secret=xyz")),
    "alpaca.trading_stream_url": Url(("ws", "wss")),
    "alpaca.data_stream_url": Url(("ws", "wss")),
    "alpaca.rest_url": Url(("http", "https")),
    "alpaca.account_update_interval_seconds": Range(minimum=0, why="0 = on every price tick"),
    "alpaca_broker.key_env": Check(_env_name, ("", "CK ABC/123")),
    "alpaca_broker.secret_env": Check(_env_name, ("", "secret=xyz")),
    "alpaca_broker.accounts[].user": Check(_non_empty, ("",)),
    "alpaca_broker.accounts[].account_id": Check(_uuid, ("", "not-a-uuid")),
    "alpaca_broker.rest_url": Url(("http", "https")),
    "accounts.key": Check(check_key, ("not-a-fernet-key", "x" * 44)),
    "accounts.poll_seconds": Range(0.1, 3600),
    "cluster.redis_url": Url(("redis", "rediss", "unix")),
    "cluster.state_keep_days": Range(0, 3650, why="0 = kept until deleted"),
    "ingest.stream": Check(_key_name, ("", "my stream", "a\nb")),
    "ingest.group": Check(_key_name, ("", "two words")),
    "ingest.read_count": Range(1, 10000),
    "ingest.block_ms": Range(10, 10000, why="a node notices shutdown between reads"),
    "ingest.claim_idle_seconds": Range(1, 20, why="a dead node's entries are taken over within 30 s"),
    "ingest.claim_interval_seconds": Range(0.1, 10, why="a dead node's entries are taken over within 30 s"),
    "ingest.max_deliveries": Range(1, 1000),
    "ingest.dead_letter_max": Range(1, 10_000_000),
}


def rule_for(key: str, value: Any) -> Rule | None:
    """The rule of dotted ``key`` (list indexes written ``[]``); numbers default to POSITIVE."""
    rule = RULES.get(re.sub(r"\[\d+\]", "[]", key))
    if rule is None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return POSITIVE
    return rule


def check_value(key: str, value: Any) -> None:
    rule = rule_for(key, value)
    problem = rule.problem(value) if rule is not None else None
    if problem is not None:
        shown = f"a value of {len(value)} characters" if key in SECRETS else repr(value)
        raise ConfigError(key, f"must {problem}, got {shown}")


def check_together(s: Settings) -> None:
    """Rules between settings, checked once all are loaded."""
    if bool(s.server.certfile) != bool(s.server.keyfile):
        missing = "server.keyfile" if s.server.certfile else "server.certfile"
        raise ConfigError(missing, "TLS needs both server.certfile and server.keyfile")
    if s.server.pending_connections_per_address > s.server.pending_connections:
        raise ConfigError("server.pending_connections_per_address",
                          f"must be at most server.pending_connections ({s.server.pending_connections})")
    if s.server.workers > 1 and not s.cluster.redis_url:
        raise ConfigError("server.workers", "more than 1 needs cluster.redis_url "
                                            "(workers share events, offsets and sessions through Redis)")
    if s.ingest.enabled and not s.cluster.redis_url:
        raise ConfigError("ingest.enabled", "the Redis Streams ingest needs cluster.redis_url (the stream is "
                                            "read from Redis); set it, or publish over HTTP instead")
    for section, accounts in (("alpaca", s.alpaca.accounts), ("alpaca_broker", s.alpaca_broker.accounts)):
        users = [a.user for a in accounts]
        for i, user in enumerate(users):
            if user in users[:i]:
                raise ConfigError(f"{section}.accounts[{i}].user", f"{user!r} is mapped to two accounts")


def check_environment(s: Settings, env: Mapping[str, str]) -> None:
    """What the settings need from the environment to start (the Alpaca keys they name)."""
    if s.feed.source == "alpaca-broker":
        broker = s.alpaca_broker
        missing = [name for name in (broker.key_env, broker.secret_env) if not env.get(name)]
        if missing:
            raise ConfigError("alpaca_broker.key_env", f"the broker feed needs its key: {' and '.join(missing)} "
                                                       "not set (see docs/alpaca.md)")
        return
    if s.feed.source != "alpaca":
        return
    if s.accounts.key:  # linked accounts (portfolio-ws accounts link) may come while it runs
        return
    if not s.alpaca.accounts:
        raise ConfigError("alpaca.accounts", "the alpaca feed needs at least one account mapping, "
                                             "or accounts.key for linked accounts (see docs/alpaca.md)")
    if not any(env.get(a.key_env) and env.get(a.secret_env) for a in s.alpaca.accounts):
        names = ", ".join(f"{a.key_env}/{a.secret_env}" for a in s.alpaca.accounts)
        raise ConfigError("alpaca.accounts", f"no account has its key variables set ({names}): "
                                             "the alpaca feed would stream nothing")
