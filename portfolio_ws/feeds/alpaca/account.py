"""One configured Alpaca account of the live feed: its settings checked, its keys read from the
environment (never logged), its portfolio state, and the handles of the parts the feed runs for it
(trading stream, REST client, timers, tasks). The feed (feed.py) owns what runs; this is what it
keeps per account."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Mapping

from ...errors import ConfigError
from ...settings import AlpacaAccount
from .sdk import Credentials, LoopTradingStream, StreamStatus, halt
from .state import AccountState


@dataclass(eq=False)
class Account:
    """One configured account: its credentials, state and the handles of its running parts."""

    config: AlpacaAccount
    state: AccountState
    trading: StreamStatus
    creds: Credentials | None = None
    client: Any = None
    stream: LoopTradingStream | None = None
    sync_wanted: asyncio.Event = field(default_factory=asyncio.Event)
    sync_timer: asyncio.TimerHandle | None = None
    account_timer: asyncio.TimerHandle | None = None
    account_sent_at: float = float("-inf")
    rest_error: str | None = None
    last_sync_at: float | None = None
    syncs: int = 0
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    # A linked account (``portfolio-ws accounts link``): its row's revision, and its kind.
    revision: int | None = None
    kind: str = "keys"
    # A Broker API account (feeds/alpaca_broker): its id there; REST goes through the broker key.
    broker_account_id: str = ""
    # False once removed (unlinked): its loops end even if a cancel was swallowed.
    active: bool = True

    @property
    def user_id(self) -> str:
        return self.config.user

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.creds.secrets if self.creds else ()


def configured_account(index: int, config: AlpacaAccount, env: Mapping[str, str], trading: StreamStatus) -> Account:
    """The account ``config`` (``alpaca.accounts[index]``) with keys from ``env``. Missing settings
    are a ConfigError; missing keys are not fatal (the other users still stream): the account's
    trading status names them and health() shows it."""
    where = f"alpaca.accounts[{index}]"
    for name in ("user", "key_env", "secret_env"):
        if not getattr(config, name):
            raise ConfigError(f"{where}.{name}", "is required")
    account = Account(config=config, state=AccountState(config.user), trading=trading)
    missing = [name for name in (config.key_env, config.secret_env) if not env.get(name)]
    if missing:
        account.trading.error = f"environment variable {' and '.join(missing)} not set"
    else:
        account.creds = Credentials(config.user, env[config.key_env], env[config.secret_env])
    return account


async def halt_accounts(accounts: list[Account], tasks: list[asyncio.Task[Any]], timeout: float) -> None:
    """Stop the accounts' timers, streams and tasks (and ``tasks``) within ``timeout``."""
    tasks = list(tasks)
    for account in accounts:
        account.active = False
        for timer in (account.sync_timer, account.account_timer):
            if timer is not None:
                timer.cancel()
        tasks.extend(account.tasks)
        account.tasks.clear()
    await halt([a.stream for a in accounts if a.stream], tasks, timeout)
    for account in accounts:
        account.stream = None
