"""generic carrier: our JSON format and X-Smsbot-Signature, as a table of real payloads."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from bot.signing import HEADER, sign
from tests.carrier_cases import BAD_SIGNATURE, NUMBER, PHONE, STALE, UNSIGNED, UPSTREAM_ID, Case, run
from tests.carrier_cases import unknown_carrier_is_404 as check_unknown_carrier


def signer(carrier, path, payload, mode):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if mode != UNSIGNED:
        secret = "wrong" if mode == BAD_SIGNATURE else carrier.secret
        headers[HEADER] = sign(secret, body, int(time.time()) - (400 if mode == STALE else 0))
    return body, headers


SMS = {"id": "gw-1", "from": PHONE, "to": NUMBER, "text": "HELP", "received_at": "2026-11-24T21:04:11+01:00"}
STORED = {"carrier_message_id": "gw-1", "sender": PHONE, "recipient": NUMBER, "body": "HELP", "action": "help"}
REPLY = {"InboundMessage": 1, "OutboundMessage": 1, "MessageEvent": 3}
NOTHING: dict[str, int] = {}

CASES = [
    Case("help, signed", "inbound", SMS, writes=REPLY, inbound=STORED),
    Case(
        "national numbers are normalised",
        "inbound",
        {**SMS, "from": "0731234567", "to": "0700000001"},
        writes=REPLY,
        inbound={"sender": PHONE, "recipient": NUMBER},
    ),
    Case(
        "received_at is stored in UTC",
        "inbound",
        SMS,
        writes=REPLY,
        inbound={"received_at": datetime(2026, 11, 24, 20, 4, 11)},
    ),
    Case("unsigned", "inbound", SMS, 401, NOTHING, UNSIGNED),
    Case("wrong secret", "inbound", SMS, 403, NOTHING, BAD_SIGNATURE),
    Case("stale timestamp", "inbound", SMS, 403, NOTHING, STALE),
    Case("not JSON", "inbound", b"id=1", 400, NOTHING),
    Case("JSON array", "inbound", [SMS], 400, NOTHING),
    Case("missing from", "inbound", {k: v for k, v in SMS.items() if k != "from"}, 400, NOTHING, body_contains="from"),
    Case("text not a string", "inbound", {**SMS, "text": 5.5}, 400, NOTHING),
    Case("bad received_at", "inbound", {**SMS, "received_at": "yesterday"}, 400, NOTHING),
    Case(
        "unknown To is stored unrouted",
        "inbound",
        {**SMS, "to": "+46709999999"},
        writes={"InboundMessage": 1},
        inbound={"number": None, "outcome": "unrouted"},
    ),
    Case(
        "DELIVRD",
        "status",
        {"id": UPSTREAM_ID, "stat": "DELIVRD", "err": "000"},
        writes={"MessageEvent": 1},
        status=201,
    ),
    Case("ACCEPTD", "status", {"id": UPSTREAM_ID, "stat": "ACCEPTD"}, writes={"MessageEvent": 1}, status=112),
    Case("ENROUTE", "status", {"id": UPSTREAM_ID, "stat": "ENROUTE"}, writes={"MessageEvent": 1}, status=113),
    Case("EXPIRED", "status", {"id": UPSTREAM_ID, "stat": "EXPIRED"}, writes={"MessageEvent": 1}, status=202),
    Case("DELETED", "status", {"id": UPSTREAM_ID, "stat": "DELETED"}, writes={"MessageEvent": 1}, status=203),
    Case(
        "UNDELIV",
        "status",
        {"id": UPSTREAM_ID, "stat": "UNDELIV", "err": "001"},
        writes={"MessageEvent": 1},
        status=515,
    ),
    Case(
        "our message id beside the upstream id",
        "status",
        {"id": UPSTREAM_ID, "stat": "DELIVRD", "message_id": 1},
        writes={"MessageEvent": 1},
        status=201,
    ),
    Case(
        "message_id not an integer",
        "status",
        {"id": UPSTREAM_ID, "stat": "DELIVRD", "message_id": "1"},
        400,
        NOTHING,
        status=111,
        body_contains="message_id",
    ),
    Case("REJECTD", "status", {"id": UPSTREAM_ID, "stat": "REJECTD"}, writes={"MessageEvent": 1}, status=406),
    Case(
        "an unknown stat is answered 2xx and kept as 599",
        "status",
        {"id": UPSTREAM_ID, "stat": "WEIRD"},
        writes={"MessageEvent": 1},
        status=599,
    ),
    Case("our own code", "status", {"id": UPSTREAM_ID, "status": 502}, writes={"MessageEvent": 1}, status=502),
    Case("not one of our codes", "status", {"id": UPSTREAM_ID, "status": 777}, 400, NOTHING, status=111),
    Case("report without id", "status", {"stat": "DELIVRD"}, 400, NOTHING),
    Case(
        "report for an unknown upstream id is kept",
        "status",
        {"id": "later-1", "stat": "DELIVRD"},
        writes={"PendingReport": 1},
        status=111,
    ),
    Case("unsigned report", "status", {"id": UPSTREAM_ID, "stat": "DELIVRD"}, 401, NOTHING, UNSIGNED, status=111),
    Case("JSON nested thousands deep", "inbound", b'{"id": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", 400, NOTHING),
    Case("a report nested thousands deep", "status", b"[" * 20_000 + b"]" * 20_000, 400, NOTHING, status=111),
    *[
        Case(f"received_at {value}", "inbound", {**SMS, "received_at": value}, 400, NOTHING, field="received_at")
        for value in [
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:00:00+01:00",
            "2999-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
            12,
        ]
    ],
    Case(
        "a lone surrogate in the text is stored as U+FFFD",
        "inbound",
        {**SMS, "text": "HELP \ud800"},
        writes=REPLY,
        inbound={"body": "HELP \ufffd", "action": "help"},
    ),
    Case("NUL in the text is dropped", "inbound", {**SMS, "text": "HE\x00LP"}, writes=REPLY, inbound={"body": "HELP"}),
    *[
        Case(f"NUL in {name}", "inbound", {**SMS, name: SMS[name] + "\x00"}, 400, NOTHING, field=name)
        for name in ("id", "from", "to")
    ],
    *[
        Case(f"{name} longer than its column", "inbound", {**SMS, name: "7" * 256}, 400, NOTHING, field=name)
        for name in ("id", "from", "to")
    ],
    Case("NUL in a report's id", "status", {"id": "up-\x00", "stat": "DELIVRD"}, 400, NOTHING, field="id", status=111),
    Case("NUL in err", "status", {"id": UPSTREAM_ID, "stat": "UNDELIV", "err": "\x00"}, 400, NOTHING, field="err"),
    Case("a report's stat too long", "status", {"id": UPSTREAM_ID, "stat": "X" * 300}, 400, NOTHING, field="stat"),
    Case(
        "an array of one report",
        "status",
        [{"id": UPSTREAM_ID, "stat": "DELIVRD"}],
        writes={"MessageEvent": 1},
        status=201,
    ),
    Case(
        "an array: a known message and one not known yet",
        "status",
        [{"id": UPSTREAM_ID, "stat": "DELIVRD"}, {"id": "later-1", "stat": "DELIVRD"}],
        writes={"MessageEvent": 1, "PendingReport": 1},
        status=201,
    ),
    Case(
        "an array reporting one message twice, applied in order",
        "status",
        [{"id": UPSTREAM_ID, "stat": "ACCEPTD"}, {"id": UPSTREAM_ID, "stat": "DELIVRD"}],
        writes={"MessageEvent": 2},
        status=201,
    ),
    Case(
        "an array with a bad report applies none",
        "status",
        [{"id": UPSTREAM_ID, "stat": "DELIVRD"}, {"stat": "DELIVRD"}],
        400,
        NOTHING,
        field="[1].id",
        status=111,
    ),
    Case("an array holding a string", "status", ["DELIVRD"], 400, NOTHING, field="[0]", status=111),
    Case("an empty array", "status", [], 400, NOTHING, status=111),
    Case(
        "an array of more than 1,000 reports",
        "status",
        [{"id": f"up-{n}", "stat": "DELIVRD"} for n in range(1001)],
        400,
        NOTHING,
        status=111,
    ),
]


@pytest.fixture
def carrier(make_account, make_carrier, make_number):
    gateway = make_carrier("generic", name="gw")
    make_number(make_account(name="Shop"), gateway, NUMBER)
    return gateway


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_generic_webhooks(client, carrier, case):
    run(client, carrier, case, signer)


def test_a_retried_inbound_is_answered_the_same_and_stored_once(client, carrier):
    run(client, carrier, CASES[0], signer)
    run(client, carrier, Case("retry", "inbound", SMS, writes={}), signer)


def test_unknown_carrier(client, carrier):
    check_unknown_carrier(client)


@pytest.mark.parametrize("name", ["a%00b", "%ED%A0%80", "x" * 300])
def test_a_carrier_name_that_cannot_exist_is_404(client, carrier, name):
    response = client.post(f"/webhooks/{name}/inbound", data=b"{}")
    assert (response.status_code, response.json["error"]["code"]) == (404, "not_found")
