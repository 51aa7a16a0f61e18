"""The simulated clock: start modes, speed, skipping closed hours, wall-clock mode."""

from __future__ import annotations

import pytest

from portfolio_ws.errors import ConfigError
from portfolio_ws.settings import SimulatorSettings
from simulator.clock import SimClock, parse_start

from .runs import ny


def test_latest_open_is_the_default_start() -> None:
    midnight_sunday = ny("2025-03-02 00:00")
    clock = SimClock.from_settings(SimulatorSettings(), midnight_sunday)
    assert clock.start == ny("2025-02-28 09:30")
    assert parse_start("latest-open", ny("2025-03-03 11:00")) == ny("2025-03-03 09:30")


def test_iso_start_naive_is_new_york_time() -> None:
    assert parse_start("2025-03-03T10:00", 0) == ny("2025-03-03 10:00")
    assert parse_start("2025-03-03T15:00:00Z", 0) == ny("2025-03-03 10:00")
    with pytest.raises(ConfigError) as info:
        parse_start("yesterday", 0)
    assert info.value.key == "simulator.start"


@pytest.mark.parametrize("start", ["1850-06-03T09:30", "2101-03-01T09:30", "1862-12-31T12:00-05:00"])
def test_a_start_outside_the_calendar_years_is_a_config_error(start: str) -> None:
    # The NYSE closures come from the holidays package, which knows 1863-2100 only.
    with pytest.raises(ConfigError) as info:
        parse_start(start, ny("2025-03-05 12:00"))
    assert info.value.key == "simulator.start" and "1863-2100" in str(info.value)


def test_speed_maps_real_seconds_to_simulated_seconds() -> None:
    real = 1_000_000.0
    clock = SimClock(ny("2025-03-03 10:00"), real, speed=60)
    assert clock.sim_time(real + 1) == ny("2025-03-03 10:01")
    assert clock.sim_time(real + 0.5) == ny("2025-03-03 10:01")  # real time never goes back
    assert clock.sim_time(real + 11) == ny("2025-03-03 10:11")


def test_closed_hours_pass_in_an_instant() -> None:
    real = 0.0
    clock = SimClock(ny("2025-03-03 15:59"), real, speed=60)
    # One simulated minute reaches the close, the next minute is the next session's first.
    assert clock.sim_time(2) == ny("2025-03-04 09:31")
    # Across a weekend and Good Friday.
    clock = SimClock(ny("2025-04-17 15:59"), real, speed=60)
    assert clock.sim_time(2) == ny("2025-04-21 09:31")
    # A start outside the session jumps to the next open.
    clock = SimClock(ny("2025-03-01 12:00"), real, speed=1)
    assert clock.sim_time(10) == ny("2025-03-03 09:30") + 10


def test_without_skipping_time_runs_straight_through() -> None:
    clock = SimClock(ny("2025-03-03 15:59"), 0.0, speed=60, skip_closed=False)
    assert clock.sim_time(2) == ny("2025-03-03 16:01")


def test_wall_clock_mode_follows_real_time() -> None:
    now = ny("2025-03-01 12:00")  # a Saturday: the simulation will be quiet
    clock = SimClock.from_settings(SimulatorSettings(start="wall-clock", speed=60), now)
    assert clock.wall_clock and clock.start == now
    assert clock.sim_time(now + 5) == now + 5
    assert clock.sim_time(now + 3) == now + 5


def test_speed_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        SimClock(0.0, 0.0, speed=0)
