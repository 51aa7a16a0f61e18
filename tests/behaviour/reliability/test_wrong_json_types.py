"""Every JSON field an HTTP route takes, sent with the wrong JSON type (a number, a boolean, null, a
list, an object): a clear 400 naming the field and saying what type it must be, in the route's
usual error shape, never a misleading message (a number password "too short") nor a 500; and
nothing is created. The publish API's per-item checks are tests/behaviour/server/test_publish.py's."""

from __future__ import annotations

from typing import Any

import pytest
import ujson

from tests.harness import PASSWORD
from tests.publishing import new_key, trade_item

WRONG = [123, 1.5, True, None, [], ["correct horse battery"], {}, {"a": "b"}]
LOGIN = "/api/auth/login"
USERS = "/api/v1/users"
PUBLISH = "/api/v1/publish"


@pytest.mark.parametrize("route,field", [(LOGIN, "username"), (LOGIN, "password"),
                                         (USERS, "username"), (USERS, "password")])
async def test_a_wrong_json_type_gets_a_400_saying_it_must_be_a_string(make_server, route, field):
    server = await make_server()
    server.add_user("alice")
    headers = {"Authorization": f"Bearer {new_key(server, scope='admin')}"} if route == USERS else {}
    good = {"username": "alice" if route == LOGIN else "bob", "password": PASSWORD}
    for value in WRONG:
        response = await server.fetch(route, "POST", {**good, field: value}, headers=headers)
        assert response.code == 400, (value, response.body)
        error = ujson.loads(response.body)["error"]
        assert error["code"] == "INVALID_REQUEST", (value, error)
        assert f"{field} " in error["message"] and "string" in error["message"], (value, error)
        assert "short" not in error["message"] and "characters among" not in error["message"], (value, error)
        if route == USERS:
            assert error["field"] == field
    assert [user.username for user in server.users.list()] == ["alice"]  # nothing created


@pytest.mark.parametrize("field", ["type", "userId", "id", "data", "data.price", "data.quantity", "data.symbol"])
async def test_a_published_item_with_a_wrong_json_type_is_rejected_by_field(make_server, field):
    server = await make_server()
    user, _ = await server.user_session("alice")
    key = new_key(server)
    wrong = [value for value in WRONG if field != "data" or not isinstance(value, dict)]  # {} lacks its fields
    items: list[Any] = []
    for index, value in enumerate(wrong):
        item = trade_item(user.user_id, f"i{index}")
        parent, _, name = field.rpartition(".")
        (item[parent] if parent else item)[name] = value
        items.append(item)
    response = await server.fetch(PUBLISH, "POST", items, headers={"Authorization": f"Bearer {key}"})
    assert response.code == 200, response.body
    results = ujson.loads(response.body)["results"]
    assert [(r["status"], r["field"]) for r in results] == [("rejected", field)] * len(wrong), results
