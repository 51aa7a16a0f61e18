"""``portfolio-ws simulate`` (and ``serve --feed alpaca``) as real processes: the bad settings a new
user tried stop them with one line naming the key and exit 2, with nothing served and no demo
password printed. (tests/unit/portfolio_ws/test_settings_rules.py walks every other setting in-process.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT

pytestmark = pytest.mark.slow  # real processes


def run(tmp_path: Path, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PORTFOLIO_WS_", "ALPACA_")) and k != "ENABLE_REALTIME_PORTFOLIO"}
    env.update(PYTHONPATH=str(ROOT), **env_vars)
    # Were a bad setting let through, the process would serve until the timeout fails the test.
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("args, env, key", [
    (["simulate", "--start", "yesterday"], {}, "simulator.start"),
    (["simulate"], {"PORTFOLIO_WS_SIMULATOR_MARGIN": "0.5"}, "simulator.margin"),
    (["simulate"], {"PORTFOLIO_WS_SIMULATOR_STEP_MS": "0"}, "simulator.step_ms"),
    (["simulate"], {"PORTFOLIO_WS_SIMULATOR_ACCOUNT_UPDATES_PER_MINUTE": "10"}, "simulator.account_updates_per_minute"),
    (["serve", "--feed", "simulator"], {"PORTFOLIO_WS_SIMULATOR_START": "yesterday"}, "simulator.start"),
])
def test_bad_simulator_setting_stops_with_one_line(tmp_path: Path, args: list[str], env: dict[str, str],
                                                   key: str) -> None:
    done = run(tmp_path, *args, "--port", "1", **env)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""                                  # no banner, no passwords
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith(f"Error: invalid setting {key}: ")


def test_alpaca_feed_with_every_account_unset_refuses(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "alpaca:\n  accounts:\n"
        "    - {user: alice, key_env: ALICE_KEY, secret_env: ALICE_SECRET}\n"
        "    - {user: bob, key_env: BOB_KEY, secret_env: BOB_SECRET}\n", encoding="utf-8")
    done = run(tmp_path, "serve", "--feed", "alpaca", "--port", "1")
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("Error: invalid setting alpaca.accounts: no account has its key variables set")


def test_a_redis_nobody_listens_on_stops_serve_with_the_reason_and_no_password(tmp_path: Path) -> None:
    """An operator's trial got 'TimeoutError()' for a refused port, and the message printed the
    whole URL, password included."""
    from tests.procs import free_port

    port = free_port()
    done = run(tmp_path, "serve", "--port", "1",
               PORTFOLIO_WS_CLUSTER_REDIS_URL=f"redis://:s3cret-pw@127.0.0.1:{port}/0")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith(f"Error: invalid setting cluster.redis_url: cannot reach Redis at "
                                  f"redis://127.0.0.1:{port}/0: "), done.stderr
    assert f"Error 111 connecting to 127.0.0.1:{port}" in done.stderr  # ECONNREFUSED, not a bare timeout
    assert "s3cret-pw" not in done.stderr + done.stdout
