"""Keeps the markers honest: a test that starts a service must carry its marker (tests/README.md).

tests/conftest.py records the running test's markers here; the service starters (RedisServer,
PostgresServer) call ``require`` before they start one.
"""

from __future__ import annotations

# The markers of the test being run; None outside pytest (a benchmark using RedisServer).
running: set[str] | None = None


def require(marker: str, what: str) -> None:
    """Raise unless the running test is marked ``marker`` (or no test is running)."""
    if running is not None and marker not in running:
        raise RuntimeError(f"this test starts {what} but is not marked {marker}: add "
                           f"@pytest.mark.{marker} (or use the {marker}_server fixture)")
