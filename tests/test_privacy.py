"""GDPR erase of a phone: survey answers, conversation state and waiting message parts go too; the
block entry stays; another phone and another account keep theirs."""

from __future__ import annotations

import itertools

import pytest

from bot.apikeys import create_key
from bot.carriers import ConcatPart as PartInfo
from bot.carriers import InboundSms
from bot.pipeline.inbound import receive
from models import BlockEntry, Contact, Conversation, InboundMessage, InboundPart, Keyword

NUMBER, OTHER_NUMBER = "+46700000001", "+46700000002"
ANNA, BO = "+46731234567", "+46731234568"
SURVEY = {"start": "city", "steps": {"city": {"ask": "Your city?", "save": "city"}}, "end": "Thanks!"}
ids = itertools.count(1)


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    carrier = make_carrier("generic")
    number = make_number(make_account(name="Shop"), carrier, NUMBER)
    other = make_number(make_account(name="Other"), carrier, OTHER_NUMBER)
    for row in (number, other):
        Keyword.create(number=row, word="poll", action="flow", flow=SURVEY)
    return number, other


def text(number, phone: str, body: str, part: PartInfo | None = None) -> None:
    receive(number.carrier, InboundSms(f"p{next(ids)}", phone, number.number, body, part=part))


def responses(client, number) -> list[dict]:
    headers = {"Authorization": f"Bearer {create_key(number.account, 'viewer')[1]}"}
    answer = client.get(f"/api/v1/numbers/{number.number}/keywords/poll/responses", headers=headers)
    return answer.json["responses"]


def test_erase_removes_survey_answers_conversation_state_and_parts(client, shop):
    number, other = shop
    for phone in (ANNA, BO):
        text(number, phone, "POLL")
        text(number, phone, "Lund")
    text(other, ANNA, "POLL")  # another account's running conversation with the same phone
    text(number, ANNA, "POLL")  # a running one of Anna on the shop's number
    text(number, "0731234567", "first half of a long", PartInfo(reference="r1", number=1, total=2))
    text(number, BO, "Bo's first half", PartInfo(reference="r2", number=1, total=2))
    BlockEntry.create(account=number.account, phone=ANNA, source="keyword")
    assert {r["phone"] for r in responses(client, number)} == {ANNA, BO}

    headers = {"Authorization": f"Bearer {create_key(number.account, 'admin')[1]}"}
    erased = client.delete(f"/api/v1/privacy/{ANNA}", headers=headers)
    assert erased.status_code == 200
    assert (erased.json["conversations"], erased.json["parts"], erased.json["blocked"]) == (2, 1, True)

    assert [r["phone"] for r in responses(client, number)] == [BO]
    assert [r["answers"] for r in responses(client, number)] == [{"city": "Lund"}]
    assert Conversation.select().where(Conversation.phone == ANNA).count() == 1  # the other account's
    assert [p.sender for p in InboundPart.select()] == [BO]
    assert BlockEntry.select().where(BlockEntry.phone == ANNA).exists()
    kept = InboundMessage.select().where(InboundMessage.sender == ANNA, InboundMessage.number == number)
    assert {m.body for m in kept} == {"[erased]"}


def test_erase_of_a_phone_with_a_saved_contact_field(client, shop):
    number, _ = shop
    flow = {"start": "day", "steps": {"day": {"ask": "Day?", "save": "contact.day"}}}
    Keyword.create(number=number, word="visit", action="flow", flow=flow)
    text(number, ANNA, "VISIT")
    text(number, ANNA, "Monday")
    assert Contact.get(Contact.phone == ANNA).fields == {"day": "Monday"}
    headers = {"Authorization": f"Bearer {create_key(number.account, 'admin')[1]}"}
    assert client.delete(f"/api/v1/privacy/{ANNA}", headers=headers).json["contacts"] == 1
    assert Contact.select().count() == 0
    assert Conversation.select().count() == 0
