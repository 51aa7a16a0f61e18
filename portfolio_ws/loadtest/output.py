"""A load test's files: ``report.json`` and, when matplotlib is installed, ``report.png`` (connections,
throughput, batched latency and orders-and-trades latency over the measured period)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_outputs(report: dict[str, Any], out: Path) -> list[Path]:
    """``report.json`` and, when matplotlib is installed, ``report.png``."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json"]
    written[0].write_text(json.dumps(report, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written
    series = report["series"]
    t = [s["t"] for s in series]
    window = report["options"]["batch_window_ms"]

    def ms(key: str) -> list[float | None]:
        return [None if s[key] is None else s[key] * 1000 for s in series]

    fig, (held, rate, slow, fast) = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    held.plot(t, [s["connected"] for s in series], color="#6a4c93")
    held.set_ylabel("connections")
    held.set_ylim(bottom=0)
    held.set_title(f"portfolio-ws load test: {report['options']['clients']} clients, "
                   f"{report['measuredSeconds']} s measured")
    rate.plot(t, [s["messagesPerSecond"] for s in series], color="#2a6f97")
    rate.set_ylabel("messages / s")
    rate.set_ylim(bottom=0)
    slow.plot(t, ms("batchedP50"), label="p50")
    slow.plot(t, ms("batchedP99"), label="p99")
    slow.axhline(window, color="#999999", linestyle="--", linewidth=1, label=f"batch window ({window} ms)")
    slow.set_ylabel("batched latency (ms)")
    slow.set_ylim(bottom=0)
    slow.legend(loc="lower right", fontsize=8)
    fast.plot(t, ms("immediateP50"), label="p50", marker="o", markersize=3)
    fast.plot(t, ms("immediateP99"), label="p99", marker="o", markersize=3)
    fast.set_ylabel("orders & trades\nlatency (ms)")
    fast.set_ylim(bottom=0)
    fast.legend(loc="upper right", fontsize=8)
    fast.set_xlabel("seconds into the measured period (after all connected and a 2 s warm-up)")
    fig.tight_layout()
    png = out / "report.png"
    fig.savefig(png, dpi=90)
    plt.close(fig)
    written.append(png)
    return written
