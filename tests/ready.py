"""Waiting for a server process we started to say it is ready, without sleeping.

A service prints its own line when it accepts connections (redis-server: ``Ready to accept
connections``; PostgreSQL: ``database system is ready to accept connections``). ``await_ready``
reads the process's output (an unbuffered pipe) until that line, copying every line to a log file,
then hands the rest of the output to a daemon thread that keeps copying, so the pipe never fills.
"""

from __future__ import annotations

import select
import subprocess
import threading
import time
from pathlib import Path
from typing import IO


def await_ready(process: subprocess.Popen[bytes], marker: bytes, log: Path, timeout: float, what: str) -> None:
    """Return once ``process`` prints a line containing ``marker``; RuntimeError if it exits first
    or ``timeout`` seconds pass (the log's tail in the message). Start the process with
    ``stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0``."""
    output = process.stdout
    assert output is not None, "start the process with stdout=subprocess.PIPE"
    deadline = time.monotonic() + timeout
    with open(log, "ab") as copy:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"{what} not ready within {timeout} s: {_tail(log)}")
            readable, _, _ = select.select([output], [], [], remaining)
            if not readable:
                continue
            line = output.readline()  # unbuffered: select() saw every byte not yet read
            if not line:
                process.wait()
                raise RuntimeError(f"{what} exited with {process.returncode}: {_tail(log)}")
            copy.write(line)
            copy.flush()
            if marker in line:
                break
    threading.Thread(target=_copy_rest, args=(output, log), daemon=True).start()


def _copy_rest(output: IO[bytes], log: Path) -> None:
    with open(log, "ab") as copy:
        for line in iter(output.readline, b""):
            copy.write(line)
            copy.flush()
    output.close()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]
