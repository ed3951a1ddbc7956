"""Database connections cut with pg_terminate_backend, between requests, inside a webhook's transaction
and right after the carrier accepted a message: webhooks answer 2xx and nothing is submitted twice."""

from __future__ import annotations

import json
import threading
import time

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot.pipeline.jobs import sweep
from bot.pipeline.outbound import Draft, accept
from bot.pipeline.statuses import Status
from bot.signing import sign
from models import Account, InboundMessage, OutboundMessage, db
from tests.faults.support import cut_connections, postgres_only

pytestmark = postgres_only
PHONE, NUMBER = "+46731234567", "+46700000001"


def inbound(client, carrier, sms_id: str, text: str) -> int:
    body = json.dumps({"id": sms_id, "from": PHONE, "to": NUMBER, "text": text}).encode()
    headers = {"Content-Type": "application/json", "X-Smsbot-Signature": sign(carrier.secret, body)}
    return client.post(f"/webhooks/{carrier.name}/inbound", data=body, headers=headers).status_code


def test_webhooks_answer_2xx_when_connections_are_cut_between_and_inside_requests(
    app, client, make_account, make_carrier, make_number
):
    carrier = make_carrier("generic", name="gw")
    make_number(make_account(name="Shop"), carrier, NUMBER)
    assert inbound(client, carrier, "gw-1", "HELP") == 200

    assert cut_connections() >= 1  # every pooled connection dies while idle (a server restart looks the same)
    assert inbound(client, carrier, "gw-2", "HELP") == 200

    request_thread, cut = threading.current_thread(), []

    def cut_mid_transaction(event) -> None:  # right after the inbound row is written, before the commit
        if threading.current_thread() is request_thread and 'INSERT INTO "inbound_message"' in event.sql and not cut:
            cut.append(cut_connections(db.connection().get_backend_pid()))

    db.obj.query_hooks.append(cut_mid_transaction)
    try:
        assert inbound(client, carrier, "gw-3", "HELP") == 200
    finally:
        db.obj.query_hooks.remove(cut_mid_transaction)
    assert cut == [1]
    assert [m.carrier_message_id for m in InboundMessage.select().order_by(InboundMessage.id)] == [
        "gw-1",
        "gw-2",
        "gw-3",
    ]
    assert OutboundMessage.select().count() == 3  # one HELP answer each, none twice


def test_a_connection_cut_after_the_carrier_accepted_does_not_send_twice(
    app, httpserver: HTTPServer, run_worker, make_account, make_carrier, make_number
):
    account = make_account(balance=100, price_per_segment=10)
    carrier = make_carrier("generic", name="gw", url=httpserver.url_for("/sms"))
    make_number(account, carrier, NUMBER)
    submissions: list[str] = []

    def accept_then_cut(request: Request) -> Response:
        submissions.append(request.headers["Idempotency-Key"])
        cut_connections()  # the worker's connection dies while it waits for this answer
        return Response(json.dumps({"id": "up-1", "status": "accepted"}), content_type="application/json")

    httpserver.expect_request("/sms").respond_with_handler(accept_then_cut)
    app.config["SEND_LEASE_SECONDS"] = 1
    with db.atomic():
        message = accept(Draft(account=account, sender="Shop", recipient=PHONE, body="Hi", carrier=carrier))
    run_worker()
    time.sleep(1.2)  # any claim left behind lapses
    sweep()
    run_worker()

    sent = OutboundMessage.get_by_id(message.id)
    assert submissions == [str(message.id)]
    assert (sent.status, sent.upstream_id) == (Status.DELIVERED_TO_GATEWAY, "up-1")
    assert Account.get_by_id(account.id).balance == 90
