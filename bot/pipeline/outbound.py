"""The outbound pipeline's first steps: accept, validate, fund and queue a message (SPEC §5 steps 1–3).

Every outbound message, an automatic reply or a business's send, is created here, inside the caller's
transaction. The message row is the outbox: it is committed at 102 Queued (or final, when rejected),
and its send job is enqueued after the commit. Each step is a MessageEvent in its history.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from peewee import IntegrityError

from bot import callbacks, consent, inputguard, links, phones
from bot.pipeline import segments
from bot.pipeline.governor import QuietHours, quiet_until
from bot.pipeline.queue import enqueue_send
from bot.pipeline.statuses import Status, is_final, predecessors, rank
from models import (
    Account,
    Carrier,
    InboundMessage,
    LedgerEntry,
    MessageEvent,
    OutboundMessage,
    VirtualNumber,
    db,
    utcnow,
)


@dataclass
class Draft:
    """What a caller asks the pipeline to send."""

    account: Account
    sender: str
    recipient: str
    body: str
    carrier: Carrier | None = None
    reply_to: InboundMessage | None = None
    send_at: datetime | None = None
    validity_minutes: int | None = None
    compliance: bool = False  # the one opt-out confirmation: it passes the block list
    batch: str | None = None  # a group send's id
    sender_number: VirtualNumber | None = None  # the account's number for `sender`, when the caller loaded it
    status_callback: str | None = None  # this message's own callback URL, else the account's (bot/callbacks.py)
    track_links: bool = False  # each URL becomes a short link of ours that counts clicks (bot/links.py)
    topic: str | None = None  # a send of one of the account's topics: refused to phones opted out of it


class Rejected(Exception):
    def __init__(self, code: Status, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def accept(draft: Draft) -> OutboundMessage:
    """Create a message and run it through validation, funding and queueing, recording each event.

    Returns the message at 102 Queued, or at its final rejection code. Must run inside a transaction;
    the send job is enqueued once that transaction commits. Text no database can hold (NUL, lone
    surrogates) is stored with U+FFFD, and such a text is rejected with 408.
    """
    body = segments.normalize_body(inputguard.scrub(draft.body))
    shortened = links.shorten(body) if draft.track_links else None
    if shortened:
        body = shortened.text  # counted and priced as sent
    counted = segments.count_segments(body)
    validity = draft.validity_minutes or current_app.config["VALIDITY_MINUTES"]
    message = OutboundMessage.create(
        account=draft.account,
        sender=inputguard.scrub(draft.sender.strip()),
        recipient=inputguard.scrub(draft.recipient.strip()),
        body=body,
        encoding=counted.encoding,
        segments=counted.segments,
        price=counted.segments * draft.account.price_per_segment,
        status=Status.ACCEPTED,
        reply_to=draft.reply_to,
        carrier=draft.carrier,
        send_at=draft.send_at,
        validity_minutes=validity,
        expires_at=(draft.send_at or utcnow()) + timedelta(minutes=validity),
        batch=draft.batch,
        status_callback=draft.status_callback or draft.account.status_callback_url or None,
    )
    if shortened:
        links.save(shortened, draft.account.id, message.id, draft.batch)
    record(message, Status.ACCEPTED)
    try:
        message.recipient = validate(draft, message)
        if message.carrier is None:
            raise Rejected(Status.GENERIC_REJECTED, "no carrier route for this sender")
        fund(message)
    except Rejected as rejection:
        message.status = rejection.code
        message.save()
        record(message, rejection.code, rejection.detail)
        return message
    message.status = Status.QUEUED
    held_until = quiet_hold(draft, message)
    if held_until is not None:
        message.send_at, message.expires_at = held_until, held_until + timedelta(minutes=validity)
    message.save()
    detail = f"held for quiet hours until {held_until.isoformat()}Z" if held_until else ""
    record(message, Status.QUEUED, detail or ("scheduled" if draft.send_at else ""))
    message_id, send_at = message.id, message.send_at
    db.after_commit(lambda: enqueue_send(message_id, send_at))
    return message


def quiet_hold(draft: Draft, message: OutboundMessage) -> datetime | None:
    """When a business send due inside the account's quiet hours may go (the window's end), or None.

    Replies to an inbound (HELP answers, opt-out confirmations, keyword and bot replies) are never held.
    """
    if draft.reply_to is not None or draft.compliance:
        return None
    window = QuietHours.parse(draft.account.quiet_hours)
    return quiet_until(window, message.recipient, message.send_at or utcnow())


def validate(draft: Draft, message: OutboundMessage) -> str:
    """Run SPEC §5 step 1 in order; return the recipient in E.164 or raise Rejected."""
    account = draft.account
    try:
        recipient = phones.check_recipient(message.recipient, account.default_region)
    except phones.PhoneError as exc:
        raise Rejected(Status(exc.code), str(exc)) from exc
    if not phones.is_valid_sender(message.sender):
        raise Rejected(Status.INVALID_SENDER, "sender must be 1-11 letters, digits or spaces, or up to 15 digits")
    if phones.sender_kind(message.sender) != "alphanumeric":
        message.sender = own_sender(draft, message.sender)
    if inputguard.has_unstorable(draft.body):
        raise Rejected(Status.INVALID_CONTENT, "the text holds NUL or invalid (lone surrogate) characters")
    check_content(message.body, message.segments)
    banned = banned_word(message.body, account.banned_words)
    if banned:
        raise Rejected(Status.CONTENT_REJECTED, f"banned word: {banned}")
    if not draft.compliance and consent.opted_out(account, [recipient], draft.topic):
        raise Rejected(Status.RECIPIENT_REJECTED, blocked_detail(draft.topic))
    if phones.is_nanp(recipient):
        if not account.nanp_campaign:
            raise Rejected(Status.SENDER_REJECTED, "US/Canada needs a pre-booked campaign")
        if phones.sender_kind(message.sender) == "alphanumeric":
            raise Rejected(Status.SENDER_REJECTED, "US/Canada does not accept alphanumeric senders")
    return recipient


def own_sender(draft: Draft, sender: str) -> str:
    """A numeric sender must be one of the account's own virtual numbers (else 407); returns it as stored.

    The caller's already loaded number is used when it is the one; otherwise one indexed lookup.
    """
    forms = phones.numeric_sender_forms(sender, draft.account.default_region)
    known = draft.sender_number
    if known is None or known.account_id != draft.account.id or known.number not in forms:
        known = VirtualNumber.get_or_none((VirtualNumber.account == draft.account) & VirtualNumber.number.in_(forms))
    if known is None:
        raise Rejected(Status.INVALID_SENDER, f"numeric sender {sender} is not one of this account's virtual numbers")
    return known.number


def check_content(body: str, segment_count: int) -> None:
    if not body.strip():
        raise Rejected(Status.INVALID_CONTENT, "empty message")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\r\n" for ch in body):
        raise Rejected(Status.INVALID_CONTENT, "control characters are not allowed")
    limit = current_app.config["MAX_SEGMENTS"]
    if segment_count > limit:
        raise Rejected(Status.INVALID_CONTENT, f"{segment_count} segments, at most {limit}")


def banned_word(body: str, banned_words: list[str]) -> str | None:
    words = set(re.findall(r"\w+", body.casefold()))
    return next((word for word in banned_words if word.casefold() in words), None)


def blocked_detail(topic: str | None) -> str:
    return "recipient is on the block list" + (f" (opted out of everything or of topic {topic})" if topic else "")


def fund(message: OutboundMessage) -> None:
    """SPEC §5 step 2: invoice accounts accrue a line; balance accounts are debited, never below zero."""
    account, account_id, price = message.account, message.account_id, message.price
    if account.billing_mode == "invoice":
        LedgerEntry.create(account=account_id, kind="invoice", amount=price, message=message)
    else:
        debited = (
            Account.update(balance=Account.balance - price)
            .where((Account.id == account_id) & (Account.balance >= price))
            .execute()
        )
        if not debited:
            raise Rejected(Status.INSUFFICIENT_FUNDS, f"price {price}, balance {account.balance}")
        LedgerEntry.create(account=account_id, kind="debit", amount=-price, message=message)
    message.status = Status.FUNDED
    record(message, Status.FUNDED, f"{message.segments} x {account.price_per_segment} = {price}")


def record(message: OutboundMessage, code: int, detail: str = "", source: str = "pipeline") -> bool:
    """Append an event to a message's history; a repeated (code, detail) is stored once."""
    event = {"message": message, "code": code, "detail": detail[:250], "source": source}
    if not list(MessageEvent.insert(**event).on_conflict_ignore().returning(MessageEvent.id).execute()):
        return False
    if message.status_callback:
        callbacks.arm(message)
    return True


def advance(message_id: int, code: int, detail: str = "", source: str = "pipeline") -> bool:
    """Record an event and move the status forward when the rank rule allows; refund if it must.

    Returns whether the status changed. A late or repeated report only adds to the history.
    """
    with db.atomic():
        message = locked(message_id)
        if not record(message, code, detail, source):
            return False
        moved = (
            OutboundMessage.update(status=code, updated_at=utcnow(), lease_until=None)
            .where((OutboundMessage.id == message_id) & (OutboundMessage.status.in_(predecessors(code))))
            .execute()
        )
        if moved and refund_due(message.status, code):
            refund(message)
    return bool(moved)


def locked(message_id: int) -> OutboundMessage:
    """Load a message for a status change; on PostgreSQL the row stays locked until the commit, so the
    status the refund rule reads is the one the update replaces (SQLite's write transactions are serial)."""
    query = OutboundMessage.select().where(OutboundMessage.id == message_id)
    return (query.for_update() if db.for_update else query).get()


def refund_due(previous: int, code: int) -> bool:
    """A funded message that never left us: rejected after funding, 511, 203 before hand-off, 500."""
    handed_off = rank(previous) >= rank(Status.QUEUED_AT_GATEWAY)
    return is_final(code) and not handed_off and (code >= 400 or code == Status.CANCELED)


def refund(message: OutboundMessage) -> None:
    """Give a funded message's price back, once: the unique (message, kind) ledger row guarantees it."""
    funding = LedgerEntry.get_or_none((LedgerEntry.message == message) & (LedgerEntry.kind.in_(("debit", "invoice"))))
    if funding is None:
        return
    try:
        with db.atomic():
            LedgerEntry.create(account=message.account_id, kind="refund", amount=message.price, message=message)
    except IntegrityError:
        return
    if funding.kind == "debit":
        Account.update(balance=Account.balance + message.price).where(Account.id == message.account_id).execute()
    record(message, Status.REFUNDED, f"{message.price}")


def cancel(message_id: int) -> bool:
    """203 Canceled and a refund, allowed until the message is claimed for sending (then False)."""
    with db.atomic():
        message = locked(message_id)
        cancelable = (Status.ACCEPTED, Status.FUNDED, Status.QUEUED)
        moved = (
            OutboundMessage.update(status=Status.CANCELED, updated_at=utcnow())
            .where((OutboundMessage.id == message_id) & OutboundMessage.status.in_(cancelable))
            .execute()
        )
        if not moved:
            return False
        record(message, Status.CANCELED, "canceled by the business", source="api")
        refund(message)
    return True


@dataclass(frozen=True)
class Route:
    """Where a business send goes: the sender's own number (None for an alphanumeric or foreign sender)
    and the carrier (that number's, else the account's first number's; None for an account without one)."""

    number: VirtualNumber | None
    carrier: Carrier | None


def route_for(account: Account, sender: str) -> Route:
    """The route of a business send from `sender` (looked up once per send, not per recipient)."""
    mine = VirtualNumber.select(VirtualNumber, Carrier).join(Carrier).where(VirtualNumber.account == account)
    own = None
    if phones.sender_kind(sender) != "alphanumeric":
        own = mine.where(VirtualNumber.number.in_(phones.numeric_sender_forms(sender, account.default_region))).first()
    first = own or mine.order_by(VirtualNumber.id).first()
    return Route(own, first.carrier if first else None)
