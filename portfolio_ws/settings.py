"""Every setting, its type and its default: the one home of defaults (``config.yaml`` mirrors it,
and a test keeps the two equal).

Precedence, lowest first: these defaults, the YAML file, environment variables
(``PORTFOLIO_WS_<SECTION>_<KEY>``, plus ``ENABLE_REALTIME_PORTFOLIO``), then CLI flags.
Each section is a frozen dataclass; ``portfolio_ws.config`` parses and validates by field type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .cluster.keys import KEY_PREFIX


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 5000
    # Origins allowed to open the WebSocket and to log in (scheme://host[:port]); empty = the server's own host.
    allowed_origins: tuple[str, ...] = ()
    # Reverse proxies (CIDRs) whose X-Forwarded-For / X-Real-IP name the client; nobody else's are read.
    trusted_proxies: tuple[str, ...] = ()
    # On SIGINT/SIGTERM: seconds to flush and close before the process exits anyway.
    drain_seconds: float = 5.0
    # Protocol-level (RFC 6455) pings, so dead peers are dropped.
    websocket_ping_interval_seconds: float = 20.0
    websocket_ping_timeout_seconds: float = 30.0
    # PEM certificate chain and private key: both set = serve https and wss; empty = plain http and ws.
    certfile: str = ""
    keyfile: str = ""
    # The asyncio event loop Tornado runs on: the standard one, or uvloop (pip install 'portfolio-ws[fast]').
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    # Server processes on this port (SO_REUSEPORT); more than 1 needs cluster.redis_url.
    workers: int = 1
    # Full garbage collections stop the IOLoop (for how long: docs/performance.md, "Garbage
    # collection"): run one this often (or sooner after a quarter of the open sockets, at least
    # 1,000, have closed) instead of whenever CPython decides (often, under load). 0 = CPython's own policy.
    gc_full_collect_seconds: float = 600.0
    # --- Connections before they are authenticated WebSockets (server/accept.py, docs/reliability.md)
    # Closed when no byte of a request has come this long (a new connection, or one kept alive).
    idle_timeout_seconds: float = 10.0
    # Closed when a request head (request line and headers) is not complete this long after the
    # connection opened or its previous response.
    header_timeout_seconds: float = 15.0
    # Closed when a request body is not complete this long after its head.
    body_timeout_seconds: float = 15.0
    # Largest request body of the routes that take one (login, logout); every other route takes none.
    # Larger is refused 413 on its Content-Length, before the body is read.
    max_body_bytes: int = 4096
    # Pending connections (accepted, not yet upgraded) per client address and in total. At a cap
    # the oldest one still waiting for its request is closed for the new one; none waiting: 503.
    pending_connections_per_address: int = 1000
    pending_connections: int = 5000
    # Connections the kernel completes before the server accepts them (a reconnect storm's queue);
    # the kernel caps it at net.core.somaxconn.
    listen_backlog: int = 4096
    # Out of file descriptors (EMFILE/ENFILE) in accept: stop accepting this long, then retry.
    accept_pause_seconds: float = 0.5


@dataclass(frozen=True)
class StreamingSettings:
    enabled: bool = True
    batch_window_ms: int = 1000
    # How often the batcher (a PeriodicCallback) runs. Each user's window goes once a window at a
    # moment fixed for that user (one of window / interval slots), so each tick writes a slice of
    # the users, not everyone at once.
    flush_interval_ms: int = 50
    # Events on these channels flush the user's pending window at once.
    immediate_channels: tuple[str, ...] = ("orders", "trades")
    # The largest client message: the protocol's largest, a subscribe, is a few hundred bytes.
    max_message_bytes: int = 4096
    # A connection with more than this many bytes written but unread by its peer is closed 1013.
    max_outbound_bytes: int = 1048576
    # The kernel's send buffer per socket (SO_SNDBUF; Linux doubles it), counted in the above with
    # Tornado's: small, so a stalled reader is found at max_outbound_bytes, not megabytes later.
    # 0 = the kernel's own sizing (it grows to several MiB per socket).
    send_buffer_bytes: int = 65536
    # Offer permessage-deflate: far fewer bytes on the wire, more memory and CPU per socket.
    compression: bool = False
    # Load tests only: data messages carry "eventAt" and "lastEventAt" (when the oldest and the
    # newest event in them arrived, epoch seconds).
    trace_event_time: bool = False


@dataclass(frozen=True)
class LimitSettings:
    connections_per_user: int = 5
    total_connections: int = 100
    # Every frame a client sends counts (protocol pings, pongs and fragments too), and its bytes
    # against a byte budget beside it (burst: one second's worth).
    messages_per_second: float = 100.0
    rate_limit_burst: int = 100
    bytes_per_second: int = 32768
    rate_limit_close_after_seconds: float = 5.0


@dataclass(frozen=True)
class RecoverySettings:
    max_events: int = 1000
    max_age_seconds: float = 300.0


@dataclass(frozen=True)
class AuthSettings:
    database: str = "portfolio-ws.sqlite3"
    session_idle_seconds: float = 1800.0
    session_absolute_seconds: float = 43200.0
    # Bearer token for /api/admin/*; set it through PORTFOLIO_WS_AUTH_ADMIN_TOKEN, never in a file.
    admin_token: str = field(default="", repr=False)
    # Login attempts (counted as they start; a success is not counted) allowed within the window for
    # one username from one client address, and from one address whatever the username; then 429.
    login_failures_per_user_address: int = 10
    login_failures_per_address: int = 50
    login_window_seconds: float = 300.0
    # The username alone is never locked: past this many attempts in the window (all addresses),
    # each further attempt waits first, from login_user_delay_seconds doubling up to the max.
    login_user_delay_after: int = 10
    login_user_delay_seconds: float = 0.5
    login_user_max_delay_seconds: float = 8.0
    # Password checks (argon2id, ~64 MiB each) run at once, and how many more may wait; past that 503.
    hash_workers: int = 2
    hash_queue_size: int = 16
    # Seconds between checks that the sessions of open sockets are still valid (expired: 1008).
    session_recheck_seconds: float = 30.0
    # Sessions from an existing platform: its URL answering 200 + JSON naming the user to a request
    # with the "session" cookie (e.g. https://platform.example/api/auth/me); empty = our own logins.
    external_session_url: str = ""
    # Where the user id is in that JSON answer (a dotted path: "userId", "user.id").
    external_user_id_field: str = "userId"
    # How long a verdict of the platform is kept (per session) before it is asked again.
    external_cache_seconds: float = 10.0
    # Connect and answer timeout of each request to the platform.
    external_timeout_seconds: float = 3.0


@dataclass(frozen=True)
class FeedSettings:
    source: Literal["simulator", "alpaca", "alpaca-broker", "publish", "none"] = "simulator"
    # Status goes "offline" when the feed is silent this long while the market is open.
    silence_offline_seconds: float = 300.0


@dataclass(frozen=True)
class SimulatorSettings:
    """The market-hours simulator (``simulator/``). Owned by the simulator; extend fields there."""

    seed: int = 1
    # Simulated seconds per real second (1 = real time, 60 = a minute a second).
    speed: float = 1.0
    # "latest-open": start at the latest session's open; "wall-clock": follow real market hours;
    # or an ISO 8601 time to start at.
    start: str = "latest-open"
    users: int = 3
    # Symbols traded: the first 30 are real large caps, beyond them synthetic tickers.
    symbols: int = 30
    # Mean orders a user's strategy places per session; each user draws 0.5x to 2x of it.
    orders_per_day: float = 10.0
    # Scales every symbol's print rate (each print is one position_update per holder).
    tick_rate: float = 1.0
    # Mean account updates a minute per user while the market is open; each user draws 0.5x-1.5x.
    account_updates_per_minute: float = 4.0
    # Starting equity of a simulated account in dollars; each user draws 0.25x to 4x of it.
    starting_equity: int = 100000
    # Buying power = max(0, margin x equity - gross position value): 2 = Reg-T, 1 = cash account.
    margin: float = 2.0
    # Real milliseconds between the feed's steps of simulated time.
    step_ms: int = 100
    # In simulated time (not wall-clock), closed hours pass in an instant: open follows close.
    skip_closed: bool = True
    # Load tests only: generate this many simulated seconds of events at start, then publish them
    # on schedule, so the server's CPU while measured excludes generating them (0: generate live).
    pregenerate_seconds: float = 0.0
    # Seconds between the simulator's reads of the users table while it runs: a user added meanwhile
    # (portfolio-ws users add, POST /api/v1/users) starts trading within this. 0: only the users at start.
    user_poll_seconds: float = 5.0


@dataclass(frozen=True)
class AlpacaAccount:
    """One portfolio-ws user mapped to one Alpaca account. Secrets stay in the environment."""

    user: str = ""
    key_env: str = ""
    secret_env: str = ""
    paper: bool = True


@dataclass(frozen=True)
class AlpacaSettings:
    """The live Alpaca feed (``portfolio_ws/feeds/alpaca/``)."""

    accounts: tuple[AlpacaAccount, ...] = ()
    data_feed: Literal["iex", "sip"] = "iex"
    # Seconds between REST re-syncs of positions, account and open orders.
    sync_interval_seconds: float = 60.0
    # Overrides for tests and proxies; empty = Alpaca's own endpoints.
    trading_stream_url: str = ""
    data_stream_url: str = ""
    rest_url: str = ""
    # Price ticks recompute equity; at most one account_update per user this often (0 = every tick).
    account_update_interval_seconds: float = 1.0
    # Seconds between reads of Alpaca's market clock (is the market open?).
    clock_interval_seconds: float = 60.0
    # Timeout of each REST call (the SDK sets none).
    rest_timeout_seconds: float = 10.0


@dataclass(frozen=True)
class BrokerAccount:
    """One portfolio-ws user mapped to one account of the broker partner (its Broker API id)."""

    user: str = ""
    account_id: str = ""


@dataclass(frozen=True)
class AlpacaBrokerSettings:
    """The Alpaca Broker API feed (``portfolio_ws/feeds/alpaca_broker/``): one broker key for every
    account of a broker partner, one trade-events stream (SSE) for all of them."""

    # Names of the environment variables holding the broker API key and secret (never the values).
    key_env: str = "ALPACA_BROKER_KEY"
    secret_env: str = "ALPACA_BROKER_SECRET"
    # True: Alpaca's broker sandbox; False: production.
    sandbox: bool = True
    accounts: tuple[BrokerAccount, ...] = ()
    # Version of the trade-events endpoint: v2 (ULID event ids) or the legacy v1 (integer ids).
    events_api: Literal["v1", "v2"] = "v2"
    # Override of the Broker API base URL (tests, proxies); empty = Alpaca's.
    rest_url: str = ""
    # Seconds between REST re-syncs of each account's positions, account and orders.
    sync_interval_seconds: float = 60.0
    rest_timeout_seconds: float = 10.0
    # Nothing (no event, no heartbeat) on the events stream this long: reconnect and resume.
    silence_seconds: float = 60.0
    # Reconnection backoff of the events stream: 1, 2, 4 ... up to this.
    reconnect_max_seconds: float = 30.0


@dataclass(frozen=True)
class AccountsSettings:
    """Linked broker accounts (``portfolio-ws accounts``, ``auth/linked.py``), kept in auth.database."""

    # Fernet key(s) encrypting the linked accounts' secrets, comma-separated, newest first; set it
    # through PORTFOLIO_WS_ACCOUNTS_KEY, never in a file. Empty: linked accounts are not read.
    key: str = field(default="", repr=False)
    # Seconds between the Alpaca feed's reads of the linked accounts (a link/unlink shows within this).
    poll_seconds: float = 2.0


@dataclass(frozen=True)
class ClusterSettings:
    """Several processes or hosts sharing one Redis (``bus/redis``, ``slots/redis``, ``auth/sessions/redis``)."""

    # redis://host:port/db; empty = one process with the in-memory bus and SQLite sessions.
    redis_url: str = ""
    # This node's name in Redis and in logs; empty = a random one per start.
    node_id: str = ""
    # Prefix of every Redis key and channel, so several deployments can share one Redis.
    key_prefix: str = KEY_PREFIX
    # Seconds a crashed node's leases (connection slots, the feed lock) outlive it.
    lease_ttl_seconds: float = 15.0
    # Days a user's offset and portfolio state stay in Redis after its last event or load (0: until
    # deleted). Longer than any market closure, so a node started late still serves the same snapshot.
    state_keep_days: float = 7.0


@dataclass(frozen=True)
class IngestSettings:
    """Redis Streams ingest (``portfolio_ws/ingest/``, docs/integration.md "Redis Streams"): every
    node reads the platform's events from one stream in one consumer group. Needs cluster.redis_url."""

    enabled: bool = False
    # The stream's key is cluster.key_prefix + this (pws:ingest); dead letters go to <key>:dead.
    stream: str = "ingest"
    # The consumer group every node reads in (each entry goes to one node).
    group: str = "portfolio-ws"
    # Entries read per XREADGROUP, and how long one waits for entries (ms).
    read_count: int = 500
    block_ms: int = 1000
    # An entry pending (read, not acknowledged) this long is taken over by another node (XAUTOCLAIM);
    # each node looks for such entries every claim_interval_seconds.
    claim_idle_seconds: float = 10.0
    claim_interval_seconds: float = 5.0
    # An entry delivered this many times without being published goes to the dead-letter stream.
    max_deliveries: int = 5
    # Dead letters kept (the oldest trimmed beyond it).
    dead_letter_max: int = 10000


@dataclass(frozen=True)
class LoggingSettings:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json: bool = False


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    streaming: StreamingSettings = field(default_factory=StreamingSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    feed: FeedSettings = field(default_factory=FeedSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    alpaca: AlpacaSettings = field(default_factory=AlpacaSettings)
    alpaca_broker: AlpacaBrokerSettings = field(default_factory=AlpacaBrokerSettings)
    accounts: AccountsSettings = field(default_factory=AccountsSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
