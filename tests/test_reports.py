"""Delivery reports through the real status webhook: out of order, repeated, and before the id is known."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from rq.registry import ScheduledJobRegistry
from werkzeug import Response

from bot.pipeline.outbound import Draft, accept
from bot.pipeline.queue import get_queue
from bot.pipeline.statuses import Status
from bot.signing import sign
from models import MessageEvent, OutboundMessage, PendingReport, db, utcnow

PHONE = "+46731234567"


@pytest.fixture
def gateway(httpserver: HTTPServer, make_account, make_carrier, make_number):
    account = make_account(balance=1000, price_per_segment=10)
    carrier = make_carrier("generic", name="gw", url=httpserver.url_for("/sms"))
    make_number(account, carrier)
    return account, carrier


def queue_message(account, carrier, **fields) -> OutboundMessage:
    with db.atomic():
        return accept(Draft(account=account, sender="Shop", recipient=PHONE, body="Hi", carrier=carrier, **fields))


def report(client, carrier, payload: dict) -> int:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Smsbot-Signature": sign(carrier.secret, body)}
    return client.post(f"/webhooks/{carrier.name}/status", data=body, headers=headers).status_code


def history(message_id: int) -> list[int]:
    return [e.code for e in MessageEvent.select().where(MessageEvent.message == message_id).order_by(MessageEvent.id)]


def test_out_of_order_and_repeated_reports(client, gateway, httpserver, run_worker):
    account, carrier = gateway
    httpserver.expect_request("/sms").respond_with_json({"id": "up-9", "status": "accepted"})
    message = queue_message(account, carrier)
    run_worker()
    for stat in ("DELIVRD", "ACCEPTD", "DELIVRD", "ENROUTE", "UNDELIV"):
        assert report(client, carrier, {"id": "up-9", "stat": stat}) == 200
    final = OutboundMessage.get_by_id(message.id)
    assert final.status == Status.DELIVERED_TO_HANDSET
    assert history(message.id) == [101, 103, 102, 110, 111, 201, 112, 113, 515]


def test_a_report_that_beats_the_submit_answer_is_applied_when_the_id_is_known(client, gateway, httpserver, run_worker):
    account, carrier = gateway
    assert report(client, carrier, {"id": "up-early", "stat": "DELIVRD"}) == 200
    assert report(client, carrier, {"id": "up-early", "stat": "DELIVRD"}) == 200  # the carrier retries it
    assert PendingReport.select().count() == 1
    httpserver.expect_request("/sms").respond_with_json({"id": "up-early", "status": "accepted"})
    message = queue_message(account, carrier)
    run_worker()
    assert OutboundMessage.get_by_id(message.id).status == Status.DELIVERED_TO_HANDSET
    assert history(message.id) == [101, 103, 102, 110, 111, 201]
    assert PendingReport.select().count() == 0


def test_subscriber_offline_is_not_final(client, gateway, httpserver, run_worker):
    account, carrier = gateway
    httpserver.expect_request("/sms").respond_with_json({"id": "up-3", "status": "accepted"})
    message = queue_message(account, carrier)
    run_worker()
    report(client, carrier, {"id": "up-3", "status": 503})
    assert OutboundMessage.get_by_id(message.id).status == Status.SUBSCRIBER_OFFLINE
    report(client, carrier, {"id": "up-3", "stat": "DELIVRD"})
    assert OutboundMessage.get_by_id(message.id).status == Status.DELIVERED_TO_HANDSET


def test_a_scheduled_message_waits_for_its_time(gateway, httpserver, run_worker):
    account, carrier = gateway
    httpserver.expect_request("/sms").respond_with_response(
        Response(json.dumps({"id": "up-s", "status": "accepted"}), content_type="application/json")
    )
    later = utcnow() + timedelta(hours=2)
    message = queue_message(account, carrier, send_at=later)
    assert [(e.code, e.detail) for e in message.events.order_by(MessageEvent.id)][-1] == (102, "scheduled")
    scheduled = ScheduledJobRegistry(queue=get_queue())
    assert scheduled.get_job_ids() == [f"send-{message.id}"]
    run_worker(with_scheduler=True)
    assert OutboundMessage.get_by_id(message.id).status == Status.QUEUED
    assert httpserver.log == []
    assert message.expires_at == later + timedelta(minutes=message.validity_minutes)

    job = get_queue().fetch_job(f"send-{message.id}")
    scheduled.schedule(job, datetime.now(UTC) - timedelta(seconds=1))  # its time has come
    run_worker(with_scheduler=True)
    assert OutboundMessage.get_by_id(message.id).status == Status.DELIVERED_TO_GATEWAY
