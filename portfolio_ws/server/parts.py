"""What the HTTP handlers use beside the stream, made from the settings where the service is built
(the composition root: ``runner.serve``, the tests' servers) and closed there after the service
stops. The service pumps the core and owns the tick; none of these are its business:

- the login limits, in Redis when there is one (shared by every worker and node), the bounded queue
  of password checks and the proxies trusted to name the client (docs/reliability.md, "Login
  limits"): used by the login handler alone;
- each user's equity through the day, a point a minute (``GET /api/portfolio/equity``), taken
  straight from the bus in one process, read from Redis in a cluster (``cluster/equity.py``);
- what the publish route keeps between requests (``publish.Publishing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..auth.hashqueue import HashQueue
from ..auth.throttle import LoginPolicy, LoginThrottle
from ..auth.throttle_redis import login_throttle
from ..bus import EventBus
from ..cluster.equity import RedisEquityHistory
from ..core.equity import EquityHistory
from ..settings import Settings
from .admin import PlatformCounters
from .peers import TrustedProxies
from .publish import Publishing


@dataclass
class HttpParts:
    throttle: LoginThrottle
    hash_queue: HashQueue
    proxies: TrustedProxies
    equity: EquityHistory | RedisEquityHistory
    publishing: Publishing
    unsubscribe: Callable[[], None]

    @classmethod
    def build(cls, settings: Settings, bus: EventBus, offset_of: Callable[[str], int] | None,
              counters: PlatformCounters | None = None) -> "HttpParts":
        """``offset_of``: where an event's offset is read when this process numbers events (one
        node: ``Service.offset``); None in a cluster, where Redis numbers them on the way.
        ``counters``: the publish route's counts, shown by the admin report."""
        auth, cluster = settings.auth, settings.cluster
        equity: EquityHistory | RedisEquityHistory
        if cluster.redis_url:  # each node sees only its users' events: the publish script records it
            equity, unsubscribe = RedisEquityHistory(cluster.redis_url, cluster.key_prefix), (lambda: None)
        else:
            equity = EquityHistory()
            unsubscribe = bus.subscribe(equity.take)
        return cls(
            throttle=login_throttle(LoginPolicy.from_settings(auth), cluster.redis_url, cluster.key_prefix),
            hash_queue=HashQueue(auth.hash_workers, auth.hash_queue_size),
            proxies=TrustedProxies.from_cidrs(settings.server.trusted_proxies),
            equity=equity,
            publishing=Publishing.from_settings(settings, bus, offset_of, counters),
            unsubscribe=unsubscribe,
        )

    async def close(self) -> None:
        self.unsubscribe()
        if isinstance(self.equity, RedisEquityHistory):
            await self.equity.close()
        await self.throttle.close()
        self.hash_queue.close()
        await self.publishing.keys.aclose()  # the API keys' pool (PostgreSQL)
