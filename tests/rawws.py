"""A raw WebSocket peer over a plain socket, for what well-behaved clients never do: stop reading,
send frames of any kind and size, go silent. Frames out are masked (as RFC 6455 requires)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """``rsv1``: the permessage-deflate bit (the payload is compressed)."""
    key = os.urandom(4)
    length = len(payload)
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    return header + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


class RawPeer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.head = ""

    @classmethod
    async def connect(cls, port: int, cookie: str | None, receive_buffer: int | None = None,
                      headers: str = "") -> "RawPeer":
        """Upgrade on 127.0.0.1:port. ``receive_buffer`` shrinks the kernel's receive buffer (set
        before connecting, so the TCP window stays small) for a peer that stops reading;
        ``headers``: more request header lines, each ending in CRLF. The response head is ``head``."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 16)  # reads stop at 128 KiB unread
        key = base64.b64encode(os.urandom(16)).decode()
        cookie_line = f"Cookie: session={cookie}\r\n" if cookie else ""
        writer.write((f"GET /ws/portfolio HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"{cookie_line}{headers}\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        peer = cls(reader, writer)
        peer.head = head.decode("latin-1")
        return peer

    async def send(self, opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> None:
        self.writer.write(client_frame(opcode, payload, fin, rsv1))
        await self.writer.drain()

    async def flood(self, frame: bytes, per_write: int = 1000) -> int:
        """Write ``frame`` over and over, as fast as the server takes them, until cancelled or the
        connection ends; returns how many were written."""
        batch, written = frame * per_write, 0
        try:
            while not self.writer.is_closing():
                self.writer.write(batch)
                await self.writer.drain()
                written += per_write
        except (ConnectionError, asyncio.CancelledError):
            pass
        return written

    async def send_text(self, text: str) -> None:
        await self.send(TEXT, text.encode("utf-8", "surrogatepass"))

    async def read_frame(self, timeout: float = 10.0, answer_pings: bool = True) -> tuple[int, bytes]:
        """The next frame (opcode, payload); pings are answered and skipped (or, ``answer_pings``
        False, returned like any frame: a flooding peer's writer may be blocked)."""
        while True:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await asyncio.wait_for(self.reader.readexactly(length), timeout)
            opcode = b0 & 0x0F
            if opcode == PING and answer_pings:
                await self.send(PONG, payload)
                continue
            return opcode, payload

    async def read_until_close(self, timeout: float = 10.0) -> tuple[tuple[int, str], list[bytes]]:
        """Read every frame up to the close frame: ((code, reason), the text frames before it)."""
        texts = []
        while True:
            opcode, payload = await self.read_frame(timeout)
            if opcode == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return (code, payload[2:].decode()), texts
            texts.append(payload)

    def close(self) -> None:
        self.writer.close()
