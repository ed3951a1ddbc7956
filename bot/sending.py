"""A business's sends: to phones at once, or to a group fanned out in jobs.

Each recipient becomes one message through the same pipeline as a reply (`outbound.accept`).
`{unsubscribe_url}` in the text becomes the recipient's own unsubscribe link, when the account has the
stop service on. A group send answers at once: the fan-out job accepts the members 500 per transaction,
each message keyed by (batch, recipient), so a fan-out that runs twice sends nobody twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from peewee import IntegrityError
from rq import Retry

from bot import phones
from bot.jobs import with_connection
from bot.outbound import Draft, Route, accept, route_for
from bot.queue import get_queue
from bot.unsubscribe import PLACEHOLDER, link_for
from models import Account, Contact, Group, GroupMember, OutboundMessage, db

CHUNK = 500


@dataclass(frozen=True)
class Send:
    account: Account
    sender: str
    text: str
    send_at: datetime | None = None
    validity_minutes: int | None = None


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
    )


def send_to_phones(send: Send, recipients: list[str]) -> list[OutboundMessage]:
    """Accept one message per recipient in one transaction; each is validated and funded on return."""
    check(send)
    route = route_for(send.account, send.sender)
    with db.atomic():
        return [accept(draft(send, route, recipient)) for recipient in recipients]


def send_to_group(send: Send, group: Group) -> tuple[str, int]:
    """Start a group send; returns the batch id and the number of members."""
    check(send)
    batch = uuid.uuid4().hex
    members = GroupMember.select().where(GroupMember.group == group).count()
    get_queue().enqueue(
        "bot.sending.fan_out",
        send.account.id,
        group.id,
        batch,
        send.sender,
        send.text,
        send.send_at.isoformat() if send.send_at else None,
        send.validity_minutes,
        job_id=f"batch-{batch}",
        job_timeout=3600,
        retry=Retry(max=3, interval=[5, 30, 120]),
    )
    return batch, members


@with_connection
def fan_out(
    account_id: int,
    group_id: int,
    batch: str,
    sender: str,
    text: str,
    send_at: str | None,
    validity_minutes: int | None,
) -> int:
    """Accept a message for every member of the group (safe to run again: done members are skipped)."""
    send = Send(
        Account.get_by_id(account_id),
        sender,
        text,
        datetime.fromisoformat(send_at) if send_at else None,
        validity_minutes,
    )
    phones_of_group = [
        phone
        for (phone,) in Contact.select(Contact.phone)
        .join(GroupMember)
        .where(GroupMember.group == group_id)
        .order_by(Contact.id)
        .tuples()
    ]
    accepted, route = 0, route_for(send.account, send.sender)
    for start in range(0, len(phones_of_group), CHUNK):
        with db.atomic():
            for phone in phones_of_group[start : start + CHUNK]:
                try:
                    with db.atomic():
                        accept(draft(send, route, phone, batch))
                    accepted += 1
                except IntegrityError:
                    pass  # sent by an earlier run of this fan-out
    return accepted
