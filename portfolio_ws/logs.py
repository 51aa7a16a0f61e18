"""Logging setup: plain text or one JSON object per line. Callers never log message bodies,
passwords, keys or session ids; this module only formats."""

from __future__ import annotations

import logging
import sys
import time

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


def configure(settings: LoggingSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # Tornado logs every request at INFO; keep access logs at WARNING unless debugging.
    logging.getLogger("tornado.access").setLevel(logging.DEBUG if settings.level == "DEBUG" else logging.WARNING)
