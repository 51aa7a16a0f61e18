"""``portfolio-ws publish``: events as NDJSON on stdin (one item a line, as POST /api/v1/publish
takes them) to a server, in batches, with the retries of ``portfolio_ws.publish``.

The API key comes from ``$PORTFOLIO_WS_API_KEY`` (never an option: it would show in ``ps``). One
line per refused item on stderr, naming its line number; a line that is not JSON is one of them.
Exit 0 when every line was taken (accepted or already taken), 1 when some were refused, 2 on bad
usage or a refused batch.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..core import jsontext
from ..publish import BATCH_SIZE, PublishError, Publisher

KEY_VARIABLE = "PORTFOLIO_WS_API_KEY"


class BatchRefused(click.ClickException):
    """A whole batch refused (bad key, 413...) or the server unreachable: one line, exit 2."""

    exit_code = 2


@click.command(name="publish")
@click.option("--url", default="http://127.0.0.1:5000", show_default=True, help="The server's base URL.")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(1, BATCH_SIZE),
              help="Events per request.")
def command(url: str, batch_size: int) -> None:
    """Publish the NDJSON events on stdin (needs $PORTFOLIO_WS_API_KEY, a key with the publish scope)."""
    key = os.environ.get(KEY_VARIABLE, "")
    if not key:
        raise click.UsageError(f"set {KEY_VARIABLE} to an API key (portfolio-ws keys add NAME --scope publish)")
    publisher = Publisher(url, key, batch_size=batch_size)
    accepted = duplicates = refused = 0
    batch: list[tuple[int, Any]] = []

    def send() -> None:
        nonlocal accepted, duplicates, refused
        try:
            result = publisher.publish([event for _, event in batch])
        except PublishError as exc:
            raise BatchRefused(str(exc)) from None
        accepted += len(result.accepted)
        duplicates += len(result.duplicates)
        for r in result.rejected:
            refused += 1
            where = f".{r['field']}" if r.get("field") else ""
            click.echo(f"line {batch[r['index']][0]}{where}: {r['message']}", err=True)
        batch.clear()

    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:  # the server's own reading: a line it would refuse is named here, not its whole batch
            batch.append((number, jsontext.loads(line)))
        except jsontext.NotJson as exc:
            refused += 1
            click.echo(f"line {number}: not JSON: {exc}", err=True)
            continue
        if len(batch) == batch_size:
            send()
    if batch:
        send()
    click.echo(f"{accepted} accepted, {duplicates} already taken, {refused} refused", err=True)
    sys.exit(1 if refused else 0)

