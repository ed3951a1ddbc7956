"""Nothing lost: with Redis down the webhook still answers and the sweeper sends the reply later."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from redis import Redis

from bot.pipeline.jobs import sweep
from bot.pipeline.outbound import Draft, accept, advance
from bot.pipeline.statuses import Status
from bot.redis_conn import get_redis
from bot.signing import sign
from models import InboundMessage, OutboundMessage, db, utcnow

MOBILE = "+46731234567"


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    account = make_account(balance=1000, price_per_segment=10)
    carrier = make_carrier("generic", url="http://127.0.0.1:9/unused")
    make_number(account, carrier, help_text="Shop help. Reply STOP to opt out.")
    return account, carrier


def redis_down(app) -> Redis:
    """Point the app at a port where no Redis listens (a real connection refusal), return the real one."""
    real = get_redis(app)
    app.extensions["redis"] = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    app.extensions.pop("rq_queues", None)
    return real


def redis_back(app, real: Redis) -> None:
    app.extensions["redis"] = real
    app.extensions.pop("rq_queues", None)


def inbound(client, carrier, n: int, text: str):
    body = json.dumps({"id": f"in-{n}", "from": MOBILE, "to": "+46700000001", "text": text}).encode()
    headers = {"Content-Type": "application/json", "X-Smsbot-Signature": sign(carrier.secret, body)}
    return client.post(f"/webhooks/{carrier.name}/inbound", data=body, headers=headers)


def test_webhook_answers_with_redis_down_and_the_sweeper_catches_up(app, client, shop, run_worker):
    _, carrier = shop
    real = redis_down(app)
    answers = [inbound(client, carrier, n, "HELP").status_code for n in range(3)]
    assert answers == [200, 200, 200]
    assert client.get("/healthz").status_code == 503
    assert InboundMessage.select().count() == 3
    replies = list(OutboundMessage.select())
    assert [r.status for r in replies] == [Status.QUEUED] * 3

    redis_back(app, real)
    OutboundMessage.update(updated_at=utcnow() - timedelta(minutes=5)).execute()  # past the outbox grace
    assert sweep()["requeued"] == 3
    assert sweep()["requeued"] == 0  # jobs are live now: nothing enqueued twice
    run_worker()
    statuses = {m.status for m in OutboundMessage.select()}
    assert statuses == {Status.DELIVERY_TO_GATEWAY_FAILED}  # the unused carrier URL refuses: sent, failed, refunded


def test_sweeper_marks_unknown_after_validity_and_grace(app, shop):
    account, carrier = shop
    with db.atomic():
        message = accept(Draft(account=account, sender="Shop", recipient=MOBILE, body="Hi", carrier=carrier))
    advance(message.id, Status.DELIVERED_TO_GATEWAY)
    OutboundMessage.update(expires_at=utcnow() - timedelta(hours=2)).execute()
    assert sweep()["unknown"] == 1
    assert OutboundMessage.get_by_id(message.id).status == Status.UNKNOWN
    assert sweep()["unknown"] == 0


def test_sweeper_leaves_final_and_fresh_messages_alone(app, shop):
    account, carrier = shop
    with db.atomic():
        fresh = accept(Draft(account=account, sender="Shop", recipient=MOBILE, body="Hi", carrier=carrier))
        final = accept(Draft(account=account, sender="Shop", recipient=MOBILE, body="Hi", carrier=carrier))
    advance(final.id, Status.DELIVERED_TO_HANDSET, "DELIVRD")
    OutboundMessage.update(expires_at=utcnow() - timedelta(days=10)).where(OutboundMessage.id == final.id).execute()
    assert set(sweep().values()) == {0}
    assert OutboundMessage.get_by_id(fresh.id).status == Status.QUEUED
    assert OutboundMessage.get_by_id(final.id).status == Status.DELIVERED_TO_HANDSET


def test_a_job_taken_by_a_worker_that_died_before_claiming_is_enqueued_again(app, shop):
    """RQ still says "started" (the worker died holding the job); the row says 102 and long unclaimed."""
    from rq.job import JobStatus

    from bot.pipeline.queue import get_queue, send_job_id

    account, carrier = shop
    with db.atomic():
        message = accept(Draft(account=account, sender="Shop", recipient=MOBILE, body="Hi", carrier=carrier))
    get_queue().fetch_job(send_job_id(message.id)).set_status(JobStatus.STARTED)
    OutboundMessage.update(updated_at=utcnow() - timedelta(minutes=5)).execute()
    assert sweep()["requeued"] == 1
    assert get_queue().fetch_job(send_job_id(message.id)).get_status() == JobStatus.QUEUED
