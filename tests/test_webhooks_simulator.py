"""simulator carrier: no network; it records what it sends and reports back through our status webhook."""

from __future__ import annotations

import requests

from bot.pipeline.statuses import Status
from models import MessageEvent, OutboundMessage
from webhooks.simulator import fail_recipient, sent_messages

PHONE, NUMBER = "+46731234567", "+46700000001"


def text_the_bot(base: str, body: str, message_id: str) -> int:
    payload = {"id": message_id, "from": PHONE, "to": NUMBER, "text": body}
    return requests.post(f"{base}/webhooks/sim/inbound", json=payload, timeout=5).status_code


def codes(message: OutboundMessage) -> list[int]:
    return [e.code for e in message.events.order_by(MessageEvent.id)]


def test_reply_is_sent_and_tracked_to_the_handset(
    live_server, run_worker, make_account, make_carrier, make_number, caplog
):
    make_number(make_account(name="Demo"), make_carrier("simulator", name="sim", secret=""), NUMBER)
    assert text_the_bot(live_server, "SAVE Anna Berg vip", "c1") == 200
    caplog.set_level("INFO", logger="smsbot.simulator")
    run_worker()
    reply = OutboundMessage.get()
    assert sent_messages("sim") == [
        {
            "id": reply.upstream_id,
            "message_id": reply.id,
            "from": NUMBER,
            "to": PHONE,
            "text": "Saved Anna Berg in vip.",
        }
    ]
    assert codes(reply) == [101, 103, 102, 110, 111, 112, 113, 201]
    assert reply.status == Status.DELIVERED_TO_HANDSET
    assert "to +*******4567: Saved Anna Berg in vip." in caplog.text
    assert PHONE not in caplog.text


def test_a_recipient_made_to_fail_ends_with_the_chosen_code(
    live_server, run_worker, make_account, make_carrier, make_number
):
    make_number(make_account(name="Demo"), make_carrier("simulator", name="sim", secret=""), NUMBER)
    fail_recipient("sim", PHONE, Status.UNKNOWN_SUBSCRIBER)
    assert text_the_bot(live_server, "HELP", "c2") == 200
    run_worker()
    reply = OutboundMessage.get()
    assert reply.status == Status.UNKNOWN_SUBSCRIBER
    assert codes(reply)[-3:] == [112, 113, 501]


def test_with_a_secret_the_simulator_checks_signatures(live_server, make_account, make_carrier, make_number):
    make_number(make_account(name="Demo"), make_carrier("simulator", name="sim", secret="s3cret"), NUMBER)
    assert text_the_bot(live_server, "HELP", "c3") == 401
