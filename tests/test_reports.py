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
from models import Account, MessageEvent, OutboundMessage, PendingReport, db, utcnow

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


def handed_off(account, carrier, count: int) -> list[OutboundMessage]:
    """`count` messages the carrier took, as up-b0, up-b1, …"""
    messages = [queue_message(account, carrier) for _ in range(count)]
    for n, message in enumerate(messages):
        OutboundMessage.update(upstream_id=f"up-b{n}", status=Status.DELIVERED_TO_GATEWAY).where(
            OutboundMessage.id == message.id
        ).execute()
    return messages


def test_a_request_of_many_reports_applies_each_once_in_a_few_statements(client, gateway):
    account, carrier = gateway
    messages = handed_off(account, carrier, 40)
    before = {m.id: history(m.id) for m in messages}
    reports = [{"id": f"up-b{n}", "stat": "UNDELIV" if n % 4 == 0 else "DELIVRD"} for n in range(40)]
    assert report(client, carrier, []) == 400  # type: ignore[arg-type]  # (the carrier is cached now)
    seen: list[str] = []

    def count(event) -> None:  # type: ignore[no-untyped-def]
        if not event.sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")):
            seen.append(event.sql.split()[0].upper())

    db.obj.query_hooks.append(count)
    try:
        assert report(client, carrier, reports) == 200  # type: ignore[arg-type]
    finally:
        db.obj.query_hooks.remove(count)
    assert seen == ["SELECT", "INSERT", "UPDATE", "UPDATE"]  # the messages, their events, one per status
    statuses = {m.id: OutboundMessage.get_by_id(m.id).status for m in messages}
    assert [statuses[m.id] for m in messages] == [515 if n % 4 == 0 else 201 for n in range(40)]
    assert all(history(m.id) == [*before[m.id], statuses[m.id]] for m in messages)
    balance = Account.get_by_id(account.id).balance

    assert report(client, carrier, [*reports, {"id": "up-b0", "stat": "DELIVRD"}]) == 200  # the carrier retries
    assert statuses == {m.id: OutboundMessage.get_by_id(m.id).status for m in messages}  # nothing moved back:
    # up-b0's DELIVRD after its UNDELIV is history only
    assert history(messages[0].id) == [*before[messages[0].id], 515, 201]
    assert all(history(m.id) == [*before[m.id], statuses[m.id]] for m in messages[1:])
    assert PendingReport.select().count() == 0
    assert Account.get_by_id(account.id).balance == balance  # handed off: no refund
