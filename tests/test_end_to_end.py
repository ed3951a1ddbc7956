"""The spine, end to end over real HTTP: inbound keyword → reply → RQ worker → carrier → report → 201."""

from __future__ import annotations

import json

import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot.pipeline.statuses import Status
from bot.signing import sign
from models import Contact, Group, InboundMessage, MessageEvent, OutboundMessage


def post_signed(base: str, carrier: str, action: str, payload: dict, secret: str) -> requests.Response:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Smsbot-Signature": sign(secret, body)}
    return requests.post(f"{base}/webhooks/{carrier}/{action}", data=body, headers=headers, timeout=5)


def test_save_reply_reaches_carrier_and_report_moves_it_to_delivered(
    live_server, httpserver: HTTPServer, run_worker, make_account, make_carrier, make_number
):
    account = make_account(balance=1000, price_per_segment=35)
    carrier = make_carrier("generic", name="acme-gw", url=httpserver.url_for("/sms"))
    make_number(account, carrier)
    received: list[dict] = []

    def carrier_endpoint(request: Request) -> Response:
        received.append(request.get_json())
        return Response(json.dumps({"id": "up-1", "status": "accepted"}), content_type="application/json")

    httpserver.expect_request("/sms", method="POST").respond_with_handler(carrier_endpoint)

    inbound = {"id": "in-1", "from": "+46731234567", "to": "+46700000001", "text": "SAVE Niklas Niklasson customers"}
    answer = post_signed(live_server, "acme-gw", "inbound", inbound, carrier.secret)
    assert answer.status_code == 200

    contact = Contact.get(Contact.phone == "+46731234567")
    assert (contact.first_name, contact.last_name) == ("Niklas", "Niklasson")
    assert [g.name for g in Group.select()] == ["customers"]
    reply = OutboundMessage.get()
    assert reply.body == "Saved Niklas Niklasson in customers."
    assert reply.status == Status.QUEUED
    assert reply.reply_to_id == InboundMessage.get().id

    run_worker()
    assert received == [
        {
            "id": reply.id,
            "from": "+46700000001",
            "to": "+46731234567",
            "text": "Saved Niklas Niklasson in customers.",
            "encoding": "GSM-7",
            "validity_minutes": 72 * 60,
            "status_url": f"{live_server}/webhooks/acme-gw/status",
        }
    ]
    assert OutboundMessage.get_by_id(reply.id).status == Status.DELIVERED_TO_GATEWAY

    delivery = {"id": "up-1", "stat": "DELIVRD", "err": "000"}
    report = post_signed(live_server, "acme-gw", "status", delivery, carrier.secret)
    assert report.status_code == 200
    delivered = OutboundMessage.get_by_id(reply.id)
    assert delivered.status == Status.DELIVERED_TO_HANDSET
    assert [e.code for e in delivered.events.order_by(MessageEvent.id)] == [101, 103, 102, 110, 111, 201]
    assert delivered.account.balance == 1000 - 35
