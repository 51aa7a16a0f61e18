"""The README as a new user follows it: its example output is what ``watch`` really prints, its
websockets snippet runs and, once the session has expired, says to log in again in one line; the
walk-through leaves nothing in the repository that git would pick up."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from portfolio_ws.commands import watch
from tests import ROOT
from tests.builders import position
from tests.process.commands.watching import Watch
from tests.harness import start_server

README = (ROOT / "README.md").read_text(encoding="utf-8")


def watch_example() -> list[str]:
    """The output lines (``# ...``) under the README's ``portfolio-ws watch`` example."""
    block = re.search(r"```sh\nPORTFOLIO_PASSWORD='[^']*' portfolio-ws watch [^\n]*\n(.*?)```", README, re.S)
    assert block, "the README's watch example"
    return [line[2:] for line in block.group(1).splitlines() if line.startswith("# ")]


def websockets_snippet() -> str:
    match = re.search(r"\.venv/bin/python - <<PY\n(.*?)\nPY\n", README, re.S)
    assert match, "the README's websockets snippet"
    return match.group(1)


def test_the_watch_example_has_watch_s_header_and_a_13_digit_seq() -> None:
    header, *rows = watch_example()
    assert header == watch.HEADER
    assert rows and all(re.match(r"\d\d:\d\d:\d\d  \d{13}  ", row) for row in rows), rows
    assert "13 digits" in README and "start time in milliseconds" in README


@pytest.mark.slow  # a real watch process
async def test_the_watch_example_is_what_watch_prints(io_loop: Any, tmp_path: Path) -> None:
    # The production offset base (the start time in ms), as a user's server has.
    server = await start_server(tmp_path, {"streaming.batch_window_ms": 600_000}, seq_base=None)
    proc = None
    try:
        alice = server.add_user("alice")
        server.publish(position(alice.user_id, "AAPL", "100", "176.20", "170.25"))
        proc = await Watch.start(server, "--user", "alice", cwd=tmp_path)
        assert await proc.stdout("TIME") == watch_example()[0]
        printed = await proc.stdout("176.20")   # a row of the snapshot
        example = watch_example()[1]
        # Same columns and text; only the clock and the offset differ from run to run.
        mask = lambda row: re.sub(r"^\d\d:\d\d:\d\d  \d{13}", "HH:MM:SS  " + "S" * 13, row)  # noqa: E731
        assert mask(printed) == mask(example), (printed, example)
    finally:
        if proc is not None and proc.proc.returncode is None:
            proc.proc.kill()
            await proc.proc.wait()
        await server.stop()


async def run_snippet(server: Any, session: str) -> asyncio.subprocess.Process:
    code = websockets_snippet().replace("$SESSION", session).replace("127.0.0.1:5000", f"127.0.0.1:{server.port}")
    return await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=dict(os.environ))


@pytest.mark.slow  # the snippet, run twice as a process
async def test_the_websockets_snippet_streams_then_says_to_log_in_again(make_server: Any) -> None:
    now = [1_800_000_000.0]
    server = await make_server(clock=lambda: now[0], auth__session_recheck_seconds=0.2)
    alice = server.add_user("alice")
    server.publish(position(alice.user_id))
    session = await server.login("alice")

    snippet = await run_snippet(server, session)
    assert snippet.stdout is not None and snippet.stderr is not None
    first = await asyncio.wait_for(snippet.stdout.readline(), 15)
    assert b'"code":"CONNECTED"' in first.replace(b" ", b""), first
    await asyncio.wait_for(snippet.stdout.readline(), 15)     # SUBSCRIBED, then the snapshot
    # The session expires while it streams: one line saying what to do, no traceback.
    now[0] += server.settings.auth.session_idle_seconds + 1
    out, err = await asyncio.wait_for(snippet.communicate(), 15)
    assert snippet.returncode == 1
    assert err.decode().splitlines() == [
        "Session expired: log in again (the curl login above), then run this again"], err.decode()

    # Run again with the old cookie: refused at once, the same one line.
    again = await run_snippet(server, session)
    out, err = await asyncio.wait_for(again.communicate(), 15)
    assert again.returncode == 1 and len(err.decode().splitlines()) == 1, err.decode()
    assert "log in again" in err.decode() and "Traceback" not in err.decode()


def test_the_walk_through_leaves_nothing_for_git() -> None:
    commands = "\n".join(re.findall(r"```sh\n(.*?)```", README, re.S))
    assert "cookies.txt" not in commands and 'COOKIES=$(mktemp)' in commands
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "cookies.txt" in ignored and "/loadtest-results/" in ignored
