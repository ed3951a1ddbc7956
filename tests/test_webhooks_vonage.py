"""vonage carrier: inbound with concatenated parts, delivery receipts, `sig` signing, the SMS API."""

from __future__ import annotations

import time

import pytest
from pytest_httpserver import HTTPServer

from bot.carriers import SendError, Submission, adapter_for
from models import InboundMessage, InboundPart
from tests.carrier_cases import BAD_SIGNATURE, NUMBER, PHONE, STALE, UNSIGNED, UPSTREAM_ID, Case, run
from webhooks.vonage import md5_signature


def test_vonage_signature_vector():
    assert (
        md5_signature({"a": "1", "b": "2", "timestamp": "1461605396"}, "secret") == "6af838ef94998832dbfc29020b564830"
    )


def signer(carrier, path, payload, mode):
    if mode == UNSIGNED or not carrier.secret:
        return payload, {}
    signed = {**payload, "timestamp": str(int(time.time()) - (400 if mode == STALE else 0))}
    signed["sig"] = md5_signature(signed, "wrong" if mode == BAD_SIGNATURE else carrier.secret)
    return signed, {}


SMS = {
    "msisdn": PHONE[1:],
    "to": NUMBER[1:],
    "messageId": "0A01",
    "text": "HELP",
    "type": "text",
    "keyword": "HELP",
    "message-timestamp": "2026-11-24 21:04:11",
}
REPLY = {"InboundMessage": 1, "OutboundMessage": 1, "MessageEvent": 3}
NOTHING: dict[str, int] = {}


def receipt(status: str, error: str = "0") -> dict[str, str]:
    return {
        "msisdn": PHONE[1:],
        "to": "Shop",
        "network-code": "24001",
        "messageId": UPSTREAM_ID,
        "price": "0.03330000",
        "status": status,
        "scts": "2611242104",
        "err-code": error,
    }


CASES = [
    Case(
        "help",
        "inbound",
        SMS,
        writes=REPLY,
        inbound={"sender": PHONE, "recipient": NUMBER, "carrier_message_id": "0A01", "action": "help"},
    ),
    Case("unsigned while the carrier has a secret", "inbound", SMS, 401, NOTHING, UNSIGNED),
    Case("wrong sig", "inbound", SMS, 403, NOTHING, BAD_SIGNATURE),
    Case("stale timestamp", "inbound", SMS, 403, NOTHING, STALE),
    Case("no msisdn", "inbound", {k: v for k, v in SMS.items() if k != "msisdn"}, 400, NOTHING),
    Case(
        "a first part waits for the rest",
        "inbound",
        {**SMS, "concat": "true", "concat-ref": "108", "concat-total": "2", "concat-part": "1"},
        writes={"InboundPart": 1},
    ),
    *[
        Case(f"{word} err {error}", "status", receipt(word, error), writes={"MessageEvent": 1}, status=code)
        for word, error, code in [
            ("accepted", "0", 112),
            ("buffered", "0", 113),
            ("buffered", "2", 503),
            ("buffered", "7", 503),
            ("delivered", "0", 201),
            ("expired", "0", 202),
            ("failed", "1", 515),
            ("failed", "2", 502),
            ("failed", "3", 501),
            ("rejected", "4", 405),
            ("failed", "5", 512),
            ("rejected", "6", 404),
            ("failed", "7", 514),
            ("failed", "8", 513),
            ("rejected", "9", 409),
            ("rejected", "10", 404),
            ("failed", "11", 512),
            ("failed", "12", 502),
            ("rejected", "13", 405),
            ("rejected", "14", 406),
            ("rejected", "15", 516),
            ("failed", "99", 515),
            ("unknown", "1", 599),
        ]
    ],
]


@pytest.fixture
def carrier(make_account, make_carrier, make_number):
    vonage = make_carrier("vonage", name="vg", secret="sig-secret", username="api-key")
    make_number(make_account(name="Shop"), vonage, NUMBER)
    return vonage


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_vonage_webhooks(client, carrier, case):
    run(client, carrier, case, signer)


def post_part(client, carrier, part: int, text: str, message_id: str):
    payload = {
        **SMS,
        "messageId": message_id,
        "text": text,
        "concat": "true",
        "concat-ref": "108",
        "concat-total": "3",
        "concat-part": str(part),
    }
    body, _ = signer(carrier, "", payload, "signed")
    return client.post("/webhooks/vg/inbound", data=body)


def test_concatenated_parts_are_reassembled_in_order_before_routing(client, carrier):
    for part, text, message_id in [
        (3, "vip", "p3"),
        (1, "SAVE Anna ", "p1"),
        (1, "SAVE Anna ", "p1"),
        (2, "Berg ", "p2"),
    ]:
        assert post_part(client, carrier, part, text, message_id).status_code == 200
    inbound = InboundMessage.get()
    assert (inbound.body, inbound.action) == ("SAVE Anna Berg vip", "save")
    assert InboundPart.select().count() == 0


def test_unsigned_webhooks_are_accepted_when_no_secret_is_set(client, carrier):
    carrier.secret = ""
    carrier.save()
    assert client.post("/webhooks/vg/inbound", data=SMS).status_code == 200


def submission(encoding: str = "GSM-7") -> Submission:
    return Submission(7, NUMBER, PHONE, "Hej", encoding, 60, "http://smsbot.test/webhooks/vg/status")


def test_submit_calls_the_sms_api(app, carrier, httpserver: HTTPServer):
    carrier.url = httpserver.url_for("/")
    httpserver.expect_request("/sms/json").respond_with_json(
        {"message-count": "1", "messages": [{"status": "0", "message-id": "0B77", "to": PHONE[1:]}]}
    )
    submitted = adapter_for("vonage").submit(carrier, submission("UCS-2"))
    assert (submitted.upstream_id, submitted.code) == ("0B77", 111)
    form = httpserver.log[0][0].form
    assert (form["to"], form["from"], form["type"], form["client-ref"]) == (PHONE[1:], NUMBER[1:], "unicode", "7")


@pytest.mark.parametrize(("status", "code", "retryable"), [("1", 511, True), ("6", 406, False)])
def test_submit_refusals(app, carrier, httpserver: HTTPServer, status, code, retryable):
    carrier.url = httpserver.url_for("/")
    httpserver.expect_request("/sms/json").respond_with_json({"messages": [{"status": status, "error-text": "no"}]})
    with pytest.raises(SendError) as failure:
        adapter_for("vonage").submit(carrier, submission())
    assert (failure.value.code, failure.value.retryable) == (code, retryable)
