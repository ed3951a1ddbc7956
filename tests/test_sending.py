"""The send job on a real worker: claim, hand-off, retries with backoff, 511 and refund, carrier 4xx."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from bot.pipeline.outbound import Draft, accept
from bot.pipeline.queue import enqueue_sends
from bot.pipeline.statuses import Status
from models import Account, MessageEvent, OutboundMessage, db

MOBILE = "+46731234567"


@pytest.fixture
def gateway(httpserver: HTTPServer, make_account, make_carrier, make_number):
    account = make_account(balance=1000, price_per_segment=35)
    carrier = make_carrier("generic", url=httpserver.url_for("/sms"))
    make_number(account, carrier)
    return account, carrier


def queue_message(account: Account, carrier, body: str = "Hello") -> OutboundMessage:
    with db.atomic():
        return accept(Draft(account=account, sender="+46700000001", recipient=MOBILE, body=body, carrier=carrier))


def accepted(upstream: str = "up-1", status: str = "accepted") -> Response:
    return Response(json.dumps({"id": upstream, "status": status}), content_type="application/json")


def codes(message_id: int) -> list[int]:
    return [e.code for e in OutboundMessage.get_by_id(message_id).events.order_by(MessageEvent.id)]


def details(message_id: int) -> list[str]:
    return [e.detail for e in OutboundMessage.get_by_id(message_id).events.order_by(MessageEvent.id)]


def test_carrier_503_then_accepted_is_one_submission_recorded_as_sent(gateway, httpserver, run_worker):
    account, carrier = gateway
    httpserver.expect_ordered_request("/sms").respond_with_data("busy", status=503)
    httpserver.expect_ordered_request("/sms").respond_with_response(accepted())
    message = queue_message(account, carrier)
    run_worker()
    sent = OutboundMessage.get_by_id(message.id)
    assert sent.status == Status.DELIVERED_TO_GATEWAY
    assert sent.upstream_id == "up-1"
    assert codes(message.id) == [101, 103, 102, 110, 110, 111]
    assert details(message.id)[4] == "attempt 1 failed: HTTP 503: busy"
    assert len(httpserver.log) == 2
    assert Account.get_by_id(account.id).balance == 1000 - 35


def test_queued_at_gateway_answer(gateway, httpserver, run_worker):
    account, carrier = gateway
    httpserver.expect_request("/sms").respond_with_response(accepted(status="queued"))
    message = queue_message(account, carrier)
    run_worker()
    assert OutboundMessage.get_by_id(message.id).status == Status.QUEUED_AT_GATEWAY


def test_retries_exhausted_is_511_with_refund(gateway, httpserver, run_worker):
    account, carrier = gateway
    httpserver.expect_request("/sms").respond_with_data("down", status=502)
    message = queue_message(account, carrier)
    run_worker()
    failed = OutboundMessage.get_by_id(message.id)
    assert failed.status == Status.DELIVERY_TO_GATEWAY_FAILED
    assert codes(message.id) == [101, 103, 102, 110, 110, 110, 110, 511, 104]  # an event per failed attempt
    assert details(message.id)[4:8] == [
        "attempt 1 failed: HTTP 502: down",
        "attempt 2 failed: HTTP 502: down",
        "attempt 3 failed: HTTP 502: down",
        "attempt 4: HTTP 502: down",
    ]
    assert len(httpserver.log) == 4  # the first try and three retries
    assert Account.get_by_id(account.id).balance == 1000


def test_carrier_4xx_is_a_final_rejection_with_refund(gateway, httpserver, run_worker):
    account, carrier = gateway
    httpserver.expect_request("/sms").respond_with_data("bad", status=400)
    message = queue_message(account, carrier)
    run_worker()
    assert OutboundMessage.get_by_id(message.id).status == Status.GENERIC_REJECTED
    assert len(httpserver.log) == 1
    assert Account.get_by_id(account.id).balance == 1000


def test_a_redirect_is_not_followed_and_the_message_is_a_gateway_error(gateway, httpserver, run_worker):
    """A carrier answering 307 elsewhere: the POST goes nowhere else, and is not retried (it may be taken)."""
    account, carrier = gateway
    elsewhere = httpserver.url_for("/elsewhere")
    httpserver.expect_request("/sms").respond_with_response(Response("", status=307, headers={"Location": elsewhere}))
    message = queue_message(account, carrier)
    run_worker()
    assert [request.path for request, _ in httpserver.log] == ["/sms"]
    assert OutboundMessage.get_by_id(message.id).status == Status.GATEWAY_ERROR


def test_a_carrier_url_without_http_is_not_sent(gateway, run_worker):
    account, carrier = gateway
    carrier.url = "carrier.example/sms"
    carrier.save()
    message = queue_message(account, carrier)
    run_worker()
    assert OutboundMessage.get_by_id(message.id).status == Status.DELIVERY_TO_GATEWAY_FAILED
    assert any("not sent: no http(s) URL" in event.detail for event in MessageEvent.select())
    assert Account.get_by_id(account.id).balance == 1000  # refunded: it never left us


def test_two_jobs_for_one_message_send_it_once(gateway, httpserver, run_worker):
    account, carrier = gateway
    httpserver.expect_request("/sms").respond_with_response(accepted())
    message = queue_message(account, carrier)
    enqueue_sends([message.id])  # a second job, as a sweeper racing the first would add
    run_worker()
    assert len(httpserver.log) == 1
    assert codes(message.id) == [101, 103, 102, 110, 111]


def test_our_message_id_is_the_idempotency_key(gateway, httpserver, run_worker):
    account, carrier = gateway
    httpserver.expect_request("/sms").respond_with_response(accepted())
    message = queue_message(account, carrier)
    run_worker()
    request, _ = httpserver.log[0]
    assert request.headers["Idempotency-Key"] == str(message.id)
    assert request.get_json()["id"] == message.id
