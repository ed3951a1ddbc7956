"""Property: whatever arrives (arbitrary JSON and text, lone surrogates, NUL, huge numbers, deep nesting,
bytes that are not UTF-8), the API and the inbound webhooks answer below 500 and leave no half-written
rows: a refused request writes nothing, a webhook's 2xx means the inbound is stored, and every
outbound message carries its history (101 first, its current status among its events).

Deterministic (`derandomize`, no example database) and bounded (MAX_EXAMPLES per endpoint, no deadline),
on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from bot.apikeys import create_key
from bot.signing import HEADER, sign
from models import (
    BlockEntry,
    Contact,
    Group,
    InboundMessage,
    Keyword,
    LedgerEntry,
    MessageEvent,
    OutboundMessage,
    Schedule,
)

NUMBER, PHONE = "+46700000001", "+46731234567"
MAX_EXAMPLES = 100
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
TABLES = (InboundMessage, OutboundMessage, MessageEvent, Contact, BlockEntry, Keyword, LedgerEntry, Schedule)

# --- what arrives -----------------------------------------------------------------------------------

NASTY = [
    "\ud800",
    "a\udfffb",
    "\x00",
    "nul\x00inside",
    "9" * 400,
    "x" * 3000,
    "{phone:>30000000}",
    "{phone.__class__}",
    '=HYPERLINK("http://x")',
    "STOP",
    "START",
    "HELP",
    "SAVE Anna Berg vip",
    PHONE,
    NUMBER,
    "0731234567",
    "Shop",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+01:00",
    "2026-11-24T21:04:11Z",
    "",
    " ",
    "[" * 80,
]
any_char = st.characters(codec=None, exclude_categories=())  # surrogates and NUL included
texts = st.one_of(st.text(any_char, max_size=30), st.sampled_from(NASTY))
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**63, 2**64, 10**100]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=12
)


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


deep = st.integers(min_value=65, max_value=6000).map(lambda n: (b"[" * n) + (b"]" * n))
huge_number = st.integers(min_value=4301, max_value=20000).map(lambda n: b'{"to": ' + b"9" * n + b"}")
raw_bodies = st.one_of(deep, huge_number, st.binary(max_size=80), st.just(b'{"text": "\xed\xa0\x80"}'))


def bodies(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy[bytes]:
    """Mostly the endpoint's own fields with hostile values, sometimes anything at all."""
    shaped = st.fixed_dictionaries(
        {}, optional={name: st.one_of(strategy, json_values) for name, strategy in fields.items()}
    )
    return st.one_of(shaped.map(dumps), shaped.map(dumps), json_values.map(dumps), raw_bodies)


phones = st.one_of(st.sampled_from([PHONE, "0731234567", "+46731234568", "+12015550123"]), texts)

# --- the invariants ---------------------------------------------------------------------------------


def counts() -> dict[str, int]:
    return {model.__name__: model.select().count() for model in TABLES}


def assert_no_half_written_rows() -> None:
    """Every outbound message has its history: a 101 event, and its status among its events."""
    with_accepted = MessageEvent.select(MessageEvent.message).where(MessageEvent.code == 101)
    assert not OutboundMessage.select().where(OutboundMessage.id.not_in(with_accepted)).exists()
    for message in OutboundMessage.select():
        assert message.status in {event.code for event in message.events}, message.id
    funded = MessageEvent.select(MessageEvent.message).where(MessageEvent.code == 103)
    debits = LedgerEntry.select().where(LedgerEntry.kind.in_(("debit", "invoice")))
    assert not debits.where(LedgerEntry.message.not_in(funded)).exists()


@pytest.fixture
def world(app, make_account, make_carrier, make_number):
    """An account with a number on each carrier kind, a few keywords, and requests that report 500s."""
    app.config.update(PROPAGATE_EXCEPTIONS=False, FORWARD_ALLOW_PRIVATE=True)  # no DNS for generated URLs
    account = make_account(name="Shop", balance=10**9, price_per_segment=1)
    numbers = {
        "gw": make_number(account, make_carrier("generic", name="gw"), NUMBER),
        "tw": make_number(account, make_carrier("twilio", name="tw", username="AC1"), "+46700000002"),
        "vg": make_number(account, make_carrier("vonage", name="vg", secret=""), "+46700000003"),
    }
    Keyword.create(number=numbers["gw"], word="join", action="subscribe", group_name="vip", reply="Hi {first_name}")
    Keyword.create(number=numbers["gw"], word="price", action="reply", reply="{args} costs {phone}")
    Group.create(account=account, name="VIP", name_key="vip")  # for group sends and schedules
    key = create_key(account, "admin")[1]
    return {"account": account, "numbers": numbers, "auth": {"Authorization": f"Bearer {key}"}}


def run_property(strategy: st.SearchStrategy, request: Callable[[Any], Any]) -> Counter[int]:
    """Drive one endpoint: never a 5xx; a 4xx writes nothing; no half-written rows."""
    statuses: Counter[int] = Counter()

    @SETTINGS
    @given(strategy)
    def check(example: Any) -> None:
        before = counts()
        answer = request(example)
        statuses[answer.status_code // 100] += 1
        assert answer.status_code < 500, f"HTTP {answer.status_code} for {example!r}: {answer.get_data()[:300]!r}"
        if answer.status_code >= 400:
            assert counts() == before, f"HTTP {answer.status_code} wrote rows for {example!r}"
        assert_no_half_written_rows()

    check()
    return statuses


# --- the API ----------------------------------------------------------------------------------------

API = {
    "POST /api/v1/messages": {
        "to": st.one_of(phones, st.lists(phones, max_size=3)),
        "from": st.one_of(st.sampled_from(["Shop", NUMBER, "+46700000009"]), texts),
        "text": texts,
        "send_at": texts,
        "validity_minutes": numbers,
        "group": texts,
    },
    "POST /api/v1/contacts": {
        "phone": phones,
        "first_name": texts,
        "last_name": texts,
        "groups": st.lists(texts, max_size=3),
        "fields": st.dictionaries(texts, scalars, max_size=3),
    },
    f"POST /api/v1/numbers/{NUMBER}/keywords": {
        "word": texts,
        "action": st.sampled_from(["reply", "subscribe", "unsubscribe", "forward", "flow", "dance"]),
        "reply": texts,
        "aliases": st.lists(texts, max_size=3),
        "group": texts,
        "url": st.one_of(st.just("http://127.0.0.1:9/bot"), texts),
        "flow": json_values,
    },
    f"PATCH /api/v1/numbers/{NUMBER}": {"help_text": texts, "default_reply": texts, "save_enabled": json_values},
    "POST /api/v1/blocklist": {"phone": phones},
    "POST /api/v1/schedules": {
        "group": st.one_of(st.just("vip"), texts),
        "from": st.one_of(st.sampled_from(["Shop", NUMBER, "+46700000009"]), texts),
        "text": texts,
        "frequency": st.one_of(st.sampled_from(["daily", "weekly", "monthly"]), texts),
        "days": st.lists(st.one_of(st.sampled_from(["mon", "sun"]), texts), max_size=3),
        "day_of_month": numbers,
        "time": st.one_of(st.sampled_from(["09:00", "02:30", "24:00"]), texts),
        "start_date": st.one_of(st.sampled_from(["2030-02-28", "9999-12-31", "0001-01-01", "2030-02-30"]), texts),
        "end_date": st.one_of(st.sampled_from(["2030-03-01", "2029-01-01", "9999-12-31"]), texts),
        "count": numbers,
    },
}


@pytest.mark.parametrize("endpoint", list(API), ids=list(API))
def test_api_bodies_never_5xx_nor_half_writes(client, world, endpoint):
    method, path = endpoint.split(" ", 1)
    headers = {**world["auth"], "Content-Type": "application/json"}
    statuses = run_property(
        bodies(API[endpoint]), lambda body: client.open(path, method=method, data=body, headers=headers)
    )
    assert statuses[4] and statuses[2] + statuses[4] == sum(statuses.values())


def test_api_paths_and_queries_never_5xx(client, world):
    def request(parts: tuple[str, str, str]) -> Any:
        kind, value, extra = parts
        quoted = quote(value.encode("utf-8", "surrogatepass"), safe="")
        url = {
            "unblock": f"/api/v1/blocklist/{quoted}",
            "erase": f"/api/v1/privacy/{quoted}",
            "invoice": f"/api/v1/account/invoices/{quoted}",
            "messages": f"/api/v1/messages?since={quoted}&to={quote(extra.encode('utf-8', 'surrogatepass'))}",
            "contacts": f"/api/v1/contacts?q={quoted}&phone={quote(extra.encode('utf-8', 'surrogatepass'))}",
            "keyword": f"/api/v1/numbers/{quoted}/keywords/{quote(extra.encode('utf-8', 'surrogatepass'), safe='')}",
        }[kind]
        method = "DELETE" if kind in ("unblock", "erase") else "GET"
        return client.open(url, method=method, headers=world["auth"])

    kinds = st.sampled_from(["unblock", "erase", "invoice", "messages", "contacts", "keyword"])
    extra_texts = st.one_of(texts, st.sampled_from(["9999-12", "0000-01", "2026-02", "%00"]))
    run_property(st.tuples(kinds, extra_texts, texts), request)


def test_contact_import_never_5xx(client, world):
    csv_bodies = st.one_of(
        st.binary(max_size=200),
        st.lists(st.lists(texts, min_size=1, max_size=4), max_size=4).map(
            lambda rows: "\n".join(["phone,first_name,last_name,groups"] + [",".join(r) for r in rows]).encode(
                "utf-8", "surrogatepass"
            )
        ),
    )
    headers = {**world["auth"], "Content-Type": "text/csv"}
    run_property(csv_bodies, lambda body: client.post("/api/v1/contacts/import", data=body, headers=headers))


# --- the inbound webhooks ---------------------------------------------------------------------------
def stored_after_2xx(answer: Any, message_id: Any) -> None:
    if 200 <= answer.status_code < 300 and isinstance(message_id, str) and message_id.strip():
        assert InboundMessage.select().where(InboundMessage.carrier_message_id == message_id).exists()


GENERIC_FIELDS = {
    "id": st.one_of(st.uuids().map(str), texts),
    "from": phones,
    "to": st.one_of(st.just(NUMBER), phones),
    "text": texts,
    "received_at": st.one_of(texts, numbers),
}


def test_generic_webhook_never_5xx(client, world):
    carrier = world["numbers"]["gw"].carrier
    bodies_and_fields = st.one_of(
        st.fixed_dictionaries(
            {"id": st.uuids().map(str), "from": phones, "to": st.just(NUMBER), "text": texts},
            optional={"received_at": st.one_of(texts, numbers)},
        ),
        st.fixed_dictionaries({}, optional={k: st.one_of(v, json_values) for k, v in GENERIC_FIELDS.items()}),
        json_values,
    ).map(lambda value: (dumps(value), value))
    raw = raw_bodies.map(lambda body: (body, None))

    def request(example: tuple[bytes, Any]) -> Any:
        body, value = example
        headers = {"Content-Type": "application/json", HEADER: sign(carrier.secret, body)}
        answer = client.post("/webhooks/gw/inbound", data=body, headers=headers)
        if isinstance(value, dict):
            stored_after_2xx(answer, value.get("id"))
        return answer

    statuses = run_property(st.one_of(bodies_and_fields, raw), request)
    assert statuses[2], "no payload reached the router"


def form_fields(names: dict[str, st.SearchStrategy]) -> st.SearchStrategy[dict[str, str]]:
    as_text = {name: strategy.map(str) for name, strategy in names.items()}
    return st.fixed_dictionaries({}, optional=as_text)


def twilio_signature(token: str, url: str, fields: dict[str, str]) -> str:
    """Twilio's scheme (sms-reference §5.1): base64 HMAC-SHA1 of the URL and each name + value, sorted."""
    payload = url + "".join(name + fields[name] for name in sorted(fields))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def as_server_reads(fields: dict[str, str]) -> dict[str, str]:
    """The form as the server decodes it (werkzeug keeps the escapes of bytes that are not UTF-8)."""
    body = urlencode(fields, encoding="utf-8", errors="surrogatepass")
    environ = EnvironBuilder(method="POST", data=body, content_type="application/x-www-form-urlencoded").get_environ()
    return Request(environ).form.to_dict()


def test_twilio_webhook_never_5xx(app, client, world):
    carrier = world["numbers"]["tw"].carrier
    url = app.config["PUBLIC_BASE_URL"] + "/webhooks/tw/inbound"
    required = {
        "MessageSid": st.uuids().map(lambda u: "SM" + u.hex),
        "From": phones,
        "To": st.just("+46700000002"),
        "Body": texts,
    }
    forms = st.one_of(
        st.fixed_dictionaries(
            {k: v.map(str) for k, v in required.items()},
            optional={"OptOutType": st.sampled_from(["STOP", "START", "HELP"]), "NumSegments": texts},
        ),
        form_fields({**required, "AccountSid": texts, "NumMedia": texts}),
    )

    def request(fields: dict[str, str]) -> Any:
        body = urlencode(fields, encoding="utf-8", errors="surrogatepass")
        headers = {"X-Twilio-Signature": twilio_signature(carrier.secret, url, as_server_reads(fields))}
        answer = client.post(
            "/webhooks/tw/inbound", data=body, headers=headers, content_type="application/x-www-form-urlencoded"
        )
        stored_after_2xx(answer, as_server_reads(fields).get("MessageSid"))
        return answer

    statuses = run_property(forms, request)
    assert statuses[2] > MAX_EXAMPLES // 2, f"most payloads must pass the signature check: {statuses}"


def test_vonage_webhook_never_5xx(client, world):
    required = {
        "msisdn": st.one_of(st.just(PHONE[1:]), phones),
        "to": st.just("46700000003"),
        "messageId": st.uuids().map(lambda u: u.hex[:16]),
        "text": texts,
    }
    optional = {"type": st.sampled_from(["text", "unicode", "binary"]), "message-timestamp": texts, "keyword": texts}
    payloads = st.one_of(
        st.fixed_dictionaries(required, optional=optional).map(lambda f: ("json", f)),
        st.fixed_dictionaries({k: v.map(str) for k, v in required.items()}).map(lambda f: ("form", f)),
        st.fixed_dictionaries({}, optional={**required, **optional, "extra": json_values}).map(lambda f: ("json", f)),
    )

    def request(example: tuple[str, dict[str, Any]]) -> Any:
        kind, fields = example
        if kind == "json":
            answer = client.post("/webhooks/vg/inbound", data=dumps(fields), content_type="application/json")
            stored_after_2xx(answer, fields.get("messageId"))
            return answer
        body = urlencode(fields, encoding="utf-8", errors="surrogatepass")
        answer = client.post("/webhooks/vg/inbound", data=body, content_type="application/x-www-form-urlencoded")
        stored_after_2xx(answer, as_server_reads(fields).get("messageId"))
        return answer

    statuses = run_property(payloads, request)
    assert statuses[2], "no payload reached the router"
