"""vonage carrier: inbound with concatenated parts, delivery receipts, `sig` signing, the SMS API."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from pytest_httpserver import HTTPServer

from bot.carriers import SendError, Submission, adapter_for
from models import InboundMessage, InboundPart
from tests.carrier_cases import BAD_SIGNATURE, NUMBER, PHONE, STALE, UNSIGNED, UPSTREAM_ID, Case, run
from webhooks.vonage import signature

# sms-reference §5.2: every parameter but sig, sorted, "&" and "=" in values as "_", "&k=v" joined.
PARAMS = {"timestamp": "1461605396", "b": "x&y=z", "a": "1", "sig": "not signed"}
SIGNED = b"&a=1&b=x_y_z&timestamp=1461605396"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("md5hash", hashlib.md5(SIGNED + b"secret").hexdigest()),
        *[(method, hmac.new(b"secret", SIGNED, method).hexdigest()) for method in ("md5", "sha1", "sha256", "sha512")],
    ],
)
def test_vonage_signature_by_method(method, expected):
    assert signature(PARAMS, "secret", method) == expected


def test_vonage_sdk_vector():
    params = {"a": "1", "b": "2", "timestamp": "1461605396"}
    assert signature(params, "secret") == "6af838ef94998832dbfc29020b564830"


class AsJson(dict):
    """A payload Vonage posts as JSON rather than as a form."""


def signer(carrier, path, payload, mode):
    if isinstance(payload, bytes):
        return payload, {"Content-Type": "application/json"}
    signed = dict(payload)
    if mode != UNSIGNED and carrier.signature_secret:
        signed["timestamp"] = str(int(time.time()) - (400 if mode == STALE else 0))
        secret = "wrong" if mode == BAD_SIGNATURE else carrier.signature_secret
        signed["sig"] = signature(signed, secret, carrier.signature_method)
    if isinstance(payload, AsJson):
        return json.dumps(signed).encode(), {"Content-Type": "application/json"}
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
        Case(f"concat {label}", "inbound", {**SMS, "concat": "true", **fields}, 400, NOTHING, field=field)
        for label, fields, field in [
            ("part 0", {"concat-ref": "9", "concat-total": "2", "concat-part": "0"}, "concat-part"),
            ("part past the total", {"concat-ref": "9", "concat-total": "2", "concat-part": "3"}, "concat-part"),
            ("total 256", {"concat-ref": "9", "concat-total": "256", "concat-part": "1"}, "concat-total"),
            ("total 0", {"concat-ref": "9", "concat-total": "0", "concat-part": "1"}, "concat-total"),
            ("part not a number", {"concat-ref": "9", "concat-total": "2", "concat-part": "one"}, "concat-part"),
            ("no reference", {"concat-total": "2", "concat-part": "1"}, "concat-ref"),
        ]
    ],
    Case("JSON nested thousands deep", "inbound", b'{"text": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", 400, NOTHING),
    Case(
        "a lone surrogate in the text is stored as U+FFFD",
        "inbound",
        AsJson({**SMS, "text": "HELP \ud800"}),
        writes=REPLY,
        inbound={"body": "HELP \ufffd", "action": "help"},
    ),
    Case("NUL in the text is dropped", "inbound", {**SMS, "text": "HE\x00LP"}, writes=REPLY, inbound={"body": "HELP"}),
    *[
        Case(f"NUL in {name}", "inbound", {**SMS, name: SMS[name] + "\x00"}, 400, NOTHING, field=name)
        for name in ("msisdn", "to", "messageId")
    ],
    *[
        Case(f"{name} longer than its column", "inbound", {**SMS, name: "4" * 256}, 400, NOTHING, field=name)
        for name in ("msisdn", "to", "messageId")
    ],
    Case("NUL in err-code", "status", receipt("failed", "1\x00"), 400, NOTHING, field="err-code", status=111),
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
    vonage = make_carrier(
        "vonage",
        name="vg",
        secret="api-secret",
        username="api-key",
        signature_secret="sig-secret",
        signature_method="md5hash",
    )
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
    assert InboundPart.select().where(InboundPart.assembled_at.is_null()).count() == 0


def test_unsigned_webhooks_are_accepted_when_no_signature_secret_is_set(client, carrier):
    carrier.signature_secret = ""
    carrier.save()
    assert client.post("/webhooks/vg/inbound", data=SMS).status_code == 200


def test_the_api_secret_does_not_sign_webhooks(client, carrier):
    payload = {**SMS, "timestamp": str(int(time.time()))}
    payload["sig"] = signature(payload, carrier.secret)
    assert client.post("/webhooks/vg/inbound", data=payload).status_code == 403


@pytest.mark.parametrize("method", ["md5hash", "md5", "sha1", "sha256", "sha512"])
def test_each_dashboard_method_is_accepted_in_any_case(client, carrier, method):
    carrier.signature_method = method
    carrier.save()
    payload, _ = signer(carrier, "", SMS, "signed")
    payload["sig"] = payload["sig"].upper()
    assert client.post("/webhooks/vg/inbound", data=payload).status_code == 200
    assert InboundMessage.get().action == "help"


def test_a_signature_by_another_method_is_rejected(client, carrier):
    carrier.signature_method = "sha256"
    carrier.save()
    payload = {**SMS, "timestamp": str(int(time.time()))}
    payload["sig"] = signature(payload, "sig-secret", "md5hash")
    response = client.post("/webhooks/vg/inbound", data=payload)
    assert (response.status_code, response.json["error"]["field"]) == (403, "sig")
    assert InboundMessage.select().count() == 0


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
