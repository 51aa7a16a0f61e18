"""The session recheck: every ``auth.session_recheck_seconds``, the sockets of sessions that ended
since they connected (expired, revoked on another node or by the platform) are closed."""

from __future__ import annotations

import logging
from typing import Callable, Iterable

from tornado.ioloop import PeriodicCallback

from ..auth.sessions import SessionStore

log = logging.getLogger("portfolio_ws.service")


class SessionRecheck:
    def __init__(self, sessions: SessionStore, open_sessions: Callable[[], Iterable[str]],
                 end_session: Callable[[str], None], clock: Callable[[], float],
                 interval_seconds: float) -> None:
        self.sessions = sessions
        self.open_sessions = open_sessions
        self.end_session = end_session
        self.clock = clock
        self.interval = interval_seconds
        self._timer: PeriodicCallback | None = None

    def start(self) -> None:
        self._timer = PeriodicCallback(self.run, self.interval * 1000)
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    async def run(self) -> None:
        """Close the sockets of sessions that ended (not those whose store can't tell right now:
        an unreachable platform must not drop everyone)."""
        now = self.clock()
        for session_id in set(self.open_sessions()):
            try:
                valid = await self.sessions.still_valid(session_id, now)
            except Exception:  # a store that fails can't tell: keep the socket, ask again next time
                log.warning("session recheck failed; keeping the session's sockets", exc_info=True)
                return
            if valid is False:
                self.end_session(session_id)
