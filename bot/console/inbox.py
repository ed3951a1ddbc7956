"""`/console/inbox`: conversations by phone and number; `/console/inbox/<e164>`: one thread and a reply box.

A conversation is a phone and one of the account's numbers (or a sender name the account sent from).
"Unread" is per user: an inbound newer than the last one the user saw in that thread (InboxRead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from peewee import JOIN, fn
from werkzeug.wrappers import Response

from bot import phones
from bot.console import bp
from bot.console.auth import current_user, login_required
from bot.contacts import create_or_get
from bot.pipeline import statuses
from bot.pipeline.sending import Send, SendRefused, send_to_phones
from models import Contact, InboundMessage, InboxRead, OutboundMessage, VirtualNumber

LIMIT = 100


@dataclass
class Conversation:
    phone: str
    number: str
    last_at: datetime
    last_text: str
    unread: int = 0
    name: str = ""


@dataclass(frozen=True)
class Item:
    direction: str  # "in" | "out"
    at: datetime
    text: str
    number: str
    message_id: int | None = None
    status: int | None = None
    keyword: str = ""

    @property
    def status_name(self) -> str:
        return statuses.name(self.status) if self.status is not None else ""

    @property
    def status_group(self) -> str:
        return statuses.group(self.status) if self.status is not None else ""


def account_numbers() -> dict[int, str]:
    query = VirtualNumber.select(VirtualNumber.id, VirtualNumber.number).where(VirtualNumber.account == g.account.id)
    return {row.id: row.number for row in query}


def conversations() -> list[Conversation]:
    numbers = account_numbers()
    found: dict[tuple[str, str], Conversation] = {}
    last_in = (
        InboundMessage.select(fn.MAX(InboundMessage.id))
        .where(InboundMessage.number.in_(list(numbers) or [0]))
        .group_by(InboundMessage.number, InboundMessage.sender)
    )
    for row in InboundMessage.select().where(InboundMessage.id.in_(last_in)):
        number = numbers[row.number_id]
        found[(row.sender, number)] = Conversation(row.sender, number, row.received_at, row.body)
    last_out = (
        OutboundMessage.select(fn.MAX(OutboundMessage.id))
        .where(OutboundMessage.account == g.account.id)
        .group_by(OutboundMessage.sender, OutboundMessage.recipient)
    )
    for row in OutboundMessage.select().where(OutboundMessage.id.in_(last_out)):
        key = (row.recipient, row.sender)
        if key not in found or found[key].last_at < row.created_at:
            found[key] = Conversation(row.recipient, row.sender, row.created_at, row.body)
    newest = sorted(found.values(), key=lambda c: c.last_at, reverse=True)[:LIMIT]
    mark_unread(newest, {number: number_id for number_id, number in numbers.items()})
    known = Contact.select().where((Contact.account == g.account.id) & Contact.phone.in_([c.phone for c in newest]))
    names = {c.phone: f"{c.first_name} {c.last_name}".strip() for c in known}
    for conversation in newest:
        conversation.name = names.get(conversation.phone, "")
    return newest


def mark_unread(rows: list[Conversation], number_ids: dict[str, int]) -> None:
    """Count each conversation's inbound messages newer than this user's read marker, in one query."""
    user = current_user()
    unread = (
        InboundMessage.select(InboundMessage.number, InboundMessage.sender, fn.COUNT(InboundMessage.id))
        .join(
            InboxRead,
            JOIN.LEFT_OUTER,
            on=(InboxRead.number == InboundMessage.number)
            & (InboxRead.phone == InboundMessage.sender)
            & (InboxRead.user == user.id),
        )
        .where(
            InboundMessage.number.in_(list(number_ids.values()) or [0])
            & InboundMessage.sender.in_([c.phone for c in rows] or [""])
            & (InboundMessage.id > fn.COALESCE(InboxRead.last_read, 0))
        )
        .group_by(InboundMessage.number, InboundMessage.sender)
        .tuples()
    )
    counts = {(number_id, phone): count for number_id, phone, count in unread}
    for conversation in rows:
        conversation.unread = counts.get((number_ids.get(conversation.number), conversation.phone), 0)


def thread(phone: str) -> list[Item]:
    numbers = account_numbers()
    items = [
        Item("in", row.received_at, row.body, numbers[row.number_id], keyword=row.keyword)
        for row in InboundMessage.select()
        .where(InboundMessage.number.in_(list(numbers) or [0]) & (InboundMessage.sender == phone))
        .order_by(InboundMessage.id.desc())
        .limit(200)
    ]
    items += [
        Item("out", row.created_at, row.body, row.sender, row.id, row.status)
        for row in OutboundMessage.select()
        .where((OutboundMessage.account == g.account.id) & (OutboundMessage.recipient == phone))
        .order_by(OutboundMessage.id.desc())
        .limit(200)
    ]
    return sorted(items, key=lambda item: item.at)


def mark_read(phone: str) -> None:
    """Remember the newest inbound of each of the account's numbers from this phone as seen by this user."""
    user = current_user()
    newest = (
        InboundMessage.select(InboundMessage.number, fn.MAX(InboundMessage.id))
        .where(InboundMessage.number.in_(list(account_numbers()) or [0]) & (InboundMessage.sender == phone))
        .group_by(InboundMessage.number)
        .tuples()
    )
    for number_id, last in newest:
        create_or_get(
            lambda number_id=number_id: InboxRead.create(user=user, number=number_id, phone=phone, last_read=0),
            lambda number_id=number_id: InboxRead.get(
                (InboxRead.user == user) & (InboxRead.number == number_id) & (InboxRead.phone == phone)
            ),
        )
        InboxRead.update(last_read=last).where(
            (InboxRead.user == user)
            & (InboxRead.number == number_id)
            & (InboxRead.phone == phone)
            & (InboxRead.last_read < last)
        ).execute()


def e164_or_404(raw: str) -> str:
    try:
        return phones.to_e164(raw, g.account.default_region)
    except phones.PhoneError:
        abort(404, f"{raw} is not a phone number")


@bp.get("/inbox")
@login_required()
def inbox() -> str:
    return render_template("console/inbox.html", conversations=conversations())


@bp.get("/inbox/<phone>")
@login_required()
def conversation(phone: str) -> Any:
    phone = e164_or_404(phone)
    items = thread(phone)
    if not items:
        abort(404, f"No conversation with {phone}.")
    mark_read(phone)
    numbers = sorted(set(account_numbers().values()))
    used = [item.number for item in reversed(items) if item.number in numbers]
    last_number = used[0] if used else (numbers[0] if numbers else "")
    contact = Contact.get_or_none((Contact.account == g.account.id) & (Contact.phone == phone))
    return render_template(
        "console/thread.html", phone=phone, items=items, numbers=numbers, reply_from=last_number, contact=contact
    )


@bp.get("/inbox/<phone>/items")
@login_required()
def conversation_items(phone: str) -> str:
    """The thread's messages alone; the page's script polls this to show new messages and statuses."""
    phone = e164_or_404(phone)
    items = thread(phone)
    mark_read(phone)
    return render_template("console/_thread_items.html", items=items)


@bp.post("/inbox/<phone>")
@login_required("user")
def reply(phone: str) -> Response:
    phone = e164_or_404(phone)
    text = request.form.get("text", "")
    sender = request.form.get("sender", "")
    if sender not in account_numbers().values():
        abort(400, "Reply from one of the account's numbers.")
    try:
        message = send_to_phones(Send(g.account, sender, text), [phone])[0]
    except SendRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("console.conversation", phone=phone))
    if statuses.is_final(message.status):
        flash(f"Not sent: {statuses.name(message.status)}. {statuses.explain(message.status)}", "error")
    return redirect(url_for("console.conversation", phone=phone))
