"""A business's sends: to phones at once, or to a group fanned out in jobs.

Each recipient becomes one message through the same pipeline as a reply, a chunk of them at a time
(`outbound.accept_many`).
`{unsubscribe_url}` in the text becomes the recipient's own unsubscribe link, when the account has the
stop service on. A group send answers at once with its Batch row; fan-out jobs (bot/pipeline/batches.py) accept
the members a chunk per transaction, each message keyed by (batch, recipient), so nobody gets two.
A send to two or more phones is one batch too, written done at once (its messages exist on return); a
list naming the same phone twice, in any spelling, is refused before anything is written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from flask import current_app

from bot import inputguard, phones
from bot.pipeline.outbound import Draft, Route, accept_many, route_for
from bot.pipeline.queue import enqueue_job_after_commit
from bot.unsubscribe import PLACEHOLDER, link_for
from models import Account, Batch, Group, GroupMember, OutboundMessage, db, utcnow

FAN_OUT_JOB = "bot.pipeline.batches.fan_out"


@dataclass(frozen=True)
class Send:
    account: Account
    sender: str
    text: str
    send_at: datetime | None = None
    validity_minutes: int | None = None
    status_callback: str | None = None  # where each message's status changes go (else the account's URL)
    track_links: bool = False  # each URL becomes a short link per recipient (bot/links.py)
    topic: str | None = None  # the account's topic this send belongs to (bot/consent.py)


class SendRefused(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def check(send: Send) -> None:
    if PLACEHOLDER in send.text and not send.account.stop_service_enabled:
        raise SendRefused("{unsubscribe_url} needs the account's stop service", "text")


def personalised(send: Send, recipient: str) -> str:
    if PLACEHOLDER not in send.text:
        return send.text
    try:
        phone = phones.to_e164(recipient, send.account.default_region)
    except phones.PhoneError:
        return send.text  # the pipeline rejects the recipient anyway (409)
    return send.text.replace(PLACEHOLDER, link_for(send.account.id, phone))


def draft(send: Send, route: Route, recipient: str, batch: str | None = None) -> Draft:
    return Draft(
        account=send.account,
        sender=send.sender,
        recipient=recipient,
        body=personalised(send, recipient),
        carrier=route.carrier,
        sender_number=route.number,
        send_at=send.send_at,
        validity_minutes=send.validity_minutes,
        batch=batch,
        status_callback=send.status_callback,
        track_links=send.track_links,
        topic=send.topic,
    )


def same_phone(send: Send, recipient: str) -> str:
    """The recipient as the pipeline will store it: E.164 when it parses, else the text as given."""
    stored = inputguard.scrub(recipient.strip())
    try:
        return phones.to_e164(stored, send.account.default_region)
    except phones.PhoneError:
        return stored


def refuse_repeats(send: Send, recipients: list[str]) -> None:
    """A phone listed twice would be two messages of one batch to one phone: refused, naming `to`."""
    seen: dict[str, str] = {}
    for recipient in recipients:
        key = same_phone(send, recipient)
        if key in seen:
            raise SendRefused(f"to lists {key} twice ({seen[key]!r} and {recipient!r})", "to")
        seen[key] = recipient


def new_batch(send: Send, recipients: int, group: Group | None = None, **fields: object) -> Batch:
    return Batch.create(
        id=uuid.uuid4().hex,
        account=send.account,
        group=group,
        sender=send.sender,
        text=send.text,
        send_at=send.send_at,
        validity_minutes=send.validity_minutes,
        status_callback=send.status_callback,
        track_links=send.track_links,
        topic=send.topic,
        recipients=recipients,
        **fields,
    )


def send_to_phones(send: Send, recipients: list[str]) -> list[OutboundMessage]:
    """Accept one message per recipient in one transaction, FANOUT_CHUNK at a time; each is validated
    and funded on return.

    Two or more phones are one batch: a done Batch row, and every message's `batch` holds its id.
    """
    check(send)
    if len(recipients) > 1:
        refuse_repeats(send, recipients)
    route = route_for(send.account, send.sender)
    with db.atomic():
        batch = None
        if len(recipients) > 1:  # the row only records the send (its texts made storable, as `accept` does)
            stored = replace(send, sender=inputguard.scrub(send.sender), text=inputguard.scrub(send.text))
            batch = new_batch(stored, len(recipients), state="done", done_at=utcnow())
        drafts = [draft(send, route, recipient, batch.id if batch else None) for recipient in recipients]
        size = current_app.config["FANOUT_CHUNK"]
        return [message for at in range(0, len(drafts), size) for message in accept_many(drafts[at : at + size])]


def send_to_group(send: Send, group: Group) -> Batch:
    """Accept a group send: a Batch row now, its messages by fan-out jobs (bot/pipeline/batches.py) after commit."""
    check(send)
    with db.atomic():
        batch = new_batch(send, GroupMember.select().where(GroupMember.group == group).count(), group)
        enqueue_job_after_commit(FAN_OUT_JOB, batch.id)
    return batch
