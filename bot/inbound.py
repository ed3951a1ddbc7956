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
from functools import cached_property

from flask import current_app
from peewee import IntegrityError

from bot import outbox, phones
from bot.carriers import InboundSms
from bot.outbound import Draft, accept
from models import (
    Account,
    Carrier,
    InboundMessage,
    InboundPart,
    Keyword,
    OutboundMessage,
    VirtualNumber,
    db,
    utcnow,
)

log = logging.getLogger("smsbot.inbound")


@dataclass
class Conversation:
    """One routed inbound as the keyword handlers see it, with the services they may use."""

    message: InboundMessage
    number: VirtualNumber
    account: Account
    phone: str
    text: str
    carrier_replied: bool = False
    replies: list[OutboundMessage] = field(default_factory=list)
    reply_limited: bool = False

    def reply(self, body: str, *, compliance: bool = False) -> OutboundMessage | None:
        """Send an automatic reply through the pipeline, unless the hourly loop limit is reached.

        `compliance` marks the one opt-out confirmation: it passes the block list and the limit.
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
            )
        )
        self.replies.append(message)
        return message

    @cached_property
    def keywords(self) -> list[Keyword]:
        """The number's custom keywords, read once per message however many handlers look."""
        return list(Keyword.select().where(Keyword.number == self.number))

    def replies_last_hour(self) -> int:
        since = utcnow() - timedelta(hours=1)
        return (
            OutboundMessage.select()
            .where(
                (OutboundMessage.recipient == self.phone)
                & (OutboundMessage.sender == self.number.number)
                & (OutboundMessage.reply_to.is_null(False))
                & (OutboundMessage.created_at >= since)
            )
            .count()
        )


@dataclass(frozen=True)
class Outcome:
    keyword: str = ""
    action: str = ""
    outcome: str = ""


Router = Callable[[Conversation], Outcome]


def receive(carrier: Carrier, sms: InboundSms) -> InboundMessage | None:
    """Store and route one inbound SMS; a carrier's retry of a stored message does nothing.

    Returns the inbound row, or None for a part of a concatenated message still waiting for the rest.
    """
    with db.atomic():
        if sms.part is not None:
            sms = reassemble(carrier, sms)  # type: ignore[assignment]
            if sms is None:
                return None
        try:
            with db.atomic():
                message = InboundMessage.create(
                    carrier=carrier,
                    carrier_message_id=sms.message_id,
                    sender=normalised_sender(sms.sender),
                    recipient=normalised_recipient(sms.recipient),
                    body=sms.text,
                    received_at=sms.received_at or utcnow(),
                )
        except IntegrityError:
            return InboundMessage.get(
                (InboundMessage.carrier == carrier) & (InboundMessage.carrier_message_id == sms.message_id)
            )
        route(message, sms.carrier_replied)
    return message


def route(message: InboundMessage, carrier_replied: bool) -> None:
    number = (
        VirtualNumber.select(VirtualNumber, Account, Carrier)
        .join_from(VirtualNumber, Account)
        .join_from(VirtualNumber, Carrier)
        .where(VirtualNumber.number == message.recipient)
        .first()
    )
    if number is None:
        message.outcome = "unrouted"
    elif phones.sender_kind(message.sender) != "e164":
        message.number = number
        message.outcome = "not answered: short code or alphanumeric sender"
    else:
        message.number = number
        conversation = Conversation(
            message=message,
            number=number,
            account=number.account,
            phone=message.sender,
            text=message.body,
            carrier_replied=carrier_replied,
        )
        router: Router = current_app.extensions["smsbot.router"]
        outcome = router(conversation)
        message.keyword, message.action = outcome.keyword, outcome.action
        message.outcome = "reply limit reached" if conversation.reply_limited else outcome.outcome
    message.save()
    if number is not None:
        copy_and_forward(message, number)
    log.info(
        "inbound %s from %s to %s: %s",
        message.id,
        phones.mask(message.sender),
        message.recipient,
        message.outcome or message.action or "no action",
    )


def normalised_sender(raw: str) -> str:
    """E.164 for a phone number; a short code or alphanumeric sender is kept as it came."""
    if phones.sender_kind(raw) != "e164":
        return raw.strip()
    try:
        return phones.to_e164(raw, current_app.config["DEFAULT_REGION"])
    except phones.PhoneError:
        return raw.strip()


def normalised_recipient(raw: str) -> str:
    try:
        return phones.to_e164(raw, current_app.config["DEFAULT_REGION"])
    except phones.PhoneError:
        return raw.strip()


def reassemble(carrier: Carrier, sms: InboundSms) -> InboundSms | None:
    """Keep one part of a concatenated SMS; once all parts are in, return the whole message.

    The carrier row is locked first (a no-op on SQLite, whose write transactions are serial), so two
    last parts arriving at once cannot both miss each other.
    """
    assert sms.part is not None
    if db.for_update:
        Carrier.select().where(Carrier.id == carrier.id).for_update().get()
    try:
        with db.atomic():
            InboundPart.create(
                carrier=carrier,
                sender=sms.sender,
                reference=sms.part.reference,
                part=sms.part.number,
                total=sms.part.total,
                carrier_message_id=sms.message_id,
                body=sms.text,
            )
    except IntegrityError:
        return None  # a retried part
    parts = list(
        InboundPart.select()
        .where(
            (InboundPart.carrier == carrier)
            & (InboundPart.sender == sms.sender)
            & (InboundPart.reference == sms.part.reference)
        )
        .order_by(InboundPart.part)
    )
    if len(parts) < sms.part.total:
        return None
    for part in parts:
        part.delete_instance()
    return InboundSms(
        message_id=f"concat:{sms.sender}:{sms.part.reference}",
        sender=sms.sender,
        recipient=sms.recipient,
        text="".join(part.body for part in parts),
        received_at=sms.received_at,
        carrier_replied=sms.carrier_replied,
    )


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
    conversation = Conversation(
        message=message, number=number, account=number.account, phone=message.sender, text=message.body
    )
    return conversation.reply(body)
