"""README command 2 without Chromium: the browser tests are skipped with one line saying so and how
to install it; with PORTFOLIO_REQUIRE_BROWSER=1 (CI) the run fails instead."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests import ROOT

pytestmark = pytest.mark.slow  # real processes


def run_browser_tests(**env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PORTFOLIO_REQUIRE_BROWSER"}
    env.update(CHROMIUM="/nonexistent/chromium", **env_vars)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/process/browser"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_missing_chromium_is_one_summary_line() -> None:
    done = run_browser_tests()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("browser tests: ")]
    assert len(lines) == 1, done.stdout
    assert "skipped, no Chromium at /nonexistent/chromium" in lines[0]
    assert "apt-get install chromium" in lines[0] and "PORTFOLIO_REQUIRE_BROWSER=1" in lines[0]


def test_ci_fails_without_chromium() -> None:
    done = run_browser_tests(PORTFOLIO_REQUIRE_BROWSER="1")
    assert done.returncode != 0
    assert "browser tests required but no Chromium" in done.stdout + done.stderr
