"""Running node and npm from the tests (CI installs them: .ci/run). The npm registry is reachable;
``npm ci`` installs exactly clients/js/package-lock.json."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests import ROOT

PACKAGE = ROOT / "clients" / "js"
TIMEOUT = 600


def tool(name: str) -> str:
    exe = shutil.which(name)
    assert exe, f"{name} is required (apt-get install nodejs npm; .ci/run installs them)"
    return exe


def run(*args: str, cwd: Path = PACKAGE, env: dict[str, str] | None = None,
        timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run a command; a failure shows its output."""
    done = subprocess.run([tool(args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "npm_config_audit": "false", "npm_config_fund": "false",
                               "npm_config_update_notifier": "false", **(env or {})})
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def installed() -> None:
    """clients/js's dev dependencies, as locked (once a test session)."""
    marker = PACKAGE / "node_modules" / ".package-lock.json"
    lock = PACKAGE / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime and getattr(installed, "done", False):
        return
    run("npm", "ci")
    installed.done = True  # type: ignore[attr-defined]
