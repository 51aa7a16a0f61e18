"""``portfolio-ws loadtest``: N WebSocket clients against the server with the simulator (or a
running server), measured end to end."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..loadtest.run import LoadTestOptions, run_loadtest, write_outputs


@click.command("loadtest")
@click.option("--clients", type=click.IntRange(1, 60000), default=100, show_default=True,
              help="WebSocket connections to open.")
@click.option("--users", type=int, default=None, help="Users they are spread over (default: clients / 5).")
@click.option("--duration", type=click.FloatRange(1), default=20.0, show_default=True,
              help="Seconds to measure, once every client is connected and after a 2 s warm-up.")
@click.option("--workers", type=int, default=2, show_default=True, help="Client processes.")
@click.option("--url", default=None, help="Target a running server instead of starting one.")
@click.option("--user-prefix", default="demo", show_default=True, help="With --url: users PREFIX1..PREFIXN.")
@click.option("--password", default=None, help="With --url: the users' password.")
@click.option("--symbols", type=int, default=30, show_default=True, help="Simulated universe size.")
@click.option("--tick-rate", type=float, default=1.0, show_default=True, help="Scales simulated price prints.")
@click.option("--orders-per-day", type=click.FloatRange(0), default=None,
              help="Orders each simulated user places a day (default: the simulator's, 10); more gives "
                   "more orders/trades latency samples.")
@click.option("--pregenerate", is_flag=True,
              help="The server generates the run's events before clients connect: its measured CPU "
                   "is then serving events, not simulating a market (as with a live feed).")
@click.option("--batch-window-ms", type=click.IntRange(1), default=1000, show_default=True,
              help="The server's batch window (streaming.batch_window_ms): positions and account updates "
                   "wait up to this long and go out coalesced; orders and trades go at once. The report "
                   "gives the two latencies apart.")
@click.option("--start", default=LoadTestOptions.start, show_default=True,
              help="Simulated start (ISO 8601, or latest-open): fixed by default so runs compare.")
@click.option("--idle", is_flag=True, help="No feed, no subscriptions: memory per idle connection.")
@click.option("--compression", is_flag=True, help="permessage-deflate on the server and every client.")
@click.option("--out", type=click.Path(file_okay=False), default="loadtest-results", show_default=True,
              help="Folder for report.json and report.png (the plot needs matplotlib: pip install "
                   "'portfolio-ws[loadtest]').")
def command(clients: int, users: int | None, duration: float, workers: int, url: str | None, user_prefix: str,
            password: str | None, symbols: int, tick_rate: float, orders_per_day: float | None, pregenerate: bool,
            batch_window_ms: int, start: str, idle: bool,
            compression: bool, out: str) -> None:
    """Measure throughput, latency, CPU and memory with N clients."""
    options = LoadTestOptions(clients=clients, users=users, duration=duration, workers=workers, url=url,
                              user_prefix=user_prefix, password=password, symbols=symbols,
                              tick_rate=tick_rate, orders_per_day=orders_per_day,
                              pregenerate=pregenerate, batch_window_ms=batch_window_ms, start=start, idle=idle,
                              compression=compression, out=Path(out))
    with click.progressbar(length=100, label="load test", show_percent=True) as bar:
        state = {"done": 0}

        def progress(phase: str, fraction: float) -> None:
            target = int(fraction * (50 if phase == "connecting" else 100))
            if phase != "connecting":
                target = 50 + int(fraction * 50)
            bar.label = phase
            if target > state["done"]:
                bar.update(target - state["done"])
                state["done"] = target

        try:
            report = run_loadtest(options, progress)
        except (RuntimeError, ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
    files = write_outputs(report, Path(out))
    summary = {k: v for k, v in report.items() if k not in ("series", "timeline", "options")}
    click.echo(json.dumps(summary, indent=2))
    click.echo("written: " + ", ".join(str(f) for f in files))
