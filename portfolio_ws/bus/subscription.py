"""The Redis bus's subscription connection, read in batches (issue 14: intake cost per node).

redis-py's ``PubSub.get_message`` pays, for every message, a health check, a retry wrapper, a
read timeout, its RESP parser's awaits, observability hooks and a dict; with events spread over
4 nodes that overhead, not the events, set a node's intake CPU. Here the connection's bytes come
straight from asyncio (``_Feed``, a protocol put in place of the stream's), the replies in them
are parsed in one pass, and the messages are handed to ``on_message`` at once, in the same
wake-up: a node woken by the bus pays no task switch, future or read timeout per wake-up (on this
machine each IOLoop wake-up costs ~0.2 ms of CPU, so a node's intake cost was mostly wake-ups).
That fast path runs only while the reader waits in ``read``; anything else (a confirmation, an
error, a message ``on_message`` declines because a gap before it must be repaired first, and
whatever arrives while the reader is busy) waits for ``read`` in order. The messages' data stay
``bytes`` (``ujson`` parses them as they are). Subscribes and unsubscribes are queued and sent as
one command per kind and loop iteration (``subscribe``, ``unsubscribe``), so a burst of new users
costs one round trip, not one each.

redis-py still makes the connection (URL, TLS, AUTH, ``CLIENT SETINFO``): the connection's
``_reader`` and ``_writer`` are its asyncio streams; the writer (and its transport) is used here
once it is connected and never by redis-py again, which only closes it (``open`` fails loudly if
redis-py stops having them; tests/unit/portfolio_ws/bus/test_subscription.py checks both against
a real redis-server).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError, InvalidResponse, ResponseError

READ_SIZE = 1 << 18     # bytes taken from the socket per wake-up, at most
SUBSCRIBE_CHUNK = 500   # channels per SSUBSCRIBE / SUNSUBSCRIBE command

Reply = Any  # bytes | int | None | ResponseError | list[Reply]


def parse_replies(buffer: bytes, pos: int = 0) -> tuple[list[Reply], int]:
    """Every complete RESP reply in ``buffer`` from ``pos``, and where the first incomplete one
    starts. Arrays and pushes become lists, bulk and simple strings bytes, errors
    ``ResponseError`` (returned, not raised: the caller decides)."""
    replies: list[Reply] = []
    end = len(buffer)
    while pos < end:
        parsed = _parse(buffer, pos)
        if parsed is None:
            break
        reply, pos = parsed
        replies.append(reply)
    return replies, pos


def _parse(buffer: bytes, pos: int) -> tuple[Reply, int] | None:
    line_end = buffer.find(b"\r\n", pos)
    if line_end < 0:
        return None
    kind = buffer[pos]
    if kind == 36:  # $ bulk string
        length = int(buffer[pos + 1:line_end])
        if length < 0:
            return None, line_end + 2
        start = line_end + 2
        stop = start + length
        if stop + 2 > len(buffer):
            return None
        return buffer[start:stop], stop + 2
    if kind == 42 or kind == 62:  # * array, > push (RESP3)
        count = int(buffer[pos + 1:line_end])
        pos = line_end + 2
        if count < 0:
            return None, pos
        items: list[Reply] = []
        for _ in range(count):
            parsed = _parse(buffer, pos)
            if parsed is None:
                return None
            item, pos = parsed
            items.append(item)
        return items, pos
    if kind == 58:  # : integer
        return int(buffer[pos + 1:line_end]), line_end + 2
    if kind == 43:  # + simple string
        return buffer[pos + 1:line_end], line_end + 2
    if kind == 45:  # - error
        return ResponseError(buffer[pos + 1:line_end].decode("utf-8", "replace")), line_end + 2
    raise InvalidResponse(f"unexpected reply from Redis on the subscription: {buffer[pos:line_end][:80]!r}")


class _Feed(asyncio.Protocol):
    """The subscription connection's protocol: its bytes to the ``Subscription``, the rest to the
    stream protocol it replaced (flow control, and the close redis-py waits for)."""

    def __init__(self, subscription: "Subscription", replaced: Any) -> None:
        self.subscription = subscription
        self.replaced = replaced

    def data_received(self, data: bytes) -> None:
        try:
            self.subscription.received(data)
        except Exception as exc:  # raised to the reader, as a failed read would be
            self.subscription.failed(exc)

    def eof_received(self) -> bool:
        self.subscription.failed(RedisConnectionError("Redis closed the subscription connection"))
        return False  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.subscription.failed(RedisConnectionError("the subscription connection was lost"))
        self.replaced.connection_lost(exc)

    def pause_writing(self) -> None:
        self.replaced.pause_writing()

    def resume_writing(self) -> None:
        self.replaced.resume_writing()


class Subscription:
    """One connection in subscribe mode. Not reusable: after a failure, make a new one.
    ``on_message(data)``: a message's data, handed over as it arrives while the reader waits in
    ``read``; it returns False to decline one (it then comes out of ``read``, with all after it)."""

    def __init__(self, client: aioredis.Redis, on_message: Callable[[bytes], bool] | None = None) -> None:
        self._connection = client.connection_pool.make_connection()
        self._on_message = on_message
        self._writer: asyncio.StreamWriter | None = None
        self._rest = b""                              # the start of a reply not yet whole
        self._replies: list[Reply] = []               # for ``read``, in the order they came
        self._waiter: asyncio.Future[None] | None = None  # set while the reader waits in ``read``
        self._heard = False                           # anything came since the wait began
        self._error: BaseException | None = None
        self._queued: list[tuple[str, bytes]] = []    # (command, channel), in the order asked
        self._flush_scheduled = False
        self._awaiting: dict[bytes, int] = {}         # channel -> subscribes sent, not yet confirmed

    async def open(self) -> None:
        await self._connection.connect()
        reader, writer = getattr(self._connection, "_reader", None), getattr(self._connection, "_writer", None)
        if not isinstance(reader, asyncio.StreamReader) or not isinstance(writer, asyncio.StreamWriter):
            raise RuntimeError("redis-py's connection no longer exposes its asyncio streams "
                               "(_reader/_writer): portfolio_ws/bus/subscription.py needs updating")
        self._writer = writer
        transport = writer.transport
        transport.set_protocol(_Feed(self, transport.get_protocol()))
        unread = getattr(reader, "_buffer", None)  # none: redis-py reads its handshake's replies whole
        if unread:
            self.received(bytes(unread))
            unread.clear()

    async def close(self) -> None:
        self._writer = None
        self.failed(RedisConnectionError("the subscription connection is closed"))
        await self._connection.disconnect()
    # ---- commands ---------------------------------------------------------------------------------
    def send(self, *args: str | bytes) -> None:
        """Write one command now (its reply comes through ``read``)."""
        writer = self._writer
        if writer is None or writer.is_closing():
            raise RedisConnectionError("the subscription connection is closed")
        writer.writelines(self._connection.pack_command(*args))

    def subscribe(self, channels: Iterable[bytes]) -> None:
        """SSUBSCRIBE, sent with every other one asked for in this loop iteration."""
        for channel in channels:
            self._awaiting[channel] = self._awaiting.get(channel, 0) + 1
            self._queue("SSUBSCRIBE", channel)

    def unsubscribe(self, channel: bytes) -> None:
        """SUNSUBSCRIBE, batched like ``subscribe``."""
        self._queue("SUNSUBSCRIBE", channel)

    def confirmed(self, channel: bytes) -> bool:
        """Count an ``ssubscribe`` reply: True when every SSUBSCRIBE sent for ``channel`` is."""
        left = self._awaiting.get(channel, 1) - 1
        if left > 0:
            self._awaiting[channel] = left
            return False
        self._awaiting.pop(channel, None)
        return True

    def _queue(self, command: str, channel: bytes) -> None:
        self._queued.append((command, channel))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Send the queued commands in their order, runs of one kind as one command each."""
        self._flush_scheduled = False
        queued, self._queued = self._queued, []
        try:
            start = 0
            while start < len(queued):
                command = queued[start][0]
                stop = start
                while stop < len(queued) and queued[stop][0] == command and stop - start < SUBSCRIBE_CHUNK:
                    stop += 1
                self.send(command, *(channel for _, channel in queued[start:stop]))
                start = stop
        except RedisConnectionError:
            pass  # the read loop notices the lost connection and subscribes every followed user again

    # ---- reading ----------------------------------------------------------------------------------
    def received(self, data: bytes) -> None:
        """Bytes from the connection: messages to ``on_message`` while the reader waits and nothing
        is ahead of them, the rest kept for ``read``."""
        self._heard = True
        if self._rest:
            data = self._rest + data
        replies, used = parse_replies(data)
        self._rest = data[used:]
        kept = self._replies
        take = self._on_message if self._waiter is not None else None
        for reply in replies:
            if take is not None and not kept and type(reply) is list and reply[0] == b"smessage" \
                    and take(reply[2]):
                continue
            kept.append(reply)
        if kept:
            self._wake()

    def failed(self, error: BaseException) -> None:
        """The connection failed or closed: ``read`` raises ``error`` (the first one)."""
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, timeout: float) -> list[Reply]:
        """The replies not handed to ``on_message``, waiting for the first; [] after ``timeout``
        seconds with nothing at all from the connection (the caller checks it). Raises
        ``ConnectionError`` when the connection is lost."""
        while not self._replies and self._error is None:
            self._heard = False
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except TimeoutError:
                if not self._heard:
                    break
            finally:
                self._waiter = None
        if self._error is not None:
            raise self._error
        replies, self._replies = self._replies, []
        return replies
