"""The keyword router as a table: text in → action, reply and rows out (SPEC §4), through the real
inbound path: the inbound row, its effects and the reply are written in one transaction."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

import pytest

from bot.carriers import InboundSms
from bot.pipeline.inbound import receive
from bot.pipeline.statuses import Status
from keywords.optin import CONFIRMATION as OPT_IN_REPLY
from keywords.optout import CONFIRMATION as OPT_OUT_REPLY
from keywords.save import USAGE
from models import (
    BlockEntry,
    ConsentEvent,
    Contact,
    Group,
    GroupMember,
    InboundMessage,
    Keyword,
    OutboundMessage,
    db,
)

PHONE, NUMBER = "+46731234567", "+46700000001"
ids = itertools.count(1)
UNSUBSCRIBED = OPT_OUT_REPLY.format(account="Shop")
SUBSCRIBED = OPT_IN_REPLY.format(account="Shop")


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    account = make_account(name="Shop")
    number = make_number(account, make_carrier("generic"), NUMBER)
    Keyword.create(
        number=number,
        word="join",
        aliases=["gå med"],
        action="subscribe",
        group_name="offers",
        reply="Welcome {first_name}!",
    )
    Keyword.create(number=number, word="leave", action="unsubscribe", group_name="offers")
    Keyword.create(number=number, word="price", action="reply", reply="{first_name}, prices for {args}: {oops}")
    return number


def text(carrier, body: str, *, carrier_replied: bool = False) -> tuple[InboundMessage, list[str]]:
    before = OutboundMessage.select().count()
    inbound = receive(carrier, InboundSms(f"m{next(ids)}", PHONE, NUMBER, body, carrier_replied=carrier_replied))
    replies = OutboundMessage.select().order_by(OutboundMessage.id).offset(before)
    return inbound, [reply.body for reply in replies]


def blocked() -> bool:
    return BlockEntry.select().where(BlockEntry.phone == PHONE).exists()


def groups_of_sender() -> list[str]:
    contact = Contact.get_or_none(Contact.phone == PHONE)
    if contact is None:
        return []
    return sorted(g.name for g in Group.select().join(GroupMember).where(GroupMember.contact == contact))


@dataclass
class Case:
    body: str
    action: str
    replies: list[str]
    blocked_before: bool = False
    blocked_after: bool | None = None
    number: dict = field(default_factory=dict)


OPT_OUT_WORDS = [
    "STOP",
    "stop",
    "Stop.",
    "STOPALL",
    "UNSUBSCRIBE",
    "cancel",
    "END",
    "quit",
    "OPTOUT",
    "opt out",
    "OPT-OUT",
    "revoke",
    "STOPP",
    "Avsluta",
    "stop please",
    "STOP ALL",
    "  ¡stop!  ",
]

CASES = {
    **{f"opt-out {w!r}": Case(w, "opt-out", [UNSUBSCRIBED], blocked_after=True) for w in OPT_OUT_WORDS},
    "stop when already blocked: no second confirmation": Case("STOP", "opt-out", [], True, True),
    "stop with STOP switched off falls through": Case(
        "STOP", "", [], number={"stop_enabled": False}, blocked_after=False
    ),
    "start lifts the block": Case("START", "opt-in", [SUBSCRIBED], True, False),
    "unstop lifts the block": Case("unstop", "opt-in", [SUBSCRIBED], True, False),
    "yes while blocked opts in": Case("Yes", "opt-in", [SUBSCRIBED], True, False),
    "yes when not blocked is nothing": Case("YES", "", []),
    "help default": Case(
        "HELP", "help", ["Shop. Text SAVE First Last Group to be saved as a contact. Reply STOP to opt out."]
    ),
    "info with the number's help text": Case(
        "info", "help", ["Call us on 08-123."], number={"help_text": "Call us on 08-123."}
    ),
    "hjälp": Case("HJÄLP", "help", ["Shop. Reply STOP to opt out."], number={"save_enabled": False}),
    "help to a blocked sender is rejected by the pipeline": Case(
        "HELP",
        "help",
        ["Shop. Text SAVE First Last Group to be saved as a contact. Reply STOP to opt out."],
        True,
        True,
    ),
    "save alone": Case("SAVE", "save", [USAGE]),
    "save first name": Case("SAVE Anna", "save", ["Saved Anna."]),
    "save first and last": Case("save Anna Berg", "save", ["Saved Anna Berg."]),
    "save with group": Case("SAVE Niklas Niklasson customers", "save", ["Saved Niklas Niklasson in customers."]),
    "save middle words are the last name": Case(
        "SAVE Anna von der Berg vip", "save", ["Saved Anna von der Berg in vip."]
    ),
    "save with quotes": Case(
        'SAVE "Anna Maria" Berg "VIP customers"', "save", ["Saved Anna Maria Berg in VIP customers."]
    ),
    "spara": Case("SPARA Åsa Öberg kunder", "save", ["Saved Åsa Öberg in kunder."]),
    "save switched off": Case("SAVE Anna", "", [], number={"save_enabled": False}),
    "custom subscribe": Case("join", "subscribe", ["Welcome !"]),
    "custom alias of two words": Case("Gå med", "subscribe", ["Welcome !"]),
    "custom unsubscribe": Case("LEAVE", "unsubscribe", ["You left offers."]),
    "custom reply template keeps unknown placeholders": Case(
        "PRICE shoes and hats", "reply", [", prices for shoes and hats: {oops}"]
    ),
    "near miss": Case("joim", "did-you-mean", ["Did you mean JOIN?"]),
    "joined is a near miss, not JOIN": Case("joined", "did-you-mean", ["Did you mean JOIN?"]),
    "a sentence gets no did-you-mean": Case("I would like to joim your club", "", []),
    "default reply": Case(
        "what is this",
        "default-reply",
        ["Thanks, we read everything."],
        number={"default_reply": "Thanks, we read everything."},
    ),
    "empty body without default reply": Case("", "", []),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_router_table(shop, case: Case):
    for name, value in case.number.items():
        setattr(shop, name, value)
    shop.save()
    if case.blocked_before:
        BlockEntry.create(account=shop.account, phone=PHONE, source="keyword")
    inbound, replies = text(shop.carrier, case.body)
    assert inbound.action == case.action
    assert inbound.number_id == shop.id
    assert replies == case.replies
    if case.blocked_after is not None:
        assert blocked() == case.blocked_after


def test_stop_confirmation_is_the_only_message_and_passes_the_block(shop):
    text(shop.carrier, "STOP")
    confirmation = OutboundMessage.get()
    assert confirmation.status == Status.QUEUED
    _, replies = text(shop.carrier, "HELP")
    assert OutboundMessage.get(OutboundMessage.body == replies[0]).status == Status.RECIPIENT_REJECTED


def test_carrier_that_already_replied_to_stop_gets_no_second_confirmation(shop):
    inbound, replies = text(shop.carrier, "STOP", carrier_replied=True)
    assert (inbound.action, replies, blocked()) == ("opt-out", [], True)


def test_save_updates_names_and_keeps_other_groups(shop):
    text(shop.carrier, "SAVE Anna Berg vip")
    text(shop.carrier, "join")
    text(shop.carrier, "SAVE Anna Lind VIP")  # same group, other case: matched, not duplicated
    contact = Contact.get(Contact.phone == PHONE)
    assert (contact.first_name, contact.last_name) == ("Anna", "Lind")
    assert groups_of_sender() == ["offers", "vip"]
    assert Group.select().count() == 2


def test_subscribe_reply_uses_the_saved_name(shop):
    text(shop.carrier, "SAVE Anna Berg")
    _, replies = text(shop.carrier, "JOIN")
    assert replies == ["Welcome Anna!"]
    assert groups_of_sender() == ["offers"]


def test_reply_limit_per_phone_and_number(app, shop):
    app.config["AUTO_REPLY_LIMIT_PER_HOUR"] = 2
    outcomes = [text(shop.carrier, "HELP")[0].outcome for _ in range(3)]
    assert outcomes == ["answered", "answered", "reply limit reached"]
    assert OutboundMessage.select().count() == 2


def test_short_code_and_alphanumeric_senders_are_never_answered(shop):
    for n, sender in enumerate(["72404", "Klarna"]):
        inbound = receive(shop.carrier, InboundSms(f"sc{n}", sender, NUMBER, "HELP"))
        assert (inbound.sender, inbound.action) == (sender, "")
    assert OutboundMessage.select().count() == 0


def test_unknown_number_is_stored_unrouted(shop):
    inbound = receive(shop.carrier, InboundSms("x1", PHONE, "+46709999999", "HELP"))
    assert (inbound.number, inbound.outcome) == (None, "unrouted")
    assert OutboundMessage.select().count() == 0


@pytest.mark.parametrize(
    "body, outcome, replies",
    [
        ("SAVE Anna Berg vip", "saved", 1),  # stored when the reply needs its id, routed on
        ("hello there", "no action", 0),  # stored once, routed
        ("STOP", "blocked", 1),  # stored when the consent ledger needs its id
    ],
)
def test_a_carrier_retry_does_nothing_twice(shop, body, outcome, replies):
    first = receive(shop.carrier, InboundSms("dup", PHONE, NUMBER, body))
    again = receive(shop.carrier, InboundSms("dup", PHONE, NUMBER, body))
    assert first.id == again.id and InboundMessage.get().outcome == outcome
    assert (InboundMessage.select().count(), OutboundMessage.select().count()) == (1, replies)
    assert ConsentEvent.select().count() == (body == "STOP")


@pytest.mark.parametrize("body", ["STOP", "join", "hello there"])
def test_a_retry_racing_the_first_delivery_waits_for_it_and_keeps_nothing(app, shop, body):
    """The retry stores its row before it acts, and that insert waits for the first delivery's commit; it
    then finds the key taken and rolls back whatever it routed: one row, one reply, one of each effect."""
    held, release, found = threading.Event(), threading.Event(), {}

    def deliver(name: str, hold: bool) -> None:
        # the first delivery's transaction stays open until `release`
        with app.app_context(), db.connection_context(), db.atomic():
            found[name] = receive(shop.carrier, InboundSms("race", PHONE, NUMBER, body)).id
            if hold:
                held.set()
                release.wait(10)

    first = threading.Thread(target=deliver, args=("first", True))
    first.start()
    assert held.wait(10)
    retry = threading.Thread(target=deliver, args=("retry", False))
    retry.start()
    retry.join(0.5)
    assert retry.is_alive()  # waiting for the first delivery
    release.set()
    first.join(10)
    retry.join(10)
    db.connect(reuse_if_open=True)
    assert found["first"] == found["retry"] == InboundMessage.get().id
    effects = (BlockEntry.select().count(), ConsentEvent.select().count(), GroupMember.select().count())
    assert effects == {"STOP": (1, 1, 0), "join": (0, 0, 1), "hello there": (0, 0, 0)}[body]
    assert OutboundMessage.select().count() == (body != "hello there")
