"""GET /metrics: Prometheus text for operators, counters matching what happened."""

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import position


async def test_metrics_need_an_operator_and_report_counters(make_server):
    server = await make_server(auth__admin_token="s3cret-token", streaming__immediate_channels=("positions",))
    user, cookie = await server.user_session("alice")
    assert (await server.fetch("/metrics")).code == 401
    assert (await server.fetch("/metrics", cookie=cookie)).code == 403
    client = await server.connect(cookie)
    await client.subscribe("positions")
    await client.expect("snapshot")
    server.publish(position(user.user_id))
    await client.expect("position_update")
    response = await server.fetch("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {s.name + str(sorted(s.labels.items())): s.value
               for family in text_string_to_metric_families(response.body.decode())
               for s in family.samples}
    assert samples["portfolio_ws_active_connections[]"] == 1
    assert samples["portfolio_ws_events_emitted_total[]"] == 1
    assert samples["portfolio_ws_messages_delivered_total[]"] == 1
    # Latency is a histogram (buckets add up across workers; quantile gauges don't): one delivery.
    assert samples["portfolio_ws_delivery_latency_seconds_count[]"] == 1
    assert samples["portfolio_ws_delivery_latency_seconds_bucket[('le', '+Inf')]"] == 1
    assert samples["portfolio_ws_delivery_latency_seconds_bucket[('le', '10.0')]"] == 1


async def test_every_scrape_reads_one_registry(make_server, monkeypatch):
    # A new CollectorRegistry was built for every request to /metrics.
    built = []
    real = prometheus_client.CollectorRegistry.__init__

    def counting(self, *args, **kwargs):
        built.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(prometheus_client.CollectorRegistry, "__init__", counting)
    server = await make_server(auth__admin_token="s3cret-token")
    for _ in range(3):
        response = await server.fetch("/metrics", headers={"Authorization": "Bearer s3cret-token"})
        assert response.code == 200
    assert len(built) == 1
