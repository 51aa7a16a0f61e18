"""The simulation core over whole trading days: invariants after every event, rates, determinism,
the order lifecycle, and the calendar's edges as the market sees them."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from portfolio_ws import constants as c
from portfolio_ws.core.events import AccountUpdate, Event, OrderUpdate, PositionUpdate, TradeExecuted
from portfolio_ws.errors import ConfigError, UsageError
from portfolio_ws.settings import SimulatorSettings
from simulator import Simulation
from portfolio_ws import market_calendar as cal
from simulator.audit import Auditor

from .runs import TimedEvent, ny, run

# Wednesday before Thanksgiving 2024, through the holiday, to the early close on Friday.
MAIN = ("2024-11-27 09:30", 2)  # >100,000 events, simulated once: every test reading it is slow


def audited(initial: tuple[Event, ...], events: tuple[TimedEvent, ...]) -> Auditor:
    auditor = Auditor()
    auditor.snapshot(initial)
    last = float("-inf")
    for t, event in events:
        assert t >= last, "events come out in time order"
        last = t
        auditor.check(event)
    return auditor


@pytest.mark.slow
def test_whole_days_keep_every_accounting_invariant_after_every_event() -> None:
    initial, events = run(*MAIN)
    auditor = audited(initial, events)
    assert auditor.events == len(events) > 100_000
    kinds = Counter(type(e) for _, e in events)
    assert kinds[TradeExecuted] and kinds[OrderUpdate] and kinds[AccountUpdate] and kinds[PositionUpdate]
    # Long and short positions both exist from the start.
    assert {e.side for e in initial if isinstance(e, PositionUpdate)} == {"long", "short"}
    # Realized P&L is reported on closing fills and absent on opening ones.
    pnls = [e.pnl for _, e in events if isinstance(e, TradeExecuted)]
    assert any(p is None for p in pnls) and any(p is not None for p in pnls)


@pytest.mark.slow
def test_nothing_happens_on_the_holiday_and_nothing_trades_after_an_early_close() -> None:
    _, events = run(*MAIN)
    thanksgiving = (ny("2024-11-27 16:00"), ny("2024-11-29 09:30"))
    assert not [e for t, e in events if thanksgiving[0] < t < thanksgiving[1]]
    early_close = ny("2024-11-29 13:00")
    assert events[-1][0] == early_close  # the run ends with the rollover at the early close
    assert all(t <= early_close for t, _ in events)


@pytest.mark.slow
def test_day_orders_expire_exactly_at_the_close() -> None:
    initial, events = run(*MAIN)
    closes = {ny("2024-11-27 16:00"), ny("2024-11-29 13:00")}
    expired = [t for t, e in events if isinstance(e, OrderUpdate) and e.status == "expired"]
    assert expired and set(expired) <= closes


@pytest.mark.slow
def test_the_daily_rollover_fixes_last_close_equity() -> None:
    _, events = run(*MAIN)
    close = ny("2024-11-27 16:00")
    at_close = {e.user_id: e for t, e in events if isinstance(e, AccountUpdate) and t == close}
    assert len(at_close) == 5
    next_day = [e for t, e in events if isinstance(e, AccountUpdate) and t > close]
    for e in next_day:
        assert e.equity - e.day_pnl == at_close[e.user_id].equity
        if at_close[e.user_id].equity:
            assert e.day_pnl_percent == (e.day_pnl * 100 / at_close[e.user_id].equity).quantize(Decimal("0.01"))


def _full_minutes(events: tuple[TimedEvent, ...]) -> list[tuple[float, float]]:
    """The whole minutes of each session the run covers."""
    sessions = sorted({(s.open, s.close) for t, _ in events if (s := cal.session_at(t)) is not None})
    return [(m, m + 60) for open_, close in sessions for m in range(int(open_), int(close) - 59, 60)]


@pytest.mark.slow
def test_rates_match_the_api_document() -> None:
    initial, events = run(*MAIN)
    minutes = _full_minutes(events)
    minute_of = {m: i for i, (m, _) in enumerate(minutes)}
    # Positions held all along (never traded in the run): 1-100 updates in every session minute.
    traded = {(e.user_id, e.symbol) for _, e in events if isinstance(e, TradeExecuted)}
    held = {(e.user_id, e.symbol) for e in initial if isinstance(e, PositionUpdate)} - traded
    per_position: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    per_account: dict[str, Counter[int]] = defaultdict(Counter)
    for t, e in events:
        m = minute_of.get(int(t) - (int(t) - int(minutes[0][0])) % 60)
        if m is None:
            continue
        if isinstance(e, PositionUpdate):
            per_position[(e.user_id, e.symbol)][m] += 1
        elif isinstance(e, AccountUpdate):
            per_account[e.user_id][m] += 1
    assert len(held) >= 10
    for key in held:
        counts = [per_position[key][m] for m in range(len(minutes))]
        assert 1 <= min(counts) and max(counts) <= 100, key
    assert max(n for counter in per_position.values() for n in counter.values()) <= 100
    for user in range(5):
        counts = [per_account[f"user-{user}"][m] for m in range(len(minutes))]
        assert 1 <= min(counts) and max(counts) <= 10
    # 1-50 trades a day per user.
    trades = Counter((e.user_id, cal.local_date(e.executed_at.timestamp()))
                     for _, e in events if isinstance(e, TradeExecuted))
    assert len(trades) == 5 * 2
    assert 1 <= min(trades.values()) and max(trades.values()) <= 50


@pytest.mark.slow
def test_every_order_status_occurs_with_legal_transitions_only() -> None:
    initial, events = run("2025-03-03 09:30", 2, users=10, orders_per_day=40.0, tick_rate=0.1)
    auditor = audited(initial, events)  # raises on any illegal transition
    assert set(auditor.statuses) == set(c.ORDER_STATUSES)
    for (before, after), _ in auditor.transitions.items():
        assert before is None or after in ("new", "accepted", "partially_filled", "filled", "canceled",
                                           "rejected", "expired")


def _simulate(seed: int, minutes: float, **knobs: object) -> list[TimedEvent]:
    settings = replace(SimulatorSettings(seed=seed), **knobs)  # type: ignore[arg-type]
    sim = Simulation(["a", "b", "c"], settings, ny("2025-03-03 09:30"))
    out: list[TimedEvent] = [(sim.now, e) for e in sim.initial_events()]
    out += sim.advance_to(sim.now + minutes * 60)
    return out


def test_same_seed_same_sequence_different_seed_differs() -> None:
    knobs = {"orders_per_day": 200.0, "tick_rate": 0.3}
    first, second = _simulate(7, 45, **knobs), _simulate(7, 45, **knobs)
    assert first == second and len(first) > 1000
    assert any(isinstance(e, TradeExecuted) for _, e in first)
    assert _simulate(8, 45, **knobs) != first


@pytest.mark.slow
def test_advancing_in_small_steps_is_the_same_as_one_big_step() -> None:
    settings = SimulatorSettings(seed=3, orders_per_day=200.0)
    big = Simulation(["a", "b"], settings, ny("2025-03-03 15:30"))
    small = Simulation(["a", "b"], settings, ny("2025-03-03 15:30"))
    end = ny("2025-03-04 10:00")
    stepped: list[Event] = []
    t = small.now
    while t < end:
        t = min(end, t + 7.3)
        stepped += small.advance(datetime.fromtimestamp(t, timezone.utc))
    assert big.advance(datetime.fromtimestamp(end, timezone.utc)) == stepped


def test_a_limited_advance_resumes_where_it_stopped() -> None:
    settings = SimulatorSettings(seed=3, orders_per_day=200.0)
    whole = Simulation(["a", "b"], settings, ny("2025-03-03 15:50")).advance_to(ny("2025-03-04 09:40"))
    limited = Simulation(["a", "b"], settings, ny("2025-03-03 15:50"))
    pieces: list[TimedEvent] = []
    while limited.now < ny("2025-03-04 09:40"):
        chunk = limited.advance_to(ny("2025-03-04 09:40"), limit=100)
        assert len(chunk) < 100 + 50  # one action's worth past the limit at most
        pieces += chunk
    assert pieces == whole and len(whole) > 1000


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
def test_ids_are_deterministic_and_per_user() -> None:
    events = _simulate(1, 60, orders_per_day=200.0)
    orders = [e for _, e in events if isinstance(e, OrderUpdate)]
    trades = [e for _, e in events if isinstance(e, TradeExecuted)]
    assert orders and trades
    assert all(re.fullmatch(rf"sim-{e.user_id}-o\d+", e.order_id) for e in orders)
    assert all(re.fullmatch(rf"sim-{e.user_id}-t\d+", e.trade_id) for e in trades)


def test_a_weekend_start_is_quiet_until_the_open() -> None:
    sim = Simulation(["a", "b"], SimulatorSettings(), ny("2025-03-01 12:00"))  # Saturday
    assert not sim.market_open and len(sim.initial_events()) > 2
    assert sim.advance_to(ny("2025-03-03 09:29:59")) == []
    opening = sim.advance_to(ny("2025-03-03 09:30"))
    assert opening and all(t == ny("2025-03-03 09:30") for t, _ in opening) and sim.market_open


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
def test_dst_switch_day_opens_at_1330_utc() -> None:
    sim = Simulation(["a"], SimulatorSettings(orders_per_day=100.0, tick_rate=0.3), ny("2025-03-07 15:00"))
    auditor = Auditor()
    auditor.snapshot(sim.initial_events())
    events = sim.advance_to(ny("2025-03-10 16:00") + 1)
    for _, e in events:
        auditor.check(e)
    friday_close = ny("2025-03-07 16:00")
    first_monday = min(t for t, _ in events if t > friday_close)
    assert first_monday == datetime(2025, 3, 10, 13, 30, tzinfo=timezone.utc).timestamp()
    monday_trades = [e for _, e in events if isinstance(e, TradeExecuted) and e.executed_at.day == 10]
    assert monday_trades and all(
        datetime(2025, 3, 10, 13, 30, tzinfo=timezone.utc) <= e.executed_at < datetime(
            2025, 3, 10, 20, 0, tzinfo=timezone.utc) for e in monday_trades)


@pytest.mark.slow  # over 0.5 s: outside the quick selection (README)
def test_orders_placed_after_the_close_wait_for_the_next_session() -> None:
    sim = Simulation(["a"], SimulatorSettings(orders_per_day=0.0), ny("2025-03-03 15:00"))
    auditor = Auditor()
    auditor.snapshot(sim.initial_events())
    for _, e in sim.advance_to(ny("2025-03-03 16:30")):
        auditor.check(e)
    market = sim.submit_order("a", "AAPL", "buy", "market", 5)
    limit = sim.submit_order("a", "MSFT", "buy", "limit", 1, limit_price=Decimal("1.00"))
    overnight = sim.advance_to(ny("2025-03-04 09:29:59"))
    for _, e in overnight:
        auditor.check(e)
    statuses = [(e.order_id, e.status) for _, e in overnight if isinstance(e, OrderUpdate)]
    assert sorted(statuses) == sorted((o, s) for o in (market, limit) for s in ("pending_new", "new", "accepted"))
    assert not [e for _, e in overnight if isinstance(e, TradeExecuted)]
    day = sim.advance_to(ny("2025-03-04 16:00"))
    for _, e in day:
        auditor.check(e)
    fills = [(t, e) for t, e in day if isinstance(e, TradeExecuted) and e.order_id in (market, limit)]
    assert fills and {e.order_id for _, e in fills} == {market}
    assert ny("2025-03-04 09:30") <= fills[0][0] < ny("2025-03-04 09:32")
    ends = {e.order_id: (t, e.status) for t, e in day if isinstance(e, OrderUpdate)}
    assert ends[market][1] == "filled" and ends[limit] == (ny("2025-03-04 16:00"), "expired")


def test_flat_position_is_sent_with_quantity_zero() -> None:
    sim = Simulation(["a"], SimulatorSettings(orders_per_day=0.0), ny("2025-03-03 10:00"))
    auditor = Auditor()
    auditor.snapshot(sim.initial_events())
    position = next(e for e in sim.initial_events() if isinstance(e, PositionUpdate))
    side = "sell" if position.side == "long" else "buy"
    sim.submit_order("a", position.symbol, side, "market", position.quantity)
    events = sim.advance_to(sim.now + 5)
    for _, e in events:
        auditor.check(e)
    flat = [e for _, e in events if isinstance(e, PositionUpdate) and e.symbol == position.symbol and not e.quantity]
    assert len(flat) == 1 and flat[0].side == position.side and flat[0].market_value == 0
    later = sim.advance_to(sim.now + 600)
    assert not [e for _, e in later if isinstance(e, PositionUpdate) and e.symbol == position.symbol]


def test_insufficient_buying_power_is_rejected_and_owners_can_cancel() -> None:
    sim = Simulation(["a"], SimulatorSettings(orders_per_day=0.0), ny("2025-03-03 10:00"))
    huge = sim.submit_order("a", "AAPL", "buy", "market", 1_000_000)
    resting = sim.submit_order("a", "AAPL", "buy", "limit", 1, limit_price=Decimal("1.00"))
    sim.advance_to(sim.now + 1)
    assert sim.cancel_order("a", resting) and not sim.cancel_order("a", huge)
    events = [e for e in sim.advance_to(sim.now + 1) if isinstance(e[1], OrderUpdate)]
    assert [e.status for _, e in events] == ["canceled"]


def test_users_are_independent_of_each_other() -> None:
    settings = SimulatorSettings(seed=5)
    alone = Simulation(["a"], settings, ny("2025-03-03 10:00"))
    crowd = Simulation(["x", "y", "a"], settings, ny("2025-03-03 10:00"))
    assert alone.state_events("a") == crowd.state_events("a")
    added = Simulation(["x"], settings, ny("2025-03-03 10:00")).add_user("a")
    assert added == alone.state_events("a")
    with pytest.raises(UsageError):
        alone.add_user("a")
    with pytest.raises(UsageError):
        alone.submit_order("nobody", "AAPL", "buy", "market", 1)
    with pytest.raises(UsageError):
        alone.submit_order("a", "NOPE", "buy", "market", 1)
    assert len(Simulation(["a", "a", "b"], settings, ny("2025-03-03 10:00")).users) == 2


def test_a_print_reaches_exactly_the_holders_of_its_symbol() -> None:
    sim = Simulation([f"u{i}" for i in range(300)], SimulatorSettings(orders_per_day=0.0), ny("2025-03-03 12:00"))
    holders = Counter(e.symbol for e in sim.initial_events() if isinstance(e, PositionUpdate))
    by_time: dict[float, list[PositionUpdate]] = defaultdict(list)
    for t, e in sim.advance_to(sim.now + 10):
        if isinstance(e, PositionUpdate):
            by_time[t].append(e)
    assert by_time
    for batch in by_time.values():
        symbols = {e.symbol for e in batch}
        assert len(symbols) == 1 and len(batch) == holders[symbols.pop()]


@pytest.mark.parametrize("knob", [{"symbols": 0}, {"account_updates_per_minute": 20.0}, {"margin": 0.5},
                                  {"tick_rate": 0.0}, {"starting_equity": 0}])
def test_out_of_range_settings_are_config_errors(knob: dict) -> None:
    with pytest.raises(ConfigError) as info:
        Simulation(["a"], replace(SimulatorSettings(), **knob), ny("2025-03-03 10:00"))
    assert info.value.key == f"simulator.{next(iter(knob))}"


def test_scale_knob_symbols_generates_a_larger_universe() -> None:
    sim = Simulation(["a", "b"], SimulatorSettings(symbols=500), ny("2025-03-03 10:00"))
    assert len(sim.prices) == 500
    assert sim.advance_to(sim.now + 30)
