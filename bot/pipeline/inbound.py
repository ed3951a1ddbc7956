"""Inbound SMS: store idempotently, reassemble parts, route to the keyword router in one transaction.

The router is injected by the app factory (`app.extensions["smsbot.router"]`), so this service never
imports `keywords/`. Everything an inbound causes (contact, group, block entry, reply) is written in the
same transaction as the inbound row; reply send jobs are enqueued after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property, lru_cache

from flask import current_app
from peewee import fn

from bot import cache, outbox, phones
from bot.carriers import InboundSms
from bot.db import last_statement
from bot.pipeline.concat import reassemble
from bot.pipeline.outbound import Draft, accept
from bot.prepared import Prepared
from models import (
    Account,
    Carrier,
    InboundMessage,
    Keyword,
    OutboundMessage,
    VirtualNumber,
    db,
    utcnow,
)

log = logging.getLogger("smsbot.inbound")
COLUMN = 255  # the keyword, action and outcome columns: a 400-character first word is still one keyword


@dataclass
class Conversation:
    """One routed inbound as the keyword handlers see it, with the services they may use."""

    inbound: InboundMessage
    number: VirtualNumber
    phone: str
    text: str
    carrier_replied: bool = False
    replies: list[OutboundMessage] = field(default_factory=list)
    reply_limited: bool = False

    @property
    def message(self) -> InboundMessage:
        """The inbound row, stored now if it is not yet: whoever asks for it keeps a reference to it (a
        reply, an opt-out's evidence, a forward)."""
        return self.store()

    def store(self) -> InboundMessage:
        """Store the inbound row now (`claim`). A handler calls it before it writes anything: a concurrent
        retry of the same message then waits at this insert for the first delivery's commit and is rolled
        back, instead of racing it on the contact, group or block-list rows."""
        return claim(self.inbound)

    def reply(self, body: str, *, compliance: bool = False) -> OutboundMessage | None:
        """Send an automatic reply through the pipeline, unless the hourly loop limit is reached.

        `compliance` marks an opt-out or opt-in confirmation: it passes the block list and the limit.
        """
        if not body.strip():
            return None
        if not compliance and self.replies_last_hour() >= current_app.config["AUTO_REPLY_LIMIT_PER_HOUR"]:
            self.reply_limited = True
            log.warning("reply limit reached for %s on %s", phones.mask(self.phone), self.number.number)
            return None
        message = accept(
            Draft(
                account=self.account,
                sender=self.number.number,
                recipient=self.phone,
                body=body,
                carrier=self.number.carrier,
                reply_to=self.message,
                compliance=compliance,
                sender_number=self.number,
            )
        )
        self.replies.append(message)
        return message

    @cached_property
    def account(self) -> Account:
        """The number's account, read when a handler first needs it (a message that matches nothing never
        does); handlers that read `number.account` get the same row."""
        account = ACCOUNT.first(Account, self.number.account_id)
        self.number.account = account
        self.number._dirty.discard("account")
        return account

    @cached_property
    def keywords(self) -> list[Keyword]:
        """The number's custom keywords (bot/cache.py), read once per message however many handlers look."""
        return cache.keywords_of(self.number.id)

    def replies_last_hour(self) -> int:
        since = utcnow() - timedelta(hours=1)
        return REPLIES_SINCE.execute(self.phone, self.number.number, since).fetchone()[0]


@dataclass(frozen=True)
class Outcome:
    keyword: str = ""
    action: str = ""
    outcome: str = ""


Router = Callable[[Conversation], Outcome]

ACCOUNT = Prepared(lambda account_id: Account.select().where(Account.id == account_id), [Account.id])
# The automatic replies one phone had from one number since a moment (the hourly loop limit).
REPLIES_SINCE = Prepared(
    lambda phone, number, since: OutboundMessage.select(fn.COUNT(OutboundMessage.id)).where(
        (OutboundMessage.recipient == phone)
        & (OutboundMessage.sender == number)
        & (OutboundMessage.reply_to.is_null(False))
        & (OutboundMessage.created_at >= since)
    ),
    [OutboundMessage.recipient, OutboundMessage.sender, OutboundMessage.created_at],
)

STORED_COLUMNS = ("carrier", "carrier_message_id", "sender", "recipient", "body", "received_at")
ROUTED_COLUMNS = ("number", "keyword", "action", "outcome")
COLUMNS = STORED_COLUMNS + ROUTED_COLUMNS
# One statement claims the (carrier, carrier message id) key: a retry inserts nothing, without the
# savepoint a failed INSERT would need on PostgreSQL.
CLAIM = Prepared(
    lambda *values: (
        InboundMessage.insert(dict(zip(COLUMNS, values, strict=True))).on_conflict_ignore().returning(InboundMessage.id)
    ),
    [getattr(InboundMessage, name) for name in COLUMNS],
)
RECORD_ROUTE = Prepared(
    lambda *values: InboundMessage.update(dict(zip(ROUTED_COLUMNS, values[:-1], strict=True))).where(
        InboundMessage.id == values[-1]
    ),
    [*(getattr(InboundMessage, name) for name in ROUTED_COLUMNS), InboundMessage.id],
)


class AlreadyStored(Exception):
    """The carrier sent this message before: what routing it again did is rolled back."""


def receive(carrier: Carrier, sms: InboundSms) -> InboundMessage | None:
    """Store and route one inbound SMS; a carrier's retry of a stored message does nothing.

    Returns the inbound row, or None for a part of a concatenated message still waiting for the rest.
    The row is inserted once, routed: after routing, or when a handler first needs its id (`claim`). A
    retry finds the key taken at that insert, and the whole transaction, with whatever routing it again
    did, is rolled back; it cannot commit before the first delivery has, since the insert waits for it.
    """
    try:
        with db.atomic():
            if sms.part is not None:
                sms = reassemble(carrier, sms)  # type: ignore[assignment]
                if sms is None:
                    return None
            message = InboundMessage(
                carrier=carrier,
                carrier_message_id=sms.message_id,
                sender=normalised_sender(sms.sender),
                recipient=normalised_recipient(sms.recipient),
                body=sms.text,
                received_at=sms.received_at or utcnow(),
            )
            route(message, sms.carrier_replied)
        return message
    except AlreadyStored:
        return InboundMessage.get(
            (InboundMessage.carrier == carrier) & (InboundMessage.carrier_message_id == sms.message_id)
        )


def claim(message: InboundMessage, last: bool = False) -> InboundMessage:
    """`message` stored with what is known of its route so far, unless it is stored already.

    `last`: nothing else of the transaction follows. An inbound whose routing wrote nothing is then one
    statement that commits itself on PostgreSQL (bot/db.py `last_statement`): one round trip in all.
    """
    if message.id is None:
        with last_statement(last):
            stored = CLAIM.execute(*(getattr(message, name) for name in STORED_COLUMNS), *routed(message)).fetchall()
        if not stored:
            raise AlreadyStored
        message.id = stored[0][0]
        message._dirty.clear()
    return message


def routed(message: InboundMessage) -> tuple[object, ...]:
    return (message.number_id, message.keyword, message.action, message.outcome)


def route(message: InboundMessage, carrier_replied: bool) -> None:
    number = cache.number_for(message.recipient)
    if number is None:
        message.outcome = "unrouted"
    elif number.carrier_id != message.carrier_id:
        message.outcome = f"unrouted: {number.number} is served by another carrier"
        number = None
    elif phones.sender_kind(message.sender) != "e164":
        message.number = number
        message.outcome = "not answered: short code or alphanumeric sender"
    else:
        message.number = number
        conversation = Conversation(
            inbound=message,
            number=number,
            phone=message.sender,
            text=message.body,
            carrier_replied=carrier_replied,
        )
        router: Router = current_app.extensions["smsbot.router"]
        outcome = router(conversation)
        message.keyword, message.action = outcome.keyword[:COLUMN], outcome.action[:COLUMN]
        message.outcome = "reply limit reached" if conversation.reply_limited else outcome.outcome[:COLUMN]
    copied = number if number is not None and (number.email_copy or number.forward_url) else None
    last = copied is None  # nothing else of the transaction follows: its COMMIT rides on this statement
    if message.id is None:
        claim(message, last=last)
    else:
        with last_statement(last, results=False):
            RECORD_ROUTE.execute(*routed(message), message.id)
    if copied is not None:
        copy_and_forward(message, copied)
    log.info(
        "inbound %s from %s to %s: %s",
        message.id,
        phones.mask(message.sender),
        message.recipient,
        message.outcome or message.action or "no action",
    )


def normalised_sender(raw: str) -> str:
    """E.164 for a phone number; a short code or alphanumeric sender is kept as it came."""
    return sender_e164(raw, current_app.config["DEFAULT_REGION"])


def normalised_recipient(raw: str) -> str:
    return e164_or_raw(raw, current_app.config["DEFAULT_REGION"])


@lru_cache(maxsize=4096)
def e164_or_raw(raw: str, region: str) -> str:
    """Cached: the same few virtual numbers are every inbound's recipient, and a conversation's sender
    texts again and again (phonenumbers' parse and check are a few per cent of a webhook's CPU). The
    adapters refuse a number longer than 255 characters (webhooks/fields.py), so the cache stays small."""
    try:
        return phones.to_e164(raw, region)
    except phones.PhoneError:
        return raw.strip()


def sender_e164(raw: str, region: str) -> str:
    return e164_or_raw(raw, region) if phones.sender_kind(raw) == "e164" else raw.strip()


def copy_and_forward(message: InboundMessage, number: VirtualNumber) -> None:
    """The number's e-mail copy and business forward of every inbound, as outbox effects of this transaction."""
    if number.email_copy:
        outbox.add("email_copy", inbound=message)
    if number.forward_url:
        forward_later(message, number.forward_url)


def forward_later(message: InboundMessage, url: str, keyword: str = "") -> None:
    """POST the inbound to a business URL (bot/forward.py), an outbox effect done once the transaction commits."""
    outbox.add("forward", inbound=message, url=url, keyword=keyword)


def reply_to_inbound(message: InboundMessage, body: str) -> OutboundMessage | None:
    """Reply to a stored inbound from outside the router (a business bot's answer), with the same limits."""
    number = message.number
    conversation = Conversation(inbound=message, number=number, phone=message.sender, text=message.body)
    return conversation.reply(body)
