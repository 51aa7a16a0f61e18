"""Running the server as a process: build the stores, feed and service from settings, listen,
and shut down gracefully on SIGINT/SIGTERM (flush, 1001 to every client, exit 0)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import ssl
from typing import Callable


from ..auth.sessions import SessionStore
from ..auth.stores import open_session_store, open_user_store
from ..auth.users import UserStoreBase
from ..bus import EventBus
from ..bus.memory import InMemoryBus
from ..errors import ConfigError, UsageError
from ..feeds import Feed, NoFeed, PublishedOnly
from ..settings import ServerSettings, Settings
from ..slots import ConnectionSlots, LocalSlots
from .accept import listen_sockets, raise_file_limit
from .app import make_parts, make_server
from .gcpolicy import FullCollections
from .service import Service

log = logging.getLogger("portfolio_ws.runner")


def build_feed(settings: Settings, users: UserStoreBase) -> Feed:
    source = settings.feed.source
    if source == "simulator":
        from simulator.feed import SimulatorFeed

        return SimulatorFeed([u.user_id for u in users.list()], settings.simulator, users=users.user_ids_async)
    if source == "alpaca":
        from ..auth.linked import LinkedAccountStore
        from ..feeds.alpaca.feed import AlpacaFeed
        from ..feeds.alpaca.linked import LinkedAccounts

        if not settings.alpaca.accounts and not settings.accounts.key:
            raise ConfigError("alpaca.accounts", "the alpaca feed needs at least one account mapping, "
                                                 "or accounts.key for linked accounts")
        try:  # linked accounts (portfolio-ws accounts link) are picked up while it runs
            store = LinkedAccountStore(settings.auth.database, settings.accounts.key)
        except UsageError as exc:
            raise ConfigError("auth.database", str(exc)) from None
        return AlpacaFeed(settings.alpaca, linked=LinkedAccounts(store, settings.accounts.poll_seconds))
    if source == "alpaca-broker":
        from ..auth.linked import LinkedAccountStore
        from ..feeds.alpaca_broker.feed import AlpacaBrokerFeed
        from ..feeds.alpaca_broker.linked import BrokerLinkedAccounts

        try:  # linked broker accounts (accounts link USER --broker-account ID) are picked up while it runs
            store = LinkedAccountStore(settings.auth.database, settings.accounts.key)
        except UsageError as exc:
            raise ConfigError("auth.database", str(exc)) from None
        return AlpacaBrokerFeed(settings.alpaca_broker,
                                linked=BrokerLinkedAccounts(store, settings.accounts.poll_seconds))
    if source == "publish":
        return PublishedOnly()
    return NoFeed()


async def build_shared(settings: Settings) -> tuple[EventBus, SessionStore]:
    """The bus and session store: in this process, or in Redis when ``cluster.redis_url`` is set
    (then the bus is started: a node must not serve before it hears the others)."""
    cluster = settings.cluster
    sessions: SessionStore | None = None
    if settings.auth.external_session_url:
        from ..auth.sessions.external import ExternalSessionStore

        sessions = ExternalSessionStore.from_settings(settings.auth)
    if sessions is None:  # the database holds sessions; in a cluster Redis only caches them
        try:
            sessions = await open_session_store(settings.auth)
        except UsageError as exc:
            raise ConfigError("auth.database", str(exc)) from None
        if cluster.redis_url:
            from ..auth.sessions.redis import RedisSessionCache

            sessions = RedisSessionCache(sessions, cluster.redis_url, cluster.key_prefix)
    if not cluster.redis_url:
        return InMemoryBus(), sessions
    from ..bus.redis import RedisBus
    from ..cluster.redis import redacted

    bus = RedisBus(cluster.redis_url, prefix=cluster.key_prefix, node_id=cluster.node_id,
                   max_events=settings.recovery.max_events, max_age_seconds=settings.recovery.max_age_seconds,
                   state_keep_seconds=cluster.state_keep_days * 86400)
    try:
        await bus.start()
    except (OSError, asyncio.TimeoutError) as exc:
        await bus.close(drain_seconds=0)
        await sessions.close()
        why = bus.last_error or exc  # a refused port retries until start's timeout: say what it was
        raise ConfigError("cluster.redis_url", f"cannot reach Redis at {redacted(cluster.redis_url)}: {why}") from None
    return bus, sessions


def build_slots(settings: Settings, bus: EventBus) -> ConnectionSlots:
    """Cluster-wide connection limits in Redis when clustered; else the hub's own limits."""
    cluster = settings.cluster
    if not cluster.redis_url:
        return LocalSlots()
    from ..slots.redis import RedisSlots

    return RedisSlots(cluster.redis_url, bus.node_id or cluster.node_id,
                      settings.limits.connections_per_user, settings.limits.total_connections,
                      cluster.lease_ttl_seconds, cluster.key_prefix)


def tls_context(server: ServerSettings) -> ssl.SSLContext | None:
    """The server's TLS context when a certificate is configured, else None (plain http/ws)."""
    if not server.certfile and not server.keyfile:
        return None
    if not server.certfile or not server.keyfile:
        missing = "server.keyfile" if server.certfile else "server.certfile"
        raise ConfigError(missing, "TLS needs both server.certfile and server.keyfile")
    for key, path in (("server.certfile", server.certfile), ("server.keyfile", server.keyfile)):
        if not os.path.isfile(path):
            raise ConfigError(key, f"no such file: {path}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(server.certfile, server.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("server.certfile", f"cannot load the certificate and key: {exc}") from None
    return context


def open_users(settings: Settings) -> UserStoreBase:
    """The user store of ``auth.database`` (SQLite file or PostgreSQL URL); one line naming the
    setting when it can't be opened."""
    try:
        return open_user_store(settings.auth.database)
    except UsageError as exc:
        raise ConfigError("auth.database", str(exc)) from None


async def serve(settings: Settings, *, feed_factory: Callable[[UserStoreBase], Feed] | None = None,
                ready: Callable[[str], None] | None = None, reuse_port: bool = False) -> None:
    """Serve until SIGINT/SIGTERM, then shut down within ``server.drain_seconds``. ``reuse_port``:
    bind with SO_REUSEPORT, as one of ``serve --workers N``'s processes."""
    tls = tls_context(settings.server)  # a bad certificate stops us before anything is opened
    users = open_users(settings)
    bus, sessions = await build_shared(settings)
    feed = feed_factory(users) if feed_factory else build_feed(settings, users)
    cluster = settings.cluster
    if cluster.redis_url:  # every node has the feed; the holder of the Redis lock runs it
        from ..feeds.leader import LeaderFeed

        feed = LeaderFeed(feed, cluster.redis_url, bus.node_id or cluster.node_id,
                          cluster.lease_ttl_seconds, cluster.key_prefix)
    # In a cluster, Redis numbers events (its counters start at the publish time in ms), so the
    # core's own base must not sit above them.
    service = Service(settings, bus=bus, feed=feed, users=users, sessions=sessions,
                      seq_base=0 if settings.cluster.redis_url else None, slots=build_slots(settings, bus))
    files, _ = raise_file_limit()  # every connection is a file
    parts = make_parts(service)  # the login limits, the equity history, the publish route's state
    http = make_server(service, parts, tls)
    http.add_sockets(listen_sockets(settings.server, reuse_port=reuse_port))
    await service.start()
    # What start made (modules, settings, the simulator's users, events pregenerated for a load
    # test) lives as long as the process: keep it out of the collector's full passes, which stop
    # the IOLoop for as long as they take (benchmarks/gc_pause.py).
    gc.freeze()
    collections = FullCollections(settings.server.gc_full_collect_seconds,
                                  closed=lambda: service.core.stats.disconnects,
                                  open_sockets=lambda: len(service.sockets))
    collections.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if service.cluster_stats is not None:  # its id is another live node's: stop, and say so (exit 2)
        def duplicate() -> None:
            if isinstance(feed, LeaderFeed):
                feed.hand_over = False  # the lock under this id is the live node's
            stop.set()

        service.cluster_stats.on_duplicate = duplicate
    url = f"{'https' if tls else 'http'}://{settings.server.host}:{settings.server.port}"
    log.info("portfolio-ws listening on %s (feed: %s, streaming %s, loop: %s)", url, feed.source,
             "enabled" if settings.streaming.enabled else "disabled", type(loop).__module__.split(".")[0])
    log.info("open-file limit %d: about that many connections at once", files)
    if ready:
        ready(url)
    await stop.wait()
    log.info("shutting down: closing %d connection(s)", len(service.sockets))
    http.stop()  # stop accepting
    await service.shutdown()
    await parts.close()
    collections.stop()
    try:
        await asyncio.wait_for(http.close_all_connections(), timeout=1.0)
    except asyncio.TimeoutError:
        pass
    await sessions.close()
    await bus.close()
    await users.aclose()
    log.info("stopped")
    if service.cluster_stats is not None and service.cluster_stats.duplicate:
        raise ConfigError("cluster.node_id", service.cluster_stats.duplicate)
