"""The outbound pipeline's first steps: accept, validate, fund and queue a message (SPEC §5 steps 1–3).

Every outbound message, an automatic reply or a business's send, is created here, inside the caller's
transaction. The message row is the outbox: it is committed at 102 Queued (or final, when rejected),
and its send job is enqueued after the commit. Each step is a MessageEvent in its history.

Messages are accepted a chunk at a time (`accept_many`: a group send's chunk of members, a send to many
phones); one message is a chunk of one (`accept`). A chunk is validated in memory (bot/pipeline/validation.py),
written, funded (bot/pipeline/funding.py) and given its history in a fixed number of statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from flask import current_app
from peewee import SQL, Field, IntegrityError, Update, fn

from bot import callbacks, inputguard, links, phones, rows
from bot.db import for_update, last_statement, writes_in_with
from bot.pipeline import segments
from bot.pipeline.funding import fund
from bot.pipeline.governor import QuietHours, quiet_until
from bot.pipeline.queue import enqueue_sends_at_commit
from bot.pipeline.statuses import Status, is_final, predecessors, rank
from bot.pipeline.validation import Lookups, Rejected, blocked_phones, validate
from bot.prepared import Prepared
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
    compliance: bool = False  # an opt-out or opt-in confirmation: it passes the block list
    batch: str | None = None  # a group send's id
    sender_number: VirtualNumber | None = None  # the account's number for `sender`, when the caller loaded it
    status_callback: str | None = None  # this message's own callback URL, else the account's (bot/callbacks.py)
    track_links: bool = False  # each URL becomes a short link of ours that counts clicks (bot/links.py)
    topic: str | None = None  # a send of one of the account's topics: refused to phones opted out of it


def accept(draft: Draft) -> OutboundMessage:
    """Accept one message: `accept_many` of one draft. IntegrityError if its batch already has a message
    to the recipient."""
    written = accept_many([draft])
    if not written:
        raise IntegrityError(f"batch {draft.batch} already has a message to this recipient")
    return written[0]


@dataclass
class Staged:
    """A draft on its way in: its message (not yet written), its short links, and what befell it."""

    draft: Draft
    message: OutboundMessage
    shortened: links.Shortened | None
    rejection: Rejected | None = None
    held_until: datetime | None = None  # held for the recipient's quiet hours until then
    unheld: tuple[datetime | None, datetime | None] = (None, None)  # its send_at, expires_at before the hold


def accept_many(drafts: Sequence[Draft]) -> list[OutboundMessage]:
    """Create messages and run each through validation, funding and queueing, recording each event.

    Returns the messages written, in draft order, each at 102 Queued or at its final rejection code, as
    if accepted one by one in that order (a balance that covers only part of the chunk funds the first
    messages it can). A draft whose batch already has a message to its recipient (a chunk run again) is
    left out and costs nothing. The chunk costs a fixed number of statements, whatever its size: one
    block-list read, one INSERT of the messages (ON CONFLICT DO NOTHING on (batch, recipient)), one locked
    balance read and one conditional debit per paying account, one INSERT each of events, ledger lines,
    short links and callback effects, and one UPDATE for messages the money did not cover. It runs in the
    caller's transaction (else in one of its own); the send jobs are enqueued once that commits, messages
    held for quiet hours or scheduled in groups by their moment. Text no database can hold (NUL, lone
    surrogates) is stored with U+FFFD, and such a text is rejected with 408.
    """
    if not drafts:
        return []  # the last chunk of a group whose size is a multiple of the chunk's
    with nullcontext() if db.in_transaction() else db.atomic():
        staged = stage(drafts)
        lookups = Lookups()
        lookups.blocked = blocked_phones(staged)
        for item in staged:
            check(item, lookups)
        written = insert(staged)
        unfunded = fund(written)
        if unfunded:
            unhold(unfunded)
        write_history(written)
    queued: dict[datetime | None, list[int]] = {}
    for item in written:
        if item.rejection is None:
            queued.setdefault(item.message.send_at, []).append(item.message.id)
    for at, ids in queued.items():
        enqueue_sends_at_commit(ids, at)
    return [item.message for item in written]


def stage(drafts: Sequence[Draft]) -> list[Staged]:
    """Each draft's message in memory at 101 Accepted, its URLs shortened when asked (one query for all)."""
    # each distinct text cleaned once: a group send gives every member the same
    cleaned = {text: segments.normalize_body(inputguard.scrub(text)) for text in {draft.body for draft in drafts}}
    bodies = [cleaned[draft.body] for draft in drafts]
    tracked = [n for n, draft in enumerate(drafts) if draft.track_links]
    done = links.shorten_many([bodies[n] for n in tracked])
    shortened: dict[int, links.Shortened] = dict(zip(tracked, done, strict=True))
    now, staged = utcnow(), []
    for n, draft in enumerate(drafts):
        short = shortened.get(n)
        body = short.text if short and short.links else bodies[n]  # counted and priced as sent
        counted = segments.count_segments(body)
        validity = draft.validity_minutes or current_app.config["VALIDITY_MINUTES"]
        message = OutboundMessage(
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
            expires_at=(draft.send_at or now) + timedelta(minutes=validity),
            batch=draft.batch,
            status_callback=draft.status_callback or draft.account.status_callback_url or None,
            created_at=now,
            updated_at=now,
        )
        staged.append(Staged(draft, message, short if short and short.links else None))
    return staged


def check(item: Staged, lookups: Lookups) -> None:
    """Validate one staged message (its rejection, or its recipient in E.164) and hold it for quiet hours."""
    draft, message = item.draft, item.message
    try:
        message.recipient = validate(draft, message, lookups)
        if message.carrier is None:
            raise Rejected(Status.GENERIC_REJECTED, "no carrier route for this sender")
    except Rejected as rejection:
        item.rejection = rejection
        message.status = rejection.code
        return
    message.status = Status.QUEUED
    item.unheld = (message.send_at, message.expires_at)
    item.held_until = quiet_hold(draft, message)
    if item.held_until is not None:
        message.send_at = item.held_until
        message.expires_at = item.held_until + timedelta(minutes=message.validity_minutes)


def insert(staged: list[Staged]) -> list[Staged]:
    """Write the chunk's messages in one INSERT; those whose (batch, recipient) exists are skipped.

    The ids come back with their recipients and are matched to the drafts by recipient (unique within a
    batch), in id order for the same recipient (unbatched drafts, which never conflict).
    """
    returned = rows.insert(
        OutboundMessage,
        [item.message.__data__ for item in staged],
        skip_conflicts=True,
        returning=(OutboundMessage.id, OutboundMessage.recipient),
    )
    ids: dict[str, list[int]] = {}
    for message_id, recipient in sorted(returned):
        ids.setdefault(recipient, []).append(message_id)
    written = []
    for item in staged:
        waiting = ids.get(item.message.recipient)
        if waiting:
            item.message.id = waiting.pop(0)
            written.append(item)
    return written


def quiet_hold(draft: Draft, message: OutboundMessage) -> datetime | None:
    """When a business send due inside the account's quiet hours may go (the window's end), or None.

    Replies to an inbound (HELP answers, opt-out confirmations, keyword and bot replies) are never held.
    """
    if draft.reply_to is not None or draft.compliance:
        return None
    window = QuietHours.parse(draft.account.quiet_hours)
    return quiet_until(window, message.recipient, message.send_at or utcnow()) if window else None


def unhold(unfunded: list[Staged]) -> None:
    """Messages the money did not cover were written as queued: they become 402 at their own times."""
    moments: dict[tuple[datetime | None, datetime | None], list[int]] = {}
    for item in unfunded:
        item.message.send_at, item.message.expires_at = item.unheld
        item.held_until = None
        moments.setdefault(item.unheld, []).append(item.message.id)
    for (send_at, expires_at), ids in moments.items():
        OutboundMessage.update(status=Status.INSUFFICIENT_FUNDS, send_at=send_at, expires_at=expires_at).where(
            OutboundMessage.id.in_(ids)
        ).execute()


def write_history(written: list[Staged]) -> None:
    """Each written message's events (101, then its rejection or 103 and 102), its ledger line, its short
    links and its status callback: one INSERT each for the chunk."""
    now = utcnow()
    events, ledger, link_rows = [], [], []
    for item in written:
        message, account = item.message, item.draft.account
        steps = [(Status.ACCEPTED, "")]
        if item.rejection is not None:
            steps.append((item.rejection.code, item.rejection.detail))
        else:
            invoiced = account.billing_mode == "invoice"
            ledger.append(
                {
                    "account": account.id,
                    "kind": "invoice" if invoiced else "debit",
                    "amount": message.price if invoiced else -message.price,
                    "message": message.id,
                    "at": now,
                }
            )
            held = f"held for quiet hours until {item.held_until.isoformat()}Z" if item.held_until else ""
            steps += [
                (Status.FUNDED, f"{message.segments} x {account.price_per_segment} = {message.price}"),
                (Status.QUEUED, held or ("scheduled" if item.draft.send_at else "")),
            ]
        events += [
            {"message": message.id, "code": code, "detail": detail[:250], "source": "pipeline", "at": now}
            for code, detail in steps
        ]
        if item.shortened:
            link_rows += links.entries(item.shortened, account.id, message.id, message.batch)
    rows.insert(MessageEvent, events)
    rows.insert(LedgerEntry, ledger)
    links.save(link_rows)
    callbacks.arm_many([item.message for item in written])


# An event of one message (a repeated (code, detail) is stored once): every status change writes one.
RECORD = Prepared(
    lambda *values: (
        MessageEvent.insert(dict(zip(("message", "code", "at", "detail", "source"), values, strict=True)))
        .on_conflict_ignore()
        .returning(MessageEvent.id)
    ),
    [MessageEvent.message, MessageEvent.code, MessageEvent.at, MessageEvent.detail, MessageEvent.source],
)


def record(message: OutboundMessage, code: int, detail: str = "", source: str = "pipeline") -> bool:
    """Append an event to a message's history; a repeated (code, detail) is stored once."""
    if not RECORD.execute(message.id, code, utcnow(), detail[:250], source).fetchall():
        return False
    if message.status_callback:
        callbacks.arm(message)
    return True


def record_events(events: list[dict], messages: list[OutboundMessage]) -> set[int]:
    """`record` for many events in one INSERT (a repeated one is stored once): the ids of the messages
    that got a new one, whose status callbacks are armed."""
    new = {
        message_id
        for (message_id,) in rows.insert(MessageEvent, events, skip_conflicts=True, returning=(MessageEvent.message,))
    }
    callbacks.arm_many([message for message in messages if message.id in new])
    return new


def advance(message_id: int, code: int, detail: str = "", source: str = "pipeline") -> bool:
    """Record an event and move the status forward when the rank rule allows; refund if it must.

    Returns whether the status changed. A late or repeated report only adds to the history.
    """
    with db.atomic():
        return advance_locked(locked(message_id), code, detail, source)


def advance_locked(message: OutboundMessage, code: int, detail: str = "", source: str = "pipeline") -> bool:
    """`advance` for a message the caller has read with `locked` (or LOCKED_COLUMNS, locked) in its
    transaction: a delivery report, which finds its message and locks it in one statement."""
    if not record(message, code, detail, source):
        return False
    moved = status_update(code).execute(*moved_to(code, utcnow(), message.id)).rowcount
    if moved and refund_due(message.status, code):
        refund(message)
    return bool(moved)


def advance_last(message: OutboundMessage, code: int, detail: str = "", source: str = "pipeline") -> None:
    """`advance_locked` as the last statement of the caller's transaction (a delivery report's).

    When the change can need nothing after it (no refund can be due from the locked status, no status
    callback to arm), PostgreSQL gets the event and the status change as one statement that carries the
    COMMIT (bot/db.py `last_statement`): one round trip instead of three.
    """
    if message.status_callback or refund_due(message.status, code) or not writes_in_with():
        advance_locked(message, code, detail, source)
        return
    now = utcnow()
    with last_statement(results=False):
        record_and_move(code).execute(message.id, code, now, detail[:250], source, *moved_to(code, now, message.id))


def advance_many(changes: list[tuple[OutboundMessage, int, str]], source: str) -> int:
    """`advance_locked` for many messages the caller has locked, one change each: one INSERT of the
    events and one guarded UPDATE for each status they move to. Returns how many moved."""
    now = utcnow()
    events = [
        {"message": message.id, "code": code, "detail": detail[:250], "source": source, "at": now}
        for message, code, detail in changes
    ]
    new = record_events(events, [message for message, _, _ in changes])
    by_code: dict[int, list[OutboundMessage]] = {}
    for message, code, _ in changes:
        if message.id in new:
            by_code.setdefault(code, []).append(message)
    moved = 0
    for code, messages in by_code.items():
        changed = {
            message_id
            for (message_id,) in OutboundMessage.update(status=code, lease_until=None, updated_at=now)
            .where(OutboundMessage.id.in_([m.id for m in messages]) & OutboundMessage.status.in_(predecessors(code)))
            .returning(OutboundMessage.id)
            .tuples()
            .execute()
        }
        for message in messages:
            if message.id in changed:
                moved += 1
                if refund_due(message.status, code):
                    refund(message)
    return moved


@cache
def status_update(code: int) -> Prepared:
    """The guarded UPDATE that moves a message to `code` from a status the rank rule lets it leave; its
    values are `moved_to`'s."""
    return Prepared(guarded_move, move_fields(code))


@cache
def record_and_move(code: int) -> Prepared:
    """PostgreSQL only: RECORD and `status_update(code)` in one statement, the status moving only when
    the event is new (as in `advance_locked`); its values are RECORD's, then `moved_to`'s."""

    def build(*values: Any) -> Update:
        new_event = RECORD.build(*values[: len(RECORD.fields)]).cte("new_event")
        move = guarded_move(*values[len(RECORD.fields) :])
        return move.where(fn.EXISTS(new_event.select(SQL("1")))).with_cte(new_event)

    return Prepared(build, [*RECORD.fields, *move_fields(code)])


def moved_to(code: int, at: datetime, message_id: int) -> tuple[Any, ...]:
    return (code, None, at, message_id, *predecessors(code))


def guarded_move(status: int, lease_until: None, at: datetime, message_id: int, *earlier: int) -> Update:
    return OutboundMessage.update(status=status, lease_until=lease_until, updated_at=at).where(
        (OutboundMessage.id == message_id) & OutboundMessage.status.in_(earlier)
    )


def move_fields(code: int) -> list[Field]:
    return [
        OutboundMessage.status,
        OutboundMessage.lease_until,
        OutboundMessage.updated_at,
        OutboundMessage.id,
        *[OutboundMessage.status] * len(predecessors(code)),
    ]


# What a status change reads of its message (status, account, price, callback URL), and what a delivery
# report needs besides (the recipient, for a carrier's opt-out; the carrier and upstream id it matched).
LOCKED_COLUMNS = (
    OutboundMessage.id,
    OutboundMessage.status,
    OutboundMessage.account,
    OutboundMessage.price,
    OutboundMessage.status_callback,
    OutboundMessage.recipient,
    OutboundMessage.carrier,
    OutboundMessage.upstream_id,
)


LOCKED = Prepared(
    lambda message_id: for_update(OutboundMessage.select(*LOCKED_COLUMNS).where(OutboundMessage.id == message_id)),
    [OutboundMessage.id],
)


def locked(message_id: int) -> OutboundMessage:
    """Load what a status change reads (LOCKED_COLUMNS); on PostgreSQL the row stays locked until the
    commit, so the status the refund rule reads is the one the update replaces."""
    message = LOCKED.first(OutboundMessage, message_id)
    if message is None:
        raise OutboundMessage.DoesNotExist(f"no outbound message {message_id}")
    return message


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
