"""A worker killed with SIGKILL mid-send: the claim lapses, the sweeper re-enqueues, and the message ends
sent once (the carrier sees the same idempotency key twice and keeps one message)."""

from __future__ import annotations

import os
import signal
import threading
import time

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot.pipeline.jobs import sweep
from bot.pipeline.outbound import Draft, accept
from bot.pipeline.statuses import Status
from models import MessageEvent, OutboundMessage, db


def test_sigkill_mid_send_ends_sent_once(
    app, spawn_worker, httpserver: HTTPServer, run_worker, make_account, make_carrier, make_number
):
    account = make_account(balance=100, price_per_segment=10)
    carrier = make_carrier("generic", name="gw", url=httpserver.url_for("/sms"))
    make_number(account, carrier)
    submissions: list[str] = []
    first_arrived = threading.Event()

    def idempotent_carrier(request: Request) -> Response:
        key = request.headers["Idempotency-Key"]
        submissions.append(key)
        if len(submissions) == 1:
            first_arrived.set()
            time.sleep(2)  # the worker is killed while waiting for this answer
        return Response(f'{{"id": "up-{key}", "status": "accepted"}}', content_type="application/json")

    httpserver.expect_request("/sms").respond_with_handler(idempotent_carrier)
    with db.atomic():
        message = accept(Draft(account=account, sender="Shop", recipient="+46731234567", body="Hi", carrier=carrier))

    worker = spawn_worker(SMSBOT_SEND_LEASE_SECONDS="1")
    try:
        assert first_arrived.wait(timeout=30), "the worker never reached the carrier"
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its scheduler, as when a machine dies
    finally:
        worker.wait(timeout=10)
    db.close()
    db.connect()
    assert OutboundMessage.get_by_id(message.id).status == Status.SENDING  # claimed, never answered

    time.sleep(1.2)  # the claim lapses
    assert sweep()["requeued"] == 1
    run_worker()

    sent = OutboundMessage.get_by_id(message.id)
    assert (sent.status, sent.upstream_id) == (Status.DELIVERED_TO_GATEWAY, f"up-{message.id}")
    assert submissions == [str(message.id), str(message.id)]  # one message, one key, tried twice
    codes = [e.code for e in sent.events.order_by(MessageEvent.id)]
    assert codes == [101, 103, 102, 110, 111]
    assert sent.account.balance == 90  # debited once
