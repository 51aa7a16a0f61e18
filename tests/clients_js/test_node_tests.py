"""The JS client's unit tests (clients/js/test, Node's own runner) run inside the README's test
command: ``node --test`` must pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "js"


def test_node_test_passes() -> None:
    node = shutil.which("node")
    assert node, "node is required (apt-get install nodejs; .ci/run installs it)"
    done = subprocess.run([node, "--test", "test/"], cwd=PACKAGE, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout
