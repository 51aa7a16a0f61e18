"""Full garbage collections on a schedule (server.gc_full_collect_seconds), not CPython's."""

from __future__ import annotations

import asyncio
import gc

import pytest

from portfolio_ws.config import load_settings
from portfolio_ws.errors import ConfigError
from portfolio_ws.server.gcpolicy import AUTOMATIC_OFF, FullCollections


class Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_full_collections_run_on_the_schedule_and_free_cyclic_garbage() -> None:
    before = gc.get_threshold()
    collections = FullCollections(0.05)
    collections.start()
    try:
        assert gc.get_threshold() == (before[0], before[1], AUTOMATIC_OFF)  # CPython's own: off
        Cycle()  # unreachable, but only the cycle collector can free it
        await asyncio.wait_for(collections.collected.wait(), 10)
        assert collections.count >= 1 and collections.last_pause_seconds is not None
        assert not any(isinstance(o, Cycle) for o in gc.get_objects())
    finally:
        collections.stop()
    assert gc.get_threshold() == before  # the process gets CPython's policy back


async def test_zero_keeps_cpythons_own_policy() -> None:
    before = gc.get_threshold()
    collections = FullCollections(0)
    collections.start()
    assert gc.get_threshold() == before
    collections.stop()
    assert gc.get_threshold() == before


def test_a_negative_interval_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="server.gc_full_collect_seconds"):
        load_settings(overrides={"server.gc_full_collect_seconds": -1})
    assert load_settings(overrides={"server.gc_full_collect_seconds": 0}).server.gc_full_collect_seconds == 0


def test_a_collection_comes_early_once_a_quarter_of_the_open_sockets_have_closed() -> None:
    # Closed sockets are what leaves cyclic garbage: it must not wait the whole interval.
    state = {"closed": 0, "open": 8000, "now": 0.0}
    collections = FullCollections(600, closed=lambda: state["closed"], open_sockets=lambda: state["open"],
                                  clock=lambda: state["now"])
    state["closed"] = 1999
    state["now"] = 30.0
    collections.check()
    assert collections.count == 0  # a quarter of 8,000 is 2,000
    state["closed"] = 2000
    collections.check()
    assert collections.count == 1
    state["closed"] = 2999  # 999 more: under the 1,000 minimum even with few sockets open
    state["open"] = 100
    collections.check()
    assert collections.count == 1
    state["now"] = 630.0  # the interval since the last one is up
    collections.check()
    assert collections.count == 2
