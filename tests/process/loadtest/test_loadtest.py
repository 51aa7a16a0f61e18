"""The load tester end to end, small: a real server process with the simulator, clients in
worker processes, a report with the figures the docs quote."""

import json

import pytest

from portfolio_ws.loadtest.run import LoadTestOptions, run_loadtest, write_outputs

pytestmark = pytest.mark.slow  # a real load test: a server process, worker processes, 4 s of load


def test_a_small_load_test_reports_connections_throughput_latency_and_memory(tmp_path):
    options = LoadTestOptions(clients=20, duration=4, workers=2, speed=60, out=tmp_path)
    report = run_loadtest(options)
    assert report["connectionsHeld"] == 20
    # The period measured is the one asked for, and every second of it holds every connection.
    assert abs(report["measuredSeconds"] - 4) <= 0.2, report["measuredSeconds"]
    series = report["series"]
    assert [point["t"] for point in series] == [0, 1, 2, 3]
    assert all(point["connected"] == 20 and point["messagesPerSecond"] > 0 for point in series), series
    assert {"batchedP50", "batchedP99", "immediateP50", "immediateP99"} <= set(series[0])
    assert report["connectErrors"] == 0 and report["closes"] == {}
    assert report["messagesPerSecond"] > 0
    batched = report["latencyMs"]["batched"]
    assert batched["messages"] > 0 and 0 < batched["p50"] <= batched["p99"] <= batched["max"]
    server = report["server"]
    assert server["peakRssMB"] > 0 and server["cpuPercent"] is not None
    assert report["serverStats"]["totalMessagesDelivered"] > 0
    files = write_outputs(report, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["connectionsHeld"] == 20
    assert (tmp_path / "report.png") in files and (tmp_path / "report.png").stat().st_size > 1000


def test_help_explains_every_option():
    from click.testing import CliRunner

    import cli

    result = CliRunner().invoke(cli.main, ["loadtest", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--batch-window-ms" in text and "batch window" in text and "two latencies apart" in text
    from portfolio_ws.commands.loadtest import command

    assert all(option.help for option in command.params if not option.hidden and option.name != "help")
