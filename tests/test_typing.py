"""The type checker is part of the test suite: the repo's mypy configuration (setup.cfg) must pass."""

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_passes(monkeypatch):
    monkeypatch.chdir(ROOT)
    out, err, status = api.run(["--config-file", "setup.cfg"])
    assert status == 0, out + err
