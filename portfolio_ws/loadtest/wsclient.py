"""A minimal WebSocket client as an asyncio Protocol: cheap enough to hold thousands of
connections in one process. Handshake, unmasked server frames in, masked frames out, pings
answered. Not a general client: ``portfolio_ws.client`` is the one for applications."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import zlib
from typing import Callable, cast

MessageHandler = Callable[[bytes], None]


def _mask(payload: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return key + masked


def client_frame(opcode: int, payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + _mask(payload)


class LoadClient(asyncio.Protocol):
    def __init__(self, host: str, path: str, cookie: str, on_message: MessageHandler,
                 on_open: Callable[["LoadClient"], None], on_close: Callable[["LoadClient"], None],
                 compress: bool = False) -> None:
        self.compress = compress
        self._inflate: "zlib._Decompress | None" = None
        self.host = host
        self.path = path
        self.cookie = cookie
        self.on_message = on_message
        self.on_open = on_open
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.upgraded = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.bytes_received = 0
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's, in the load tester's workers, is not an asyncio.Transport subclass).
        self.transport = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write((f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                         f"Cookie: session={self.cookie}\r\n"
                         + ("Sec-WebSocket-Extensions: permessage-deflate\r\n" if self.compress else "")
                         + "\r\n").encode())

    def send_text(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(0x1, text.encode()))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(0x8, struct.pack("!H", 1000)))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.bytes_received += len(data)
        buf = self._buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.close_code = int(buf[9:12] or b"0")
                self.close_reason = "upgrade refused"
                assert self.transport is not None
                self.transport.close()
                return
            if b"permessage-deflate" in bytes(buf[:end]).lower():
                self._inflate = zlib.decompressobj(-15)
            del buf[:end + 4]
            self.upgraded = True
            self.on_open(self)
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                (length,) = struct.unpack_from("!Q", buf, pos + 2)
                head = 10
            if size - pos < head + length:
                break
            payload = bytes(buf[pos + head:pos + head + length])
            pos += head + length
            opcode = b0 & 0x0F
            if b0 & 0x40 and self._inflate is not None:  # RSV1: a compressed message
                payload = self._inflate.decompress(payload + b"\x00\x00\xff\xff")
            if opcode == 0x1:
                self.on_message(payload)
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(client_frame(0xA, payload))
            elif opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close_reason = payload[2:].decode(errors="replace")
                if self.transport is not None:
                    self.transport.close()
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_code is None:
            self.close_code = 1006
        self.on_close(self)
