"""Hostile input against the streaming engine (``StreamCore``) directly: hypothesis property tests
(derandomized, so every run is the same run).

1. Every hostile frame gets exactly its documented reply, and the connection stays open.
2. Floods: the token bucket holds, notices are at most one a second, abusers are closed 1008.
3. Random connect / subscribe / frames / events / disconnect / logout / shutdown sequences across
   users: no exception, every frame is UTF-8 JSON with the envelope, no frame addressed to a
   connection carries another user's id or data, limits hold, ``seq`` never goes down on a
   connection, nothing is sent after a close.

``CASES`` counts what ran (the figure in docs/reliability.md).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from portfolio_ws import constants as c
from portfolio_ws.core.output import Closing, Outgoing
from portfolio_ws.core.stream import StreamCore
from portfolio_ws.settings import Settings
from tests.builders import NOW, account, later, order, position, trade
from tests.hostile import hostile_frames
from tests.fuzzing import CASES, FUZZ, DATA_TYPES, decode, check_reply


def make_core(**limits: Any) -> StreamCore:
    s = Settings()
    return StreamCore(s.streaming, replace(s.limits, **limits), s.recovery, NOW)


def replies(core: StreamCore, conn: int) -> tuple[list[dict[str, Any]], list[Closing]]:
    messages, closes = [], []
    for out in core.data_to_send():
        if isinstance(out, Closing):
            closes.append(out)
        else:
            assert out.connections == (conn,), out
            messages.append(decode(out.frame))
    return messages, closes


# ---- 1. each hostile frame, its documented reply -------------------------------------------
@pytest.mark.slow
@settings(FUZZ, max_examples=2000)
@given(frames=st.lists(hostile_frames(), min_size=1, max_size=5))
def test_every_hostile_frame_gets_its_documented_reply_and_the_connection_stays_open(frames):
    core = make_core()
    conn = core.open("user-a", "session-a", NOW)
    core.data_to_send()
    for n, (frame, tag) in enumerate(frames):
        core.receive_frame(conn, frame, NOW + n * 0.001)
        messages, closes = replies(core, conn)
        assert not closes, closes
        check_reply(tag, messages)
        assert all(m["userId"] == "user-a" for m in messages)
        CASES["frames"] += 1
    assert conn in core.hub.connections
    CASES["frame examples"] += 1


# ---- 2. floods -----------------------------------------------------------------------------
@pytest.mark.slow
@settings(FUZZ, max_examples=400)
@given(bursts=st.lists(st.tuples(st.floats(0, 1.5), st.integers(0, 400)), min_size=1, max_size=20),
       rate=st.sampled_from([10.0, 100.0]), burst=st.sampled_from([5, 100]))
def test_floods_are_bounded_by_the_token_bucket_and_abusers_are_closed(bursts, rate, burst):
    core = make_core(messages_per_second=rate, rate_limit_burst=burst, rate_limit_close_after_seconds=5.0)
    conn = core.open("user-a", "session-a", NOW)
    core.data_to_send()
    now, processed, notices, closed_at = NOW, 0, [], None
    first_reject = None
    for gap, count in bursts:
        now += gap
        for i in range(count):
            t = now + i * 1e-4  # a burst arrives within a few milliseconds
            core.receive_frame(conn, '{"type":"ping"}', t)
            messages, closes = replies(core, conn)
            CASES["flood frames"] += 1
            if closed_at is not None:
                assert not messages and not closes, "something was sent after the close"
                continue
            if closes:
                assert [cl.close for cl in closes] == [c.RATE_LIMIT_EXCEEDED]
                assert [m["data"]["code"] for m in messages] == ["RATE_LIMIT_EXCEEDED"]  # its cause first
                assert first_reject is not None and t - first_reject >= 5.0 - 1e-6
                closed_at = t
                assert conn not in core.hub.connections
            elif messages and messages[0]["type"] == "pong":
                processed += 1
            elif messages:
                assert messages[0]["data"]["code"] == c.RATE_LIMITED
                notices.append(t)
            if not messages or messages[0]["type"] != "pong":
                first_reject = first_reject if first_reject is not None else t
            assert processed <= burst + rate * (t - NOW) + 1e-6, "the token bucket let too much through"
        now += count * 1e-4
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(notices, notices[1:])), "more than one notice a second"
    CASES["flood examples"] += 1


def test_a_steady_flood_is_closed_1008_after_5_seconds_over_the_limit():
    core = make_core()
    conn = core.open("user-a", "session-a", NOW)
    core.data_to_send()
    closes = []
    for n in range(200 * 7):  # 200 messages a second, twice the limit
        core.receive_frame(conn, '{"type":"ping"}', NOW + n / 200)
        closes += [o for o in core.data_to_send() if isinstance(o, Closing)]
        if closes:
            break
    assert [cl.close for cl in closes] == [c.RATE_LIMIT_EXCEEDED]
    assert 5.0 <= n / 200 <= 6.5


# ---- 3. random sequences across users ------------------------------------------------------
USERS = ["alice", "bob", "carol"]
SESSIONS = [f"{u}-s{k}" for u in USERS for k in (1, 2)]
PER_USER, TOTAL = 3, 6


def user_event(user: str, kind: int, n: int, t: float) -> Any:
    """Events whose every key names their user, so a leak shows in the data as well as in userId."""
    at = later(t)
    if kind == 0:
        return position(user, symbol=f"{user.upper()}{n % 3}", qty=str(n % 4 * 10), price=f"{100 + n}.25")
    if kind == 1:
        return order(user, order_id=f"{user}-order-{n % 4}", symbol=f"{user.upper()}0",
                     status=["new", "partially_filled", "filled", "canceled"][n % 4], at=at)
    if kind == 2:
        return account(user, equity=f"{100000 + n}.50", at=at)
    return trade(user, trade_id=f"{user}-trade-{n}", symbol=f"{user.upper()}1", at=at)


def owned_keys(data: Any, found: set[str]) -> set[str]:
    """Every symbol / orderId / tradeId in a message's data."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("symbol", "orderId", "tradeId") and isinstance(value, str):
                found.add(value)
            else:
                owned_keys(value, found)
    elif isinstance(data, list):
        for value in data:
            owned_keys(value, found)
    return found


class EngineSequences(RuleBasedStateMachine):
    """The model: which connections are open, for which user and session, and which are closed."""

    @initialize(recovery=st.sampled_from([5, 1000]), window=st.sampled_from([[], ["orders", "trades"]]))
    def start(self, recovery, window):
        s = Settings()
        self.core = StreamCore(replace(s.streaming, immediate_channels=tuple(window)),
                               replace(s.limits, connections_per_user=PER_USER, total_connections=TOTAL,
                                       messages_per_second=1e6, rate_limit_burst=10**6),
                               replace(s.recovery, max_events=recovery), NOW)
        self.now = NOW
        self.open_conns: dict[int, tuple[str, str]] = {}
        self.closed: set[int] = set()
        self.ended: set[str] = set()
        self.last_seq: dict[int, int] = {}
        self.events = 0
        self.stopped = False
        CASES["sequences"] += 1

    def drain(self) -> list[Any]:
        outputs = self.core.data_to_send()
        for out in outputs:
            if isinstance(out, Closing):
                assert out.connection not in self.closed, f"closed twice: {out}"
                self.open_conns.pop(out.connection, None)
                self.closed.add(out.connection)
                continue
            assert isinstance(out, Outgoing)
            users = set()
            for conn in out.connections:
                assert conn in self.open_conns and conn not in self.closed, f"sent to a closed socket: {conn}"
                users.add(self.open_conns[conn][0])
            assert len(users) == 1, f"one frame addressed to several users: {users}"
            [user] = users
            msg = decode(out.frame)
            assert msg["userId"] == user, "a frame carries another user's id"
            for key in owned_keys(msg["data"], set()):
                assert key.lower().startswith(user), f"{user} was sent {key}"
            if "seq" in msg:
                for conn in out.connections:
                    assert msg["seq"] >= self.last_seq.get(conn, 0), "seq went down on a connection"
                    self.last_seq[conn] = msg["seq"]
        CASES["steps"] += 1
        return outputs

    @rule(user=st.sampled_from(USERS + [None]), k=st.sampled_from([1, 2]))
    def connect(self, user, k):
        session = f"{user}-s{k}" if user else None
        if session in self.ended:
            user = session = None  # an ended session no longer authenticates
        before = {u: sum(1 for v in self.open_conns.values() if v[0] == u) for u in USERS}
        total = len(self.open_conns)
        conn = self.core.open(user, session, self.now)
        if user is not None:
            self.open_conns[conn] = (user, session)
        outputs = self.drain()
        if self.stopped:
            expected = c.SERVER_SHUTTING_DOWN
        elif user is None:
            expected = c.AUTH_REQUIRED
        elif before[user] >= PER_USER:
            expected = c.user_limit_close(PER_USER)
        elif total >= TOTAL:
            expected = c.SERVER_CAPACITY
        else:
            expected = None
        if expected is None:
            assert [decode(o.frame)["data"]["code"] for o in outputs] == [c.CONNECTED]
        elif user is None:  # no session: nothing but the close
            assert outputs == [Closing(conn, expected)], outputs
        else:  # the machine-readable cause, then the close
            assert outputs[1:] == [Closing(conn, expected)], outputs
            cause = decode(outputs[0].frame)  # type: ignore[union-attr]
            assert cause["type"] == c.ERROR and cause["data"]["code"] == expected.cause, outputs
        CASES["connects"] += 1

    @precondition(lambda self: self.open_conns)
    @rule(pick=st.integers(0, 100), frame=hostile_frames())
    def send_frame(self, pick, frame):
        conn = sorted(self.open_conns)[pick % len(self.open_conns)]
        text, tag = frame
        self.core.receive_frame(conn, text, self.now)
        outputs = self.drain()
        mine = [decode(o.frame) for o in outputs if isinstance(o, Outgoing) and o.connections == (conn,)]
        while mine and mine[0]["type"] in DATA_TYPES:  # a subscribe first sends the pending window (Rule 2)
            mine.pop(0)
        check_reply(tag, mine)
        assert not [o for o in outputs if isinstance(o, Closing)]

    @precondition(lambda self: self.open_conns)
    @rule(pick=st.integers(0, 100), channels=st.lists(st.sampled_from(list(c.CHANNELS)), min_size=1, max_size=4),
          resume=st.none() | st.integers(0, 40))
    def subscribe(self, pick, channels, resume):
        conn = sorted(self.open_conns)[pick % len(self.open_conns)]
        message: dict[str, Any] = {"type": "subscribe", "channels": channels}
        if resume is not None:
            message["resumeFrom"] = resume
        self.core.receive_frame(conn, json.dumps(message), self.now)
        self.drain()

    @rule(user=st.sampled_from(USERS), kind=st.integers(0, 3))
    def event(self, user, kind):
        self.events += 1
        self.core.receive_event(user_event(user, kind, self.events, self.now - NOW), self.now)
        self.drain()

    @rule(dt=st.sampled_from([0.001, 0.5, 1.0, 30.0, 400.0]))
    def tick(self, dt):
        self.now += dt
        self.core.flush(self.now)
        self.drain()

    @precondition(lambda self: self.open_conns)
    @rule(pick=st.integers(0, 100))
    def disconnect(self, pick):
        conn = sorted(self.open_conns)[pick % len(self.open_conns)]
        self.open_conns.pop(conn)
        self.closed.add(conn)
        self.core.closed(conn, self.now)
        self.drain()

    @rule(session=st.sampled_from(SESSIONS))
    def logout(self, session):
        expected = {conn for conn, (_, s) in self.open_conns.items() if s == session}
        self.ended.add(session)
        self.core.end_session(session, self.now)
        outputs = self.drain()
        assert {o.connection for o in outputs if isinstance(o, Closing)} == expected
        assert all(o.close == c.SESSION_EXPIRED for o in outputs if isinstance(o, Closing))

    @precondition(lambda self: not self.stopped)
    @rule(when=st.integers(0, 30))
    def shutdown(self, when):
        if when:  # rare: a shutdown ends the interesting part of a sequence
            return
        expected = set(self.open_conns)
        self.stopped = True
        self.core.shutdown(self.now)
        outputs = self.drain()
        assert {o.connection for o in outputs if isinstance(o, Closing)} == expected

    @invariant()
    def limits_hold(self):
        if not hasattr(self, "core"):
            return
        hub = self.core.hub
        assert len(hub.connections) <= TOTAL
        assert all(n <= PER_USER for n in hub.counts_by_user().values())
        assert set(hub.connections) == set(self.open_conns)
        for user, stream in self.core.users.items():
            if user not in hub.by_user:  # no connection: nothing pending
                assert not stream.window


EngineSequences.TestCase.settings = settings(FUZZ, max_examples=500, stateful_step_count=40)
test_random_sequences_across_users_keep_isolation_limits_and_order = pytest.mark.slow(EngineSequences.TestCase)


def test_zz_report_the_number_of_cases():
    """Runs last in this module: the counts the docs quote (``-s`` shows them)."""
    print(f"\nfuzz cases run: {dict(CASES)}")
    if CASES["frame examples"]:  # when the module ran whole
        assert CASES["frame examples"] >= 2000 and CASES["sequences"] >= 500
