"""Long inbound SMS in parts (through the Vonage webhook): keyed by sender and the parts' own ids, expiring."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.pipeline.jobs import sweep
from models import InboundMessage, InboundPart, utcnow
from tests.carrier_cases import NUMBER, PHONE
from tests.test_webhooks_vonage import signer

OTHER_PHONE = "+46739876543"


@pytest.fixture
def carrier(make_account, make_carrier, make_number):
    vonage = make_carrier("vonage", name="vg", signature_secret="sig-secret", signature_method="md5hash")
    make_number(make_account(name="Shop"), vonage, NUMBER)
    return vonage


def post_part(client, carrier, message_id, text, part, total, ref="42", sender=PHONE):
    payload = {
        "msisdn": sender[1:],
        "to": NUMBER[1:],
        "messageId": message_id,
        "text": text,
        "type": "text",
        "concat": "true",
        "concat-ref": ref,
        "concat-total": str(total),
        "concat-part": str(part),
    }
    body, _ = signer(carrier, "", payload, "signed")
    response = client.post("/webhooks/vg/inbound", data=body)
    assert response.status_code == 200, response.get_data(as_text=True)


def bodies() -> list[tuple[str, str]]:
    return [(m.sender, m.body) for m in InboundMessage.select().order_by(InboundMessage.id)]


def test_a_second_long_sms_reusing_the_reference_is_assembled(client, carrier):
    post_part(client, carrier, "a1", "first ", 1, 2)
    post_part(client, carrier, "a2", "message", 2, 2)
    post_part(client, carrier, "b1", "second ", 1, 2)
    post_part(client, carrier, "b2", "message", 2, 2)
    assert bodies() == [(PHONE, "first message"), (PHONE, "second message")]
    assert len({m.carrier_message_id for m in InboundMessage.select()}) == 2


def test_two_senders_with_one_reference_do_not_mix(client, carrier):
    post_part(client, carrier, "a1", "anna ", 1, 2)
    post_part(client, carrier, "b1", "bo ", 1, 2, sender=OTHER_PHONE)
    post_part(client, carrier, "b2", "here", 2, 2, sender=OTHER_PHONE)
    post_part(client, carrier, "a2", "here", 2, 2)
    assert bodies() == [(OTHER_PHONE, "bo here"), (PHONE, "anna here")]


def test_a_retried_part_after_assembly_does_not_start_a_message(client, carrier):
    post_part(client, carrier, "a1", "first ", 1, 2)
    post_part(client, carrier, "a2", "message", 2, 2)
    post_part(client, carrier, "a2", "message", 2, 2)
    post_part(client, carrier, "b1", "second ", 1, 2)
    post_part(client, carrier, "b2", "message", 2, 2)
    assert bodies() == [(PHONE, "first message"), (PHONE, "second message")]


def test_a_stale_part_is_dropped_when_its_reference_comes_again(client, carrier, app):
    post_part(client, carrier, "old2", "lost tail", 2, 2)
    InboundPart.update(received_at=utcnow() - timedelta(minutes=app.config["CONCAT_TTL_MINUTES"] + 1)).execute()
    post_part(client, carrier, "new1", "fresh ", 1, 2)
    assert bodies() == []
    post_part(client, carrier, "new2", "start", 2, 2)
    assert bodies() == [(PHONE, "fresh start")]


def test_a_part_number_seen_again_starts_a_new_message(client, carrier):
    post_part(client, carrier, "old1", "abandoned ", 1, 3)
    post_part(client, carrier, "new1", "new ", 1, 3)
    post_part(client, carrier, "new2", "whole ", 2, 3)
    post_part(client, carrier, "new3", "message", 3, 3)
    assert bodies() == [(PHONE, "new whole message")]


def test_the_sweep_drops_expired_parts(client, carrier, app):
    post_part(client, carrier, "a1", "never finished", 1, 2)
    post_part(client, carrier, "c1", "recent", 1, 2, ref="43")
    InboundPart.update(received_at=utcnow() - timedelta(minutes=61)).where(
        InboundPart.carrier_message_id == "a1"
    ).execute()
    sweep()
    assert [p.carrier_message_id for p in InboundPart.select()] == ["c1"]
