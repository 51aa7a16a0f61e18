"""Client messages: text in, a command or a client error out. Pure functions, no state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from .. import constants as c
from . import jsontext


def _decode(frame: str) -> Any:
    # Strict RFC 8259 (jsontext): no NaN/Infinity, no leading zeros, no raw control characters in
    # strings (ujson takes all three). Client messages are small and rate-limited, so the stdlib
    # parser costs nothing. A name twice is taken as before (the last wins): protocol.md section 3.
    return jsontext.loads(frame, unique_names=False)


@dataclass(frozen=True, slots=True)
class Subscribe:
    channels: frozenset[str]
    resume_from: int | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    channels: frozenset[str]


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class ClientError:
    """The client sent something we can't act on; the connection stays open."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


Command = Union[Subscribe, Unsubscribe, Ping]


def _echo(text: str) -> str:
    """A client's string quoted back in an error: at most 64 characters, and always encodable (a
    JSON escape like "\\ud800" decodes to a lone surrogate, which UTF-8 can't carry)."""
    return text[:64].encode("utf-8", "replace").decode("utf-8")


def parse(frame: str | bytes) -> Command | ClientError:
    if isinstance(frame, bytes):
        return ClientError(c.INVALID_MESSAGE, "Binary frames are not supported; send JSON text")
    try:
        msg = _decode(frame)
    except (ValueError, OverflowError, RecursionError):
        return ClientError(c.INVALID_JSON, "Message is not valid JSON")
    if not isinstance(msg, dict):
        return ClientError(c.INVALID_MESSAGE, "Message must be a JSON object with a \"type\"")
    kind = msg.get("type")
    if not isinstance(kind, str):
        return ClientError(c.INVALID_MESSAGE, "Message must have a string \"type\"")
    if kind == c.PING:
        return Ping()
    if kind not in c.CLIENT_MESSAGE_TYPES:
        return ClientError(c.UNKNOWN_MESSAGE_TYPE, "Unknown message type",
                           {"type": _echo(kind), "validTypes": list(c.CLIENT_MESSAGE_TYPES)})
    channels = msg.get("channels")
    if not isinstance(channels, list) or not channels or not all(isinstance(ch, str) for ch in channels):
        return ClientError(c.INVALID_MESSAGE, "\"channels\" must be a non-empty array of channel names")
    for channel in channels:
        if channel not in c.CHANNELS:
            return ClientError(c.SUBSCRIPTION_FAILED, "Invalid channel name",
                               {"channel": _echo(channel), "validChannels": list(c.CHANNELS)})
    if kind == c.UNSUBSCRIBE:
        return Unsubscribe(frozenset(channels))
    resume = msg.get("resumeFrom")
    if resume is not None and (isinstance(resume, bool) or not isinstance(resume, int) or resume < 0):
        return ClientError(c.INVALID_MESSAGE, "\"resumeFrom\" must be a non-negative integer (the last seq processed)")
    return Subscribe(frozenset(channels), resume)


def ordered(channels: frozenset[str]) -> list[str]:
    """Channels in their canonical order, as the wire lists them."""
    return [ch for ch in c.CHANNELS if ch in channels]
