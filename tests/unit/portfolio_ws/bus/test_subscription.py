"""The bus's subscription connection read in batches (issue 14, intake CPU per node): replies parsed
whole however the socket splits them, follows sent as one command, bad messages counted."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import InvalidResponse, ResponseError

from portfolio_ws.bus.redis import RedisBus
from portfolio_ws.bus.subscription import Subscription, parse_replies
from tests.builders import position
from tests.buses import Received
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

# What a subscription connection receives: confirmations, messages (one with CRLF and a space in
# its data, one empty), a pong, an integer, a null, a RESP3 push and an error.
STREAM = (b"*3\r\n$9\r\nsubscribe\r\n$10\r\npws:events\r\n:1\r\n"
          b"*3\r\n$10\r\nssubscribe\r\n$14\r\npws:events:{a}\r\n:1\r\n"
          b"*3\r\n$8\r\nsmessage\r\n$14\r\npws:events:{a}\r\n$17\r\n12 {\"x\":\"a\r\nb c\"}\r\n"
          b"*3\r\n$8\r\nsmessage\r\n$14\r\npws:events:{a}\r\n$0\r\n\r\n"
          b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
          b":7\r\n$-1\r\n+OK\r\n"
          b">3\r\n$8\r\nsmessage\r\n$1\r\nc\r\n$1\r\nd\r\n"
          b"-ERR unknown command\r\n")
EXPECTED: list[Any] = [[b"subscribe", b"pws:events", 1], [b"ssubscribe", b"pws:events:{a}", 1],
                       [b"smessage", b"pws:events:{a}", b'12 {"x":"a\r\nb c"}'], [b"smessage", b"pws:events:{a}", b""],
                       [b"pong", b""], 7, None, b"OK", [b"smessage", b"c", b"d"]]


def parse_in_pieces(cuts: list[int]) -> list[Any]:
    """Feed STREAM as the socket might deliver it, cut at ``cuts``, as ``Subscription.read`` does."""
    replies: list[Any] = []
    rest = b""
    for start, stop in zip([0, *cuts], [*cuts, len(STREAM)]):
        data = rest + STREAM[start:stop]
        got, used = parse_replies(data)
        replies.extend(got)
        rest = data[used:]
    assert rest == b""
    return replies


def test_replies_come_out_whole_wherever_the_socket_splits_them() -> None:
    for cut in range(len(STREAM) + 1):  # every single cut
        replies = parse_in_pieces([cut])
        assert replies[:-1] == EXPECTED and isinstance(replies[-1], ResponseError), cut
        assert str(replies[-1]) == "ERR unknown command"
    rng = random.Random(14)
    for _ in range(200):  # many cuts at once, down to one byte a read
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randrange(1, 40)))
        assert parse_in_pieces(cuts)[:-1] == EXPECTED


def test_a_reply_of_an_unknown_kind_is_an_error_not_a_hang() -> None:
    with pytest.raises(InvalidResponse):
        parse_replies(b"*1\r\n?what\r\n")


async def test_many_follows_at_once_are_one_ssubscribe(io_loop: Any, redis_server: RedisServer) -> None:
    """A burst of new users (a reconnect storm) costs one round trip, not one per user."""
    bus, publisher = RedisBus(redis_server.url, node_id="n"), RedisBus(redis_server.url, node_id="p")
    admin = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await bus.start()
    await publisher.start()
    received = Received(bus)
    users = [f"u{i}" for i in range(300)]
    try:
        await asyncio.gather(*(bus.follow(user) for user in users))
        stats = await admin.info("commandstats")
        assert stats["cmdstat_ssubscribe"]["calls"] == 1
        for user in users:
            publisher.publish(position(user, price="1.00"))
        await received.until(len(users))
        assert sorted(event.user_id for event in received.events) == sorted(users)
        assert bus.health()["following"] == len(users)
    finally:
        await bus.close()
        await publisher.close()
        await admin.aclose()


async def test_a_message_that_is_not_an_event_is_counted_and_the_next_one_delivered(
        io_loop: Any, redis_server: RedisServer) -> None:
    bus, publisher = RedisBus(redis_server.url, node_id="n"), RedisBus(redis_server.url, node_id="p")
    admin = aioredis.Redis.from_url(redis_server.url)
    await bus.start()
    await publisher.start()
    await bus.follow("u1")
    received = Received(bus)
    try:
        for garbage in (b"no-offset", b"12 {not json", b"13 \xff\xfe", b"14 {\"type\": \"nonsense\"}"):
            await admin.execute_command("SPUBLISH", bus.user_channel("u1"), garbage)
        publisher.publish(position("u1", price="2.00"))
        [(event, seq)] = await received.until(1)
        assert str(event.current_price) == "2.00" and seq is not None  # type: ignore[attr-defined]
        assert bus.counters["invalid"] == 4 and bus.connected
    finally:
        await bus.close()
        await publisher.close()
        await admin.aclose()



def message(data: bytes) -> bytes:
    return b"*3\r\n$8\r\nsmessage\r\n$1\r\nc\r\n$%d\r\n%s\r\n" % (len(data), data)


async def test_messages_are_taken_in_as_they_arrive_only_while_the_reader_waits(io_loop: Any) -> None:
    """A message is taken in the wake-up that brought it (no task switch per wake-up) only while
    the reader waits in ``read``; one declined (a gap to repair first), whatever follows it, and
    whatever arrives while the reader is busy (repairing) come out of ``read`` in order."""
    taken: list[bytes] = []

    def on_message(data: bytes) -> bool:
        if data == b"gap":
            return False
        taken.append(data)
        return True

    subscription = Subscription(aioredis.Redis(), on_message)  # bytes handed in as asyncio would
    subscription.received(message(b"early"))                    # nobody reading yet: kept
    assert taken == [] and await subscription.read(5.0) == [[b"smessage", b"c", b"early"]]
    reading = asyncio.ensure_future(subscription.read(5.0))
    await asyncio.sleep(0)                                      # the reader now waits
    subscription.received(message(b"a") + message(b"b")[:9])    # the second one cut in two
    subscription.received(message(b"b")[9:])
    assert taken == [b"a", b"b"] and not reading.done()
    subscription.received(message(b"gap") + message(b"c") + b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
    assert await reading == [[b"smessage", b"c", b"gap"], [b"smessage", b"c", b"c"], [b"pong", b""]]
    subscription.received(message(b"d"))                       # the reader is busy with those
    assert taken == [b"a", b"b"] and await subscription.read(5.0) == [[b"smessage", b"c", b"d"]]
