"""`/metrics`, read back with prometheus_client's own parser: counts, queue depth, failed jobs, latencies."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.pipeline.queue import get_queue
from tests.console_helpers import NUMBER, PHONE, setup_account


def scrape(client, **headers) -> dict:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def text_in(client, body: str, message_id: str) -> None:
    payload = {"id": message_id, "from": PHONE, "to": NUMBER, "text": body}
    assert client.post("/webhooks/sim/inbound", json=payload).status_code == 200


def test_inbound_by_carrier_and_outcome_and_outbound_by_status(client):
    setup_account()
    text_in(client, "HELP", "m1")
    text_in(client, "STOP", "m2")
    text_in(client, "STOP", "m3")
    unrouted = {"id": "m4", "from": PHONE, "to": "+46700000099", "text": "hi"}
    assert client.post("/webhooks/sim/inbound", json=unrouted).status_code == 200
    samples = scrape(client)
    inbound = "smsbot_inbound_messages_total"
    assert samples[(inbound, (("carrier", "sim"), ("outcome", "help")))] == 1
    assert samples[(inbound, (("carrier", "sim"), ("outcome", "opt-out")))] == 2
    assert samples[(inbound, (("carrier", "sim"), ("outcome", "unrouted")))] == 1
    queued = (("status", "102"), ("status_group", "Info"), ("status_name", "Queued"))
    assert samples[("smsbot_outbound_messages", queued)] == 2  # the HELP answer and one STOP confirmation
    assert samples[("smsbot_queue_jobs", (("queue", "smsbot-test"), ("state", "queued")))] == 2
    assert samples[("smsbot_redis_up", ())] == 1


def test_webhook_and_send_latency_histograms(client, live_server, run_worker):
    setup_account()
    text_in(client, "HELP", "h1")
    assert client.post("/webhooks/nobody/inbound", json={}).status_code == 404  # not a label
    run_worker()
    samples = scrape(client)
    webhook = (("action", "inbound"), ("carrier", "sim"))
    assert samples[("smsbot_webhook_seconds_count", webhook)] == 1
    assert samples[("smsbot_webhook_seconds_bucket", (*webhook[:1], ("carrier", "sim"), ("le", "+Inf")))] == 1
    assert samples[("smsbot_webhook_seconds_sum", webhook)] > 0
    assert not any(name.startswith("smsbot_webhook") and ("carrier", "nobody") in labels for name, labels in samples)
    reports = (("action", "status"), ("carrier", "sim"))
    assert samples[("smsbot_webhook_seconds_count", reports)] == 3  # the simulator's 112, 113, 201
    assert samples[("smsbot_send_seconds_count", (("carrier", "sim"), ("result", "accepted")))] == 1
    delivered = (("status", "201"), ("status_group", "Success"), ("status_name", "DeliveredToHandset"))
    assert samples[("smsbot_outbound_messages", delivered)] == 1


def test_failed_jobs_are_counted(client, run_worker):
    get_queue().enqueue("bot.no_such_module.job", 1)
    run_worker()
    assert scrape(client)[("smsbot_failed_jobs", (("queue", "smsbot-test"),))] == 1


def test_a_metrics_token_is_required_when_set(client, app):
    app.config["METRICS_TOKEN"] = "s3cret-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
