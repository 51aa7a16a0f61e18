"""The JS client's unit tests (clients/js/test, Node's own runner: close policy, backoff with jitter,
resume point, batch and snapshot application, polling fallback, the React hook under jsdom) and its
type check run inside the README's test command."""

from __future__ import annotations

import pytest

from tests.process.clients_js.npm import installed, run

pytestmark = pytest.mark.slow  # npm ci, node, tsc


def test_node_test_passes() -> None:
    installed()
    done = run("npm", "test")
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout, done.stdout[-2000:]
    for name in ("a server's 1000 ends the stream", "never moves the resume point back",
                 "a batch is unpacked", "a snapshot replaces", "streaming disabled: polls",
                 "unmounting closes the socket"):
        assert name in done.stdout, f"{name!r} did not run"


def test_the_declarations_and_the_jsdoc_typed_sources_type_check() -> None:
    installed()
    run("npm", "run", "typecheck")
