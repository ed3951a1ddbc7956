"""twilio carrier: form webhooks, X-Twilio-Signature, TwiML answers, status callbacks, the Messages API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from bot.carriers import SendError, Submission, adapter_for
from bot.pipeline.outbound import Draft, accept
from bot.pipeline.reports import apply_pending
from bot.pipeline.statuses import Status
from models import Account, BlockEntry, ConsentEvent, InboundMessage, OutboundMessage
from tests.carrier_cases import BAD_SIGNATURE, NUMBER, PHONE, UNSIGNED, UPSTREAM_ID, Case, run, tracked_message
from webhooks.twilio import EMPTY_TWIML, signature, url_variants

PUBLIC = "http://smsbot.test"
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("caller", "expected"),
    [("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="), ("+12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")],
)
def test_twilio_signature_vectors(caller, expected):
    params = {
        "CallSid": ["CA1234567890ABCDE"],
        "Caller": [caller],
        "Digits": ["1234"],
        "From": [caller],
        "To": ["+18005551212"],
    }
    assert signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == expected


def sdk_signature(token: str, url: str, form: list[tuple[str, str]]) -> str:
    """As Twilio's RequestValidator signs: names sorted, each distinct value of a name once, sorted."""
    names = sorted({name for name, _ in form})
    signed = url + "".join(name + value for name in names for value in sorted({v for n, v in form if n == name}))
    return base64.b64encode(hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()).decode()


@pytest.mark.parametrize(
    "extra",
    [[("MediaUrl0", "https://a.example/1")] * 2, [("Tag", "b"), ("Tag", "a"), ("Tag", "b")]],
    ids=["identical values", "distinct and identical values"],
)
def test_repeated_parameters_are_signed_as_the_sdk_signs_them(client, carrier, extra):
    form = [*SMS.items(), *extra]
    headers = {"X-Twilio-Signature": sdk_signature("auth-token", PUBLIC + "/webhooks/tw/inbound", form)}
    response = client.post("/webhooks/tw/inbound", data=urlencode(form), headers=headers, content_type=FORM)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert InboundMessage.get().action == "save"


def test_url_variants_with_and_without_default_port():
    assert set(url_variants("https://a.example/x?y=1")) == {"https://a.example/x?y=1", "https://a.example:443/x?y=1"}


def signer(carrier, path, payload, mode):
    headers = {}
    if mode != UNSIGNED:
        token = "wrong" if mode == BAD_SIGNATURE else carrier.secret
        headers["X-Twilio-Signature"] = signature(token, PUBLIC + path, {k: [v] for k, v in payload.items()})
    return payload, headers


SMS = {
    "ToCountry": "SE",
    "SmsMessageSid": "SM11",
    "NumMedia": "0",
    "From": PHONE,
    "To": NUMBER,
    "Body": "SAVE Anna Berg vip",
    "MessageSid": "SM11",
    "AccountSid": "AC1",
    "ApiVersion": "2010-04-01",
}
SAVED = {"InboundMessage": 1, "OutboundMessage": 1, "MessageEvent": 3, "Contact": 1}
NOTHING: dict[str, int] = {}


def callback(status: str, error: str = "") -> dict[str, str]:
    form = {"MessageSid": UPSTREAM_ID, "MessageStatus": status, "AccountSid": "AC1", "To": PHONE, "From": NUMBER}
    return {**form, "ErrorCode": error} if error else form


CASES = [
    Case(
        "save, answered with empty TwiML",
        "inbound",
        SMS,
        writes=SAVED,
        body_contains=EMPTY_TWIML,
        inbound={"carrier_message_id": "SM11", "body": "SAVE Anna Berg vip", "action": "save"},
    ),
    Case(
        "STOP with OptOutType: Twilio replied, we only block",
        "inbound",
        {**SMS, "Body": "STOP", "MessageSid": "SM12", "OptOutType": "STOP"},
        writes={"InboundMessage": 1, "BlockEntry": 1},
    ),
    Case("unsigned", "inbound", SMS, 401, NOTHING, UNSIGNED),
    Case("signed with another token", "inbound", SMS, 403, NOTHING, BAD_SIGNATURE),
    Case("no MessageSid", "inbound", {k: v for k, v in SMS.items() if k not in ("MessageSid",)}, 400, NOTHING),
    *[
        Case(f"{word} {error}".strip(), "status", callback(word, error), writes={"MessageEvent": 1}, status=code)
        for word, error, code in [
            ("sent", "", 112),
            ("delivered", "", 201),
            ("read", "", 201),
            ("canceled", "", 203),
            ("failed", "", 512),
            ("undelivered", "", 515),
            ("undelivered", "30001", 202),
            ("undelivered", "30002", 516),
            ("undelivered", "30003", 502),
            ("undelivered", "30004", 405),
            ("undelivered", "30005", 501),
            ("failed", "30006", 410),
            ("undelivered", "30007", 404),
            ("undelivered", "30008", 515),
            ("failed", "30034", 406),
            ("failed", "30500", 516),
            ("teleported", "", 599),
        ]
    ],
    Case("queued is not a step forward from 111", "status", callback("queued"), writes={"MessageEvent": 1}, status=111),
    Case(
        "21610: the recipient unsubscribed at Twilio, blocked here too",
        "status",
        callback("failed", "21610"),
        writes={"MessageEvent": 1, "BlockEntry": 1},
        status=405,
    ),
    *[
        Case(f"failed {error}", "status", callback("failed", error), writes={"MessageEvent": 1}, status=code)
        for error, code in [("21211", 409), ("21614", 410), ("21635", 410), ("21408", 406)]
    ],
    Case("NUL in ErrorCode", "status", callback("failed", "30003\x00"), 400, NOTHING, field="ErrorCode", status=111),
    Case(
        "NUL in the Body is dropped",
        "inbound",
        {**SMS, "Body": "SAVE\x00 Anna"},
        writes=SAVED,
        inbound={"body": "SAVE Anna"},
    ),
    *[
        Case(f"NUL in {name}", "inbound", {**SMS, name: SMS[name] + "\x00"}, 400, NOTHING, field=name)
        for name in ("From", "To", "MessageSid")
    ],
    *[
        Case(f"{name} longer than its column", "inbound", {**SMS, name: "S" * 256}, 400, NOTHING, field=name)
        for name in ("From", "To", "MessageSid")
    ],
]


@pytest.fixture
def carrier(make_account, make_carrier, make_number):
    twilio = make_carrier("twilio", name="tw", secret="auth-token", username="AC1")
    make_number(make_account(name="Shop"), twilio, NUMBER)
    return twilio


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_twilio_webhooks(client, carrier, case):
    run(client, carrier, case, signer)


def test_a_carrier_opt_out_blocks_the_recipient_with_source_carrier(client, carrier):
    run(client, carrier, next(case for case in CASES if case.label.startswith("21610")), signer)
    entry = BlockEntry.get()
    assert (entry.phone, entry.source, entry.account.name) == (PHONE, "carrier", "Shop")


def test_an_early_opt_out_report_blocks_once_its_message_is_known(client, carrier):
    body, headers = signer(
        carrier, "/webhooks/tw/status", {**callback("failed", "21610"), "MessageSid": "SM-early"}, ""
    )
    assert client.post("/webhooks/tw/status", data=body, headers=headers).status_code == 200
    assert BlockEntry.select().count() == 0
    message = tracked_message(carrier)
    OutboundMessage.update(upstream_id="SM-early").where(OutboundMessage.id == message.id).execute()
    assert apply_pending(OutboundMessage.get_by_id(message.id)) == 1
    assert OutboundMessage.get_by_id(message.id).status == 405
    assert [(e.phone, e.source) for e in BlockEntry.select()] == [(PHONE, "carrier")]


def submission(message_id: int = 7) -> Submission:
    return Submission(message_id, NUMBER, PHONE, "Hej", "GSM-7", 4320, f"{PUBLIC}/webhooks/tw/status")


def test_submit_calls_the_messages_api(app, carrier, httpserver: HTTPServer):
    carrier.url = httpserver.url_for("/")
    path = "/2010-04-01/Accounts/AC1/Messages.json"
    httpserver.expect_request(path, method="POST").respond_with_json({"sid": "SM99", "status": "queued"}, status=201)
    submitted = adapter_for("twilio").submit(carrier, submission())
    assert (submitted.upstream_id, submitted.code) == ("SM99", 114)
    request, _ = httpserver.log[0]
    assert request.form.to_dict() == {
        "To": PHONE,
        "From": NUMBER,
        "Body": "Hej",
        "StatusCallback": f"{PUBLIC}/webhooks/tw/status",
    }
    assert request.authorization.username == "AC1" and request.authorization.password == "auth-token"


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (400, {"code": 21610, "message": "unsubscribed"}, 405, False),
        (400, {"code": 21211, "message": "invalid To"}, 409, False),
        (400, {"code": 21614, "message": "not mobile"}, 410, False),
        (400, {"code": 99999, "message": "other"}, 406, False),
        (429, {"code": 20429, "message": "slow down"}, 511, True),
        (500, {}, 511, True),
    ],
)
def test_submit_errors(app, carrier, httpserver: HTTPServer, status, body, code, retryable):
    carrier.url = httpserver.url_for("/")
    httpserver.expect_request("/2010-04-01/Accounts/AC1/Messages.json").respond_with_response(
        Response(json.dumps(body), status=status, content_type="application/json")
    )
    with pytest.raises(SendError) as failure:
        adapter_for("twilio").submit(carrier, submission())
    assert (failure.value.code, failure.value.retryable) == (code, retryable)


def test_a_submission_refused_with_21610_blocks_the_recipient_as_a_report_would(
    app, carrier, httpserver: HTTPServer, run_worker
):
    """Twilio 21610 at submission: the recipient unsubscribed at Twilio. The message ends 405, refunded, and
    the phone goes on the account's block list (source carrier), so the next send is refused at once."""
    carrier.url = httpserver.url_for("/")
    carrier.save()
    refusal = {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}
    httpserver.expect_request("/2010-04-01/Accounts/AC1/Messages.json").respond_with_response(
        Response(json.dumps(refusal), status=400, content_type="application/json")
    )
    account = Account.get(Account.name == "Shop")
    account.balance, account.price_per_segment = 100, 10
    account.save()
    draft = Draft(account=account, sender=NUMBER, recipient="+46731234567", body="Sale", carrier=carrier)
    message = accept(draft)
    run_worker()
    message = OutboundMessage.get_by_id(message.id)
    assert message.status == Status.RECIPIENT_REJECTED
    assert Account.get_by_id(account.id).balance == 100
    entry = BlockEntry.get(BlockEntry.account == account)
    assert (entry.phone, entry.source, entry.topic) == ("+46731234567", "carrier", "")
    assert "21610" in ConsentEvent.get(ConsentEvent.phone == "+46731234567").text
    again = accept(Draft(account=account, sender=NUMBER, recipient="+46731234567", body="Sale", carrier=carrier))
    assert again.status == Status.RECIPIENT_REJECTED
