"""Never a 500 from the API: deep JSON, times out of range, the end of the calendar, lone surrogates,
NUL characters and non-finite numbers each get a clear 4xx naming the field (or, for a message text,
a 408 InvalidContent message with its history)."""

from __future__ import annotations

import json

import pytest

from bot.apikeys import create_key
from bot.pipeline.statuses import Status
from bot.signing import HEADER, sign
from models import Contact, InboundMessage, Keyword, MessageEvent, OutboundMessage, VirtualNumber

MOBILE, NUMBER = "+46731234567", "+46700000001"


@pytest.fixture
def headers(make_account, make_carrier, make_number):
    account = make_account(name="Shop", balance=1000, price_per_segment=10)
    make_number(account, make_carrier("generic"), NUMBER)
    return {"Authorization": f"Bearer {create_key(account, 'admin')[1]}", "Content-Type": "application/json"}


def raw(client, method: str, url: str, headers: dict, body: str | None = None):
    return client.open(url, method=method, data=body, headers=headers)


@pytest.mark.parametrize(
    "body",
    ["[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000, '{"phone": "' + "[" * 100 + '", "x": ' + "[" * 100],
)
def test_deeply_nested_json_is_400(client, headers, body):
    answer = raw(client, "POST", "/api/v1/contacts", headers, body)
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "bad_request"


def test_brackets_inside_strings_do_not_count_as_nesting(client, headers):
    body = json.dumps({"phone": MOBILE, "first_name": "[" * 90, "fields": {"note": "{" * 500}})
    assert raw(client, "POST", "/api/v1/contacts", headers, body).status_code == 201


def test_deep_json_to_a_webhook_is_400_too(client, make_carrier):
    make_carrier("generic", name="gw")
    answer = client.post("/webhooks/gw/inbound", data="[" * 5000 + "]" * 5000, content_type="application/json")
    assert answer.status_code == 400


@pytest.mark.parametrize(
    "send_at",
    [
        "9999-12-31T23:59:59",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+01:00",
        "1900-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "tomorrow",
        "2026-13-01T00:00:00",
    ],
)
def test_send_at_out_of_range_is_422_naming_it(client, headers, send_at):
    body = {"to": MOBILE, "from": "Shop", "text": "Hi", "send_at": send_at}
    answer = client.post("/api/v1/messages", json=body, headers=headers)
    assert (answer.status_code, answer.json["error"]["field"]) == (422, "send_at")
    assert OutboundMessage.select().count() == 0


def test_since_at_the_end_of_the_calendar_is_422(client, headers):
    answer = client.get("/api/v1/messages?since=9999-12-31T23:59:59-12:00", headers=headers)
    assert (answer.status_code, answer.json["error"]["field"]) == (422, "since")


def test_the_last_invoice_month_of_the_calendar_is_an_empty_invoice(client, headers):
    answer = client.get("/api/v1/account/invoices/9999-12", headers=headers)
    assert answer.status_code == 200
    assert (answer.json["messages"], answer.json["amount"]) == (0, 0)


@pytest.mark.parametrize("text", ["hi \\ud800", "\\udfff", "nul \\u0000 here"])
def test_a_message_text_no_database_can_hold_is_rejected_408_with_its_history(client, headers, text):
    body = '{"to": "+46731234567", "from": "Shop", "text": "' + text + '"}'
    answer = raw(client, "POST", "/api/v1/messages", headers, body)
    assert answer.status_code == 202
    message = answer.json["messages"][0]
    assert message["status"] == Status.INVALID_CONTENT
    assert [e["code"] for e in message["events"]] == [101, 408]
    row = OutboundMessage.get()
    assert "\ufffd" in row.body and "\x00" not in row.body
    assert MessageEvent.select().count() == 2


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/contacts", '{"phone": "+46731234567", "first_name": "\\udc80"}', "first_name"),
        ("/api/v1/contacts", '{"phone": "+46731234567", "last_name": "a\\u0000b"}', "last_name"),
        ("/api/v1/contacts", '{"phone": "+46731234567", "fields": {"city": "\\u0000"}}', "fields.city"),
        ("/api/v1/contacts", '{"phone": "+46731234567", "fields": {"n": NaN}}', "fields.n"),
        ("/api/v1/contacts", '{"phone": "+46731234567", "fields": {"n": 1e400}}', "fields.n"),
        ("/api/v1/contacts", '{"phone": "+46731234567", "groups": ["vip", "\\ud800"]}', "groups[1]"),
        ("/api/v1/contacts", '{"phone": "\\u0000"}', "phone"),
        (f"/api/v1/numbers/{NUMBER}/keywords", '{"word": "hi", "action": "reply", "reply": "\\ud83d"}', "reply"),
        (f"/api/v1/numbers/{NUMBER}/keywords", '{"word": "hi\\u0000", "action": "reply"}', "word"),
        ("/api/v1/blocklist", '{"phone": "\\u0000+46731234567"}', "phone"),
        ("/api/v1/messages", '{"to": "\\ud800", "from": "Shop", "text": "x"}', "to"),
        ("/api/v1/messages", '{"to": "+46731234567", "from": "Sh\\u0000op", "text": "x"}', "from"),
    ],
)
def test_nul_surrogates_and_non_finite_numbers_elsewhere_are_422_naming_the_field(client, headers, url, body, field):
    answer = raw(client, "POST", url, headers, body)
    assert (answer.status_code, answer.json["error"]["field"]) == (422, field)
    assert Contact.select().count() == Keyword.select().count() == OutboundMessage.select().count() == 0


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/contacts?phone=%00", "phone"),
        ("/api/v1/contacts?q=a%00", "q"),
        ("/api/v1/numbers/%00/keywords", "e164"),
    ],
)
def test_nul_in_a_query_or_path_parameter_is_422(client, headers, url, field):
    answer = client.get(url, headers=headers)
    assert (answer.status_code, answer.json["error"]["field"]) == (422, field)


def test_nul_in_the_api_key_is_401(client, headers):
    answer = client.get("/api/v1/contacts", headers={"Authorization": "Bearer smsbot_\x00ab_cd"})
    assert answer.status_code == 401


def test_an_sms_whose_first_word_is_longer_than_the_keyword_column_is_stored(client, make_account, make_carrier):
    carrier = make_carrier("generic", name="gw")
    VirtualNumber.create(number=NUMBER, account=make_account(name="Long"), carrier=carrier)
    body = json.dumps({"id": "long-1", "from": MOBILE, "to": NUMBER, "text": "9" * 400}).encode()
    answer = client.post(
        "/webhooks/gw/inbound",
        data=body,
        headers={"Content-Type": "application/json", HEADER: sign(carrier.secret, body)},
    )
    assert answer.status_code == 200
    stored = InboundMessage.get()
    assert (stored.body, stored.keyword) == ("9" * 400, "9" * 255)
