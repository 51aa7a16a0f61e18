"""What a publish counts: the response's counts and the Python publisher's lists agree (a duplicate
is not accepted), and the admin stats and /metrics count requests, 4xx and items by outcome."""

from __future__ import annotations

import ujson
from prometheus_client.parser import text_string_to_metric_families

from portfolio_ws.publish import AsyncPublisher
from tests.publishing import new_key, publish, trade_item

ADMIN = {"Authorization": "Bearer s3cret-token"}


async def test_the_response_and_the_publisher_count_a_duplicate_as_not_accepted(make_server):
    server = await make_server()
    user, _ = await server.user_session("alice")
    key = new_key(server)
    first = [trade_item(user.user_id, "fill-1", "t-1")]
    assert ujson.loads((await publish(server, first, key)).body)["accepted"] == 1
    batch = [*first, trade_item(user.user_id, "fill-2", "t-2"), {"type": "trade"}]
    body = ujson.loads((await publish(server, batch, key)).body)
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 1, 1)
    async with AsyncPublisher(f"http://127.0.0.1:{server.port}", key, retries=0) as publisher:
        result = await publisher.publish([*batch, trade_item(user.user_id, "fill-3", "t-3")])
    # The same meaning on both sides: fill-3 only is accepted now; fill-1 and fill-2 are duplicates.
    assert [r["id"] for r in result.accepted] == ["fill-3"]
    assert [r["id"] for r in result.duplicates] == ["fill-1", "fill-2"]
    assert [r["index"] for r in result.rejected] == [2]


async def test_admin_stats_and_metrics_count_publishes(make_server):
    server = await make_server(auth__admin_token="s3cret-token")
    user, _ = await server.user_session("alice")
    key = new_key(server)
    items = [trade_item(user.user_id, "a", "t-a"), trade_item(user.user_id, "b", "t-b"), {"type": "x"}]
    await publish(server, items, key)           # 2 accepted, 1 rejected
    await publish(server, items[:1], key)       # 1 duplicate
    assert (await publish(server, items, None)).code == 401
    assert (await publish(server, [], key)).code == 400
    stats = ujson.loads((await server.fetch("/api/admin/websocket-stats", headers=ADMIN)).body)
    assert stats["publish"] == {"requests": 4, "clientErrors": 2, "accepted": 2, "duplicates": 1, "rejected": 1}
    text = (await server.fetch("/metrics", headers=ADMIN)).body.decode()
    samples = {s.name + str(sorted(s.labels.items())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples["portfolio_ws_publish_requests_total[]"] == 4
    assert samples["portfolio_ws_publish_client_errors_total[]"] == 2
    assert samples["portfolio_ws_publish_items_total[('outcome', 'accepted')]"] == 2
    assert samples["portfolio_ws_publish_items_total[('outcome', 'duplicate')]"] == 1
    assert samples["portfolio_ws_publish_items_total[('outcome', 'rejected')]"] == 1
