"""Consent: only the phone lifts its own opt-out (the business gets 409), and opt-out/opt-in
confirmations to one phone are capped at 3 per 24 h, through the real webhook and router."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest

from bot.apikeys import create_key
from bot.signing import HEADER, sign
from keywords.optin import CONFIRMATION as OPT_IN
from keywords.optout import CONFIRMATION as OPT_OUT
from models import BlockEntry, InboundMessage, OutboundMessage, VirtualNumber, utcnow

NUMBER, PHONE = "+46700000001", "+46731234567"
ids = itertools.count(1)


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    return make_number(make_account(name="Shop", balance=10_000, price_per_segment=1), make_carrier("generic"), NUMBER)


def text(client, number: VirtualNumber, body: str) -> tuple[InboundMessage, list[str]]:
    """Text the number through the signed generic webhook; returns the inbound row and the new replies."""
    before = OutboundMessage.select().count()
    raw = json.dumps({"id": f"c{next(ids)}", "from": PHONE, "to": NUMBER, "text": body}).encode()
    headers = {"Content-Type": "application/json", HEADER: sign(number.carrier.secret, raw)}
    answer = client.post(f"/webhooks/{number.carrier.name}/inbound", data=raw, headers=headers)
    assert answer.status_code == 200, answer.json
    replies = [m.body for m in OutboundMessage.select().order_by(OutboundMessage.id).offset(before)]
    return InboundMessage.select().order_by(InboundMessage.id.desc()).get(), replies


def blocked() -> bool:
    return BlockEntry.select().where(BlockEntry.phone == PHONE).exists()


def unblock(client, number: VirtualNumber, phone: str = PHONE):
    headers = {"Authorization": f"Bearer {create_key(number.account, 'user')[1]}"}
    return client.delete(f"/api/v1/blocklist/{phone}", headers=headers)


@pytest.mark.parametrize("source", ["keyword", "link", "carrier"])
def test_the_business_cannot_lift_a_phones_own_opt_out(client, shop, source):
    BlockEntry.create(account=shop.account, phone=PHONE, source=source)
    answer = unblock(client, shop)
    assert answer.status_code == 409
    assert answer.json["error"]["code"] == "opted_out"
    assert "only the phone can lift it by texting START" in answer.json["error"]["message"]
    assert blocked()


@pytest.mark.parametrize("source", ["api", "manual", "import"])
def test_the_business_lifts_the_blocks_it_added(client, shop, source):
    BlockEntry.create(account=shop.account, phone=PHONE, source=source)
    assert unblock(client, shop).status_code == 204
    assert not blocked()
    assert unblock(client, shop).status_code == 404


def test_stop_by_sms_then_delete_is_409_and_start_lifts_it(client, shop):
    _, replies = text(client, shop, "STOP")
    assert replies == [OPT_OUT.format(account="Shop")]
    assert unblock(client, shop).status_code == 409
    assert blocked()
    _, replies = text(client, shop, "START")
    assert replies == [OPT_IN.format(account="Shop")]
    assert not blocked()


def test_confirmations_are_capped_at_three_per_day_but_the_list_always_changes(client, shop):
    cycle = ["STOP", "START", "STOP", "START", "STOP", "START"]
    seen = []
    for body in cycle:
        inbound, replies = text(client, shop, body)
        seen.append((body, blocked(), len(replies), inbound.outcome))
    assert seen == [
        ("STOP", True, 1, "blocked"),
        ("START", False, 1, "unblocked"),
        ("STOP", True, 1, "blocked"),
        ("START", False, 0, "unblocked; no confirmation (3 sent in 24 h)"),
        ("STOP", True, 0, "blocked; no confirmation (3 sent in 24 h)"),
        ("START", False, 0, "unblocked; no confirmation (3 sent in 24 h)"),
    ]
    assert OutboundMessage.select().count() == 3


def test_the_cap_is_per_24_hours_and_per_phone(client, shop):
    for body in ["STOP", "START", "STOP"]:
        text(client, shop, body)
    OutboundMessage.update(created_at=utcnow() - timedelta(hours=25)).execute()
    inbound, replies = text(client, shop, "START")
    assert (inbound.outcome, replies) == ("unblocked", [OPT_IN.format(account="Shop")])
    other = "+46731234568"
    raw = json.dumps({"id": "other-1", "from": other, "to": NUMBER, "text": "STOP"}).encode()
    headers = {"Content-Type": "application/json", HEADER: sign(shop.carrier.secret, raw)}
    client.post(f"/webhooks/{shop.carrier.name}/inbound", data=raw, headers=headers)
    assert OutboundMessage.select().where(OutboundMessage.recipient == other).count() == 1
