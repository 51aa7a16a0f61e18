"""The Python client is typed for its users: ``py.typed`` ships in the wheel, ``portfolio_ws.client``
is clean under ``mypy --strict``, and a typed program on it (clients/python/watch_positions.py)
passes ``mypy --strict`` against the installed wheel, then runs against a real server."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from portfolio_ws.client import PortfolioClient, Snapshot
from tests import ROOT
from tests.builders import position
from tests.behaviour.client.conftest import FAST

EXAMPLE = ROOT / "clients" / "python" / "watch_positions.py"


def mypy_strict(*args: str, cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else dict(os.environ)
    env.pop("MYPYPATH", None)
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_client_package_is_clean_under_mypy_strict() -> None:
    done = mypy_strict("-p", "portfolio_ws.client", cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_wheel_ships_py_typed_and_the_typed_example_passes_mypy_strict_against_it(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
                            str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((tmp_path / "dist").glob("portfolio_ws-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert "portfolio_ws/py.typed" in names
        # The dashboard's stream client in the wheel is the npm package's file (the link, resolved).
        for name in ("portfolio-stream.js", "close-policy.js"):
            shipped = archive.read(f"portfolio_ws/static/{name}")
            assert shipped == (ROOT / "clients" / "js" / "src" / name).read_bytes(), name
        archive.extractall(site)
    work = tmp_path / "user"
    work.mkdir()
    (work / EXAMPLE.name).write_text(EXAMPLE.read_text())
    done = mypy_strict(EXAMPLE.name, cwd=work, pythonpath=site)  # portfolio_ws found as an installed package
    assert done.returncode == 0, done.stdout + done.stderr
    (site / "portfolio_ws" / "py.typed").unlink()  # without the marker mypy refuses it: the check is real
    assert mypy_strict(EXAMPLE.name, cwd=work, pythonpath=site).returncode != 0


async def test_the_typed_example_runs_against_a_real_server(make_server: Any) -> None:
    spec = importlib.util.spec_from_file_location("watch_positions", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    server = await make_server()
    user, session = await server.user_session("alice")
    server.publish(position(user.user_id, "AAPL", "100"))
    client = PortfolioClient(server.url, session_id=session, timings=FAST)
    snapshot = asyncio.Event()
    client.on(Snapshot, lambda _: snapshot.set())
    task = asyncio.ensure_future(example.watch(client, updates=1))
    await asyncio.sleep(0)  # one turn: the example's iterator is registered before anything arrives
    await client.start()
    try:
        await asyncio.wait_for(snapshot.wait(), 10)
        server.publish(position(user.user_id, "MSFT", "5", price="410.10"))
        lines = await asyncio.wait_for(task, 10)
    finally:
        await client.close()
    assert lines[0].startswith("snapshot seq ") and lines[0].endswith(": 1 positions")
    assert lines[1].startswith("MSFT long 5 @ 410.10 value 2050.50 seq ")
    assert lines[2].startswith("holding AAPL, MSFT; resume point ")
