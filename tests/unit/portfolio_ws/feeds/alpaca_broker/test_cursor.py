"""The trade-events cursor: resume point, repeats dropped by id, malformed events refused."""

from __future__ import annotations

import json

import pytest

from portfolio_ws.feeds.alpaca_broker.cursor import Cursor, MalformedEvent

ACCOUNT = "6f2c9b1e-3a4d-4e5f-8a7b-1c2d3e4f5a6b"


def event(event_id: object, **fields: object) -> str:
    return json.dumps({"event_id": event_id, "account_id": ACCOUNT, "event": "fill", "order": {"id": "o"}, **fields})


def test_the_cursor_is_the_newest_id_read_and_repeats_are_dropped() -> None:
    cursor = Cursor()
    assert cursor.last_id is None
    first = cursor.read(event(1, qty="2.5"))
    assert first is not None and first.account_id == ACCOUNT and first.data["qty"] == "2.5"
    assert cursor.read(event(2)) is not None and cursor.last_id == 2
    assert cursor.read(event(2)) is None and cursor.read(event(1)) is None
    assert cursor.duplicates == 2 and cursor.last_id == 2


def test_ulids_compare_as_text_and_the_cursor_never_moves_back() -> None:
    cursor = Cursor()
    cursor.read(event("01JD0000000000000000000002"))
    cursor.read(event("01JD0000000000000000000001"))  # older, not seen before: applied
    assert cursor.last_id == "01JD0000000000000000000002"


def test_remembers_a_bounded_number_of_ids() -> None:
    cursor = Cursor(remember=2)
    for i in (1, 2, 3):
        cursor.read(event(i))
    assert cursor.read(event(1)) is not None  # forgotten: the portfolio state drops a repeated fill itself


@pytest.mark.parametrize("text, why", [
    ("{not json", "not JSON"),
    ("[" * 100_000 + "]" * 100_000, "not JSON"),  # nested past what the parser can read
    ("[1, 2]", "expected an object"),
    (json.dumps({"account_id": ACCOUNT, "order": {}}), "event_id"),
    (json.dumps({"event_id": True, "account_id": ACCOUNT, "order": {}}), "event_id"),
    (event(7, account_id=None), "event 7: account_id missing"),
    (event(8, order="x"), "event 8: order missing"),
])
def test_a_malformed_event_names_what_is_wrong(text: str, why: str) -> None:
    cursor = Cursor()
    with pytest.raises(MalformedEvent, match=why):
        cursor.read(text)


def test_a_malformed_event_with_an_id_counts_as_read() -> None:
    cursor = Cursor()
    with pytest.raises(MalformedEvent):
        cursor.read(event(5, account_id=""))
    assert cursor.last_id == 5 and cursor.read(event(5)) is None


def test_resume_from_a_kept_cursor() -> None:
    cursor = Cursor()
    cursor.resume("01JD0000000000000000000009")
    assert cursor.last_id == "01JD0000000000000000000009"
    cursor.resume(3)  # a cursor already read is kept
    assert cursor.last_id == "01JD0000000000000000000009"
    for bad in (None, True, "", 1.5, [1]):
        with pytest.raises(MalformedEvent, match="cursor"):
            Cursor().resume(bad)


@pytest.mark.parametrize("kept, replayed, after", [(7, [6, 7], 8),
                                                   ("01JD0000000000000000000007",
                                                    ["01JD0000000000000000000006", "01JD0000000000000000000007"],
                                                    "01JD0000000000000000000008")])
def test_a_resumed_stream_drops_what_alpaca_replays_up_to_the_kept_cursor(kept, replayed, after) -> None:
    # since_id is inclusive: the next runner is sent the kept cursor's event again (a trade it must
    # not deliver twice); it did not see that event itself, so only the cursor can tell.
    cursor = Cursor()
    cursor.resume(kept)
    assert [cursor.read(event(i)) for i in replayed] == [None, None] and cursor.duplicates == 2
    assert cursor.read(event(after)) is not None and cursor.last_id == after
