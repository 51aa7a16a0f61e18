"""`portfolio-ws watch` as a process, read line by line (its tests and the README test)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from portfolio_ws.commands import watch
from tests import ROOT
from tests.harness import PASSWORD

WAIT = 15.0


class Watch:
    """A running ``portfolio-ws watch`` with awaitable output."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []

    @classmethod
    async def start(cls, server: Any, *args: str, password: str | None = PASSWORD, stdin: str | None = None,
                    cwd: Path) -> "Watch":
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO")}
        env["PYTHONPATH"] = str(ROOT)
        if password is not None:
            env[watch.PASSWORD_ENV] = password
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "watch", "--url", server.url, *args, cwd=cwd, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdin is not None
        if stdin is not None:
            proc.stdin.write(stdin.encode())
            await proc.stdin.drain()
        proc.stdin.close()
        return cls(proc)

    async def _line(self, stream: Any, into: list[str], pattern: str) -> str:
        async def scan() -> str:
            while True:
                raw = await stream.readline()
                if not raw:
                    raise AssertionError(f"output ended before {pattern!r}: {into}")
                line = raw.decode().rstrip("\n")
                into.append(line)
                if re.search(pattern, line):
                    return line
        return await asyncio.wait_for(scan(), WAIT)

    async def stdout(self, pattern: str) -> str:
        """The next stdout line matching ``pattern`` (the lines skipped are kept in ``out``)."""
        return await self._line(self.proc.stdout, self.out, pattern)

    async def stderr(self, pattern: str) -> str:
        return await self._line(self.proc.stderr, self.err, pattern)

    async def finish(self) -> tuple[int, list[str], list[str]]:
        """Wait for the exit; returns (status, remaining stdout lines, remaining stderr lines)."""
        out, err = await asyncio.wait_for(self.proc.communicate(), WAIT)
        return self.proc.returncode or 0, out.decode().splitlines(), err.decode().splitlines()

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)
