"""Senders: a numeric `from` must be one of the account's own virtual numbers, else 407 InvalidSender."""

from __future__ import annotations

import pytest

from bot.apikeys import create_key
from bot.carriers import InboundSms
from bot.pipeline.batches import fan_out
from bot.pipeline.inbound import receive
from bot.pipeline.sending import Send, send_to_group
from bot.pipeline.statuses import Status
from models import Account, Contact, Group, GroupMember, MessageEvent, OutboundMessage

MOBILE = "+46731234567"
MINE, THEIRS = "+46700000001", "+46700000002"


@pytest.fixture
def shops(make_account, make_carrier, make_number):
    carrier = make_carrier("generic", url="http://127.0.0.1:9/sms")
    mine = make_account(name="Mine", balance=1000, price_per_segment=35)
    theirs = make_account(name="Theirs", balance=1000, price_per_segment=35)
    make_number(mine, carrier, MINE)
    make_number(theirs, carrier, THEIRS)
    return mine, theirs


def send(client, account, sender: str) -> dict:
    headers = {"Authorization": f"Bearer {create_key(account, 'user')[1]}"}
    answer = client.post("/api/v1/messages", json={"to": MOBILE, "from": sender, "text": "Hi"}, headers=headers)
    assert answer.status_code == 202, answer.json
    return answer.json["messages"][0]


@pytest.mark.parametrize(
    ("sender", "status", "stored"),
    [
        (MINE, Status.QUEUED, MINE),
        ("0700000001", Status.QUEUED, MINE),  # national form of the account's own number
        ("46700000001", Status.QUEUED, MINE),  # without the +
        ("Shop", Status.QUEUED, "Shop"),  # alphanumeric: not a number anyone owns
        (THEIRS, Status.INVALID_SENDER, THEIRS),  # another account's number
        ("+46700000009", Status.INVALID_SENDER, "+46700000009"),  # nobody's number
        ("72345", Status.INVALID_SENDER, "72345"),  # a short code the account does not have
    ],
)
def test_a_numeric_sender_must_be_the_accounts_own_number(client, shops, sender, status, stored):
    mine, _ = shops
    message = send(client, mine, sender)
    assert (message["status"], message["from"]) == (status, stored)
    if status == Status.INVALID_SENDER:
        assert [e["code"] for e in message["events"]] == [101, 407]
        assert "not one of this account's virtual numbers" in message["events"][-1]["detail"]


def test_another_accounts_number_is_refused_and_costs_nothing(client, shops):
    _mine, theirs = shops
    message = send(client, theirs, MINE)
    assert message["status"] == Status.INVALID_SENDER
    assert Account.get_by_id(theirs.id).balance == 1000
    assert OutboundMessage.get_by_id(message["id"]).carrier is not None  # routed by its own first number


def test_a_group_send_from_another_accounts_number_is_refused_for_every_member(shops):
    _mine, theirs = shops
    group = Group.create(account=theirs, name="vip", name_key="vip")
    for phone in (MOBILE, "+46731234568"):
        GroupMember.create(group=group, contact=Contact.create(account=theirs, phone=phone))
    fan_out(send_to_group(Send(theirs, MINE, "Hi"), group).id)
    rows = list(OutboundMessage.select())
    assert [row.status for row in rows] == [Status.INVALID_SENDER, Status.INVALID_SENDER]
    assert MessageEvent.select().where(MessageEvent.code == Status.FUNDED).count() == 0


def test_router_replies_come_from_the_number_itself(shops):
    mine, _ = shops
    carrier = mine.numbers.get().carrier
    receive(carrier, InboundSms("in-1", MOBILE, MINE, "HELP"))
    reply = OutboundMessage.get()
    assert (reply.sender, reply.status) == (MINE, Status.QUEUED)
