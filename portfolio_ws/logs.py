"""Logging setup: plain text or one JSON object per line, and repeated warnings and errors held to
a trickle (a flood of bad requests must not become a flood of log). Callers never log message
bodies, passwords, keys or session ids; this module only formats and thins."""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable

import ujson

from .settings import LoggingSettings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return ujson.dumps(entry, ensure_ascii=False)


class RepeatFilter(logging.Filter):
    """Warnings and errors of one kind (logger, level and message template, whatever the values
    filled in) pass ``burst`` at once, then one per ``every`` seconds; the next one that passes says
    how many were dropped. INFO and below always pass (connects and closes are counted elsewhere)."""

    MAX_KINDS = 1000

    def __init__(self, burst: int = 5, every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.every, self.clock = burst, every, clock
        self._kinds: dict[tuple[str, int, str], list[float]] = {}  # kind -> [tokens, last refill, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        state = self._kinds.get(kind)
        if state is None:
            if len(self._kinds) >= self.MAX_KINDS:
                self._kinds.clear()
            state = self._kinds[kind] = [float(self.burst), now, 0.0]
        state[0] = min(float(self.burst), state[0] + (now - state[1]) / self.every)
        state[1] = now
        if state[0] < 1.0:
            state[2] += 1
            return False
        state[0] -= 1.0
        if state[2] and isinstance(record.args, tuple):
            msg = str(record.msg) if record.args else str(record.msg).replace("%", "%%")
            record.msg, record.args = msg + " (%d similar dropped)", record.args + (int(state[2]),)
            state[2] = 0
        return True


def configure(settings: LoggingSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RepeatFilter())
    if settings.json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # Tornado logs every request at INFO; keep access logs at WARNING unless debugging.
    logging.getLogger("tornado.access").setLevel(logging.DEBUG if settings.level == "DEBUG" else logging.WARNING)
    # websockets dumps every frame at DEBUG, the Alpaca streams' authenticate messages (key and secret,
    # or OAuth token) among them: never below INFO, whatever the level.
    logging.getLogger("websockets").setLevel(max(logging.INFO, logging.getLevelName(settings.level)))
