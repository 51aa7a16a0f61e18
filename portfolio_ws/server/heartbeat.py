"""The heartbeat: protocol pings to every open socket, and the close of those gone silent.

One shared ping frame, no task or timer per connection (unlike Tornado's own pinger). It pings a
slice of the sockets at a time, each socket once an interval: pinging every socket at once, then
reading every pong at once, stopped the batcher once an interval (docs/performance.md).
"""

from __future__ import annotations

from typing import Callable, Mapping

from tornado.ioloop import PeriodicCallback

from .socket import Socket

SLICES = 20


class Heartbeat:
    def __init__(self, sockets: Mapping[int, Socket], close_silent: Callable[[float], None],
                 interval_seconds: float, timeout_seconds: float) -> None:
        """``close_silent(limit)``: close the sockets not heard from for ``limit`` seconds."""
        self.sockets = sockets
        self.close_silent = close_silent
        self.interval = interval_seconds
        self.limit = interval_seconds + timeout_seconds
        self._slice = 0
        # The sockets open when this turn of pings began; one opened since is first pinged next
        # turn, within 2 intervals of opening, under the interval + timeout it may stay silent.
        self._turn: list[int] = []
        self._timer: PeriodicCallback | None = None

    def start(self) -> None:
        self._timer = PeriodicCallback(self.round, self.interval * 1000 / SLICES)
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def round(self) -> None:
        """Ping one slice; once a full turn, close the sockets silent past interval + timeout."""
        turn = self._slice
        self._slice = (turn + 1) % SLICES
        if turn == 0:  # one pass over the sockets a turn, not one a slice
            self._turn = list(self.sockets)
        for conn_id in self._turn[turn::SLICES]:
            socket = self.sockets.get(conn_id)  # gone since the turn began: nothing to ping
            if socket is not None:
                socket.send_ping()
        if turn == 0:
            self.close_silent(self.limit)
