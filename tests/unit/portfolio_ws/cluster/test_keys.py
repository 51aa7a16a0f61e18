"""Every key this server makes in Redis, by name (cluster/redis.py's ``key``/``user_key`` build them
all). The names must not change from one release to the next: a rolling upgrade runs old and new
nodes on one Redis, and a renamed key is a lost session, slot, lock or offset."""

from __future__ import annotations

from portfolio_ws.auth.sessions.redis import RedisSessionCache
from portfolio_ws.auth.sessions.sqlite import SQLiteSessionStore
from portfolio_ws.auth.sessions import SessionLifetime
from portfolio_ws.auth.throttle import LoginPolicy
from portfolio_ws.auth.throttle_redis import RedisLoginThrottle
from portfolio_ws.bus.redis import RedisBus
from portfolio_ws.cluster.ends import ends_channel
from portfolio_ws.cluster.equity import equity_key
from portfolio_ws.cluster.published import seen_key
from portfolio_ws.cluster.stats import ClusterStats
from portfolio_ws.feeds import NoFeed
from portfolio_ws.feeds.leader import LeaderFeed, RedisFeedState
from portfolio_ws.ingest.streams import StreamIngest
from portfolio_ws.settings import ClusterSettings, IngestSettings, Settings
from portfolio_ws.slots.redis import RedisSlots

URL = "redis://127.0.0.1:1/0"  # never reached: only names are built here


def keys(prefix: str, tmp_path) -> dict[str, object]:
    bus = RedisBus(URL, prefix=prefix, node_id="n1")
    bus.incarnation = "inc"
    slots = RedisSlots(URL, "n1", 3, 10, 30.0, prefix)
    throttle = RedisLoginThrottle(URL, LoginPolicy.from_settings(Settings().auth), prefix)
    store = SQLiteSessionStore(str(tmp_path / "s.sqlite3"), SessionLifetime.from_settings(Settings().auth))
    sessions = RedisSessionCache(store, URL, prefix)
    leader = LeaderFeed(NoFeed(), URL, "n1", 10.0, prefix)
    ingest = StreamIngest(IngestSettings(), URL, prefix, bus, None, False, "n1")  # type: ignore[arg-type]
    return {
        "bus": [bus.channel, bus.seq_key("alice"), bus.recovery_key("alice"), bus.position_key("alice"),
                bus.state_key("alice"), bus.trades_key("alice"), bus.marker_key("alice", 7),
                bus.seen_key("alice"), bus.user_channel("alice")],
        "published": seen_key(prefix, "alice"),
        "equity": [bus.equity_key("alice"), equity_key(prefix, "alice")],
        "slots": [slots._user_key("alice"), slots._all_key],
        "login": throttle._keys("alice", "10.0.0.1"),
        "sessions": [sessions._session_key("d1"), sessions._user_key("alice")],
        "feed": [leader.key, leader.released_key, leader.health_key, RedisFeedState(URL, prefix).key("checkpoint-0"),
                 RedisFeedState(URL, prefix).index_key, RedisFeedState(URL, prefix).stamps_key],
        "nodes": ClusterStats(URL, "n1", prefix, dict, lambda: 0.0).key,
        "ingest": [ingest.key, ingest.dead_key],
        "ends": ends_channel(prefix),
    }


def test_the_default_prefix_and_every_key_name_are_unchanged(tmp_path):
    assert ClusterSettings().key_prefix == "pws:"
    digest_pair = "pws:login:pair:"
    found = keys("pws:", tmp_path)
    login = found.pop("login")
    assert [k[:len(p)] for k, p in zip(login, (digest_pair, "pws:login:addr:", "pws:login:user:"))] == [
        digest_pair, "pws:login:addr:", "pws:login:user:"]
    assert all(len(k.rsplit(":", 1)[1]) == 64 for k in login) and len(set(login)) == 3  # SHA-256 hex
    assert found == {
        "bus": ["pws:events", "pws:seq:{alice}", "pws:recovery:{alice}", "pws:position:{alice}",
                "pws:state:{alice}", "pws:trades:{alice}", "pws:published:{alice}:n1:inc:7",
                "pws:published:{alice}", "pws:events:{alice}"],
        "published": "pws:published:{alice}",
        "equity": ["pws:equity:{alice}", "pws:equity:{alice}"],
        "slots": ["pws:slots:user:alice", "pws:slots:all"],
        "sessions": ["pws:session:d1", "pws:sessions-of:alice"],
        "feed": ["pws:feed-leader", "pws:feed-leader-released", "pws:feed-health", "pws:feed:checkpoint-0",
                 "pws:feed-records", "pws:feed-stamps"],
        "nodes": "pws:nodes",
        "ingest": ["pws:ingest", "pws:ingest:dead"],
        "ends": "pws:ends",
    }


def test_another_prefix_changes_only_the_prefix(tmp_path):
    default, other = keys("pws:", tmp_path), keys("acme:{eu}:", tmp_path)
    assert str(other).replace("acme:{eu}:", "pws:") == str(default)
