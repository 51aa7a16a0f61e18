"""core.jsontext: strict JSON for what other programs send (RFC 8259 exactly, UTF-8, no name twice)."""

from __future__ import annotations

import pytest

from portfolio_ws.core.jsontext import NotJson, loads

REFUSED = [b"[01]", b"[-01]", b"[NaN]", b"[Infinity]", b"[-Infinity]", b"[1e999]", b"[-1e999]", b"[.5]", b"[1.]",
           b"[+1]", b'["\x01"]', b'["a\tb"]', b"\xff\xfe[\x001\x00]\x00", b'["\xc3"]', b"[1,]", b"{'a': 1}",
           b'{"a": 1, "a": 2}', b'{"a": 1, "b": {"c": 1, "c": 1}}', b'[{"x": 1}, {"y": 2, "y": 2}]',
           b"[" * 50_000, b"[" + b"1" * 5000 + b"]", b"", b"\xef\xbb\xbf[1]"]


@pytest.mark.parametrize("data", REFUSED)
def test_what_is_not_strict_json_is_refused_saying_why(data: bytes) -> None:
    with pytest.raises(NotJson) as refused:
        loads(data)
    assert str(refused.value) and len(str(refused.value)) <= 200


def test_a_name_twice_is_named_and_json_itself_is_read() -> None:
    with pytest.raises(NotJson, match="'price' appears twice"):
        loads(b'{"data": {"price": "1", "price": "2"}}')
    assert loads(b'{"a": [1, -0.5, "\\u00e9", null, true], "b": {"a": 1}}') == {
        "a": [1, -0.5, "\u00e9", None, True], "b": {"a": 1}}
    assert loads('{"a": 1, "a": 2}', unique_names=False) == {"a": 2}  # WebSocket messages' reading
