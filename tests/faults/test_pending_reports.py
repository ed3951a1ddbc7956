"""Pending reports are always applied: a report that lands while the send job records the carrier's answer,
reports the sweeper finds matching, and reports that carry our message id when the answer was lost."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from bot.pipeline.jobs import sweep
from bot.pipeline.outbound import Draft, accept, advance
from bot.pipeline.statuses import Status
from bot.signing import sign
from models import OutboundMessage, PendingReport, db, utcnow

PHONE = "+46731234567"


def queue(account, carrier) -> OutboundMessage:
    with db.atomic():
        return accept(Draft(account=account, sender="Shop", recipient=PHONE, body="Hi", carrier=carrier))


def post_report(app, carrier, payload: dict) -> int:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Smsbot-Signature": sign(carrier.secret, body)}
    return app.test_client().post(f"/webhooks/{carrier.name}/status", data=body, headers=headers).status_code


def gateway(make_account, make_carrier, make_number, url: str):
    account = make_account(balance=1000, price_per_segment=10)
    carrier = make_carrier("generic", name="gw", url=url)
    make_number(account, carrier)
    return account, carrier


def test_a_report_landing_while_the_job_records_the_answer_is_applied(
    app, httpserver, run_worker, make_account, make_carrier, make_number
):
    account, carrier = gateway(make_account, make_carrier, make_number, httpserver.url_for("/sms"))
    httpserver.expect_request("/sms").respond_with_json({"id": "up-race", "status": "accepted"})
    message = queue(account, carrier)
    job_thread, answers = threading.current_thread(), []

    def report_lands_now(event) -> None:  # the moment the job first reads the pending reports
        if threading.current_thread() is job_thread and '"pending_report"' in event.sql and not answers:
            webhook = threading.Thread(
                target=lambda: answers.append(post_report(app, carrier, {"id": "up-race", "stat": "DELIVRD"}))
            )
            webhook.start()
            webhook.join(timeout=20)

    db.obj.query_hooks.append(report_lands_now)
    try:
        run_worker()
    finally:
        db.obj.query_hooks.remove(report_lands_now)
    assert answers == [200]
    assert OutboundMessage.get_by_id(message.id).status == Status.DELIVERED_TO_HANDSET
    assert PendingReport.select().count() == 0


def test_the_sweeper_applies_pending_reports_that_now_match_and_expires_old_ones(
    app, make_account, make_carrier, make_number
):
    account, carrier = gateway(make_account, make_carrier, make_number, "http://127.0.0.1:9/sms")
    message = queue(account, carrier)
    OutboundMessage.update(upstream_id="up-parked").where(OutboundMessage.id == message.id).execute()
    advance(message.id, Status.DELIVERED_TO_GATEWAY, "upstream id up-parked", source="carrier")
    PendingReport.create(carrier=carrier, upstream_id="up-parked", code=201, detail="DELIVRD")  # what the race left
    long_ago = utcnow() - timedelta(minutes=app.config["VALIDITY_MINUTES"] + 1)
    PendingReport.create(carrier=carrier, upstream_id="never-seen", code=201, detail="DELIVRD", received_at=long_ago)
    PendingReport.create(carrier=carrier, upstream_id="not-yet", code=201, detail="DELIVRD")
    sweep()
    assert OutboundMessage.get_by_id(message.id).status == Status.DELIVERED_TO_HANDSET
    assert [p.upstream_id for p in PendingReport.select()] == ["not-yet"]


def test_a_report_with_our_message_id_settles_a_message_whose_answer_was_lost(
    app, make_account, make_carrier, make_number
):
    account, carrier = gateway(make_account, make_carrier, make_number, "http://127.0.0.1:9/sms")
    message = queue(account, carrier)
    advance(message.id, Status.QUEUED_AT_GATEWAY, "attempt 4: timeout, maybe sent; the carrier may have it")
    payload = {"id": "gw-77", "stat": "DELIVRD", "err": "000", "message_id": message.id}
    assert post_report(app, carrier, payload) == 200
    settled = OutboundMessage.get_by_id(message.id)
    assert (settled.status, settled.upstream_id) == (Status.DELIVERED_TO_HANDSET, "gw-77")
    other = queue(account, carrier)  # our id of a message whose upstream id is another: not matched, kept
    OutboundMessage.update(upstream_id="gw-78").where(OutboundMessage.id == other.id).execute()
    assert post_report(app, carrier, {"id": "gw-99", "stat": "DELIVRD", "message_id": other.id}) == 200
    assert OutboundMessage.get_by_id(other.id).status == Status.QUEUED
    assert PendingReport.select().count() == 1
