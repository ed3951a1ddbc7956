"""Status callbacks: every status change of a message POSTed to the business, in order (SPEC §12).

A message whose account has a `status_callback_url`, or that was sent with its own `status_callback`,
carries that URL. Each event recorded in its history adds a "status_callback" effect to the outbox in the
same transaction (bot/outbox.py), so a callback survives Redis and worker failures like any side effect.
An effect's handler delivers every status change of the message not yet delivered, oldest first, and
moves the message's `callback_cursor` past each one the business answered 2xx: a later change is never
sent before an earlier one, and an effect that finds nothing new does nothing. A status change is an
event that moved the status by the rank rule; events that did not (a repeated 110 of a second attempt, a
late report, 104 Refunded) are history, not callbacks. The body is signed like the generic carrier
(`X-Smsbot-Signature`) with the account's forward secret; the receiver dedupes on (`id`, `status`), since
delivery is at least once. A callback the business refused until the retries ran out is skipped, so the
next one is not held behind it forever.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import requests
from flask import current_app

from bot import netguard, outbox, signing
from bot.db import at_commit
from bot.pipeline import statuses
from models import Effect, MessageEvent, OutboundMessage

log = logging.getLogger("smsbot.callbacks")
KIND = "status_callback"


def arm(message: OutboundMessage) -> None:
    """Add the outbox effect that delivers the message's new status (call in the event's transaction).

    One effect per message suffices within a transaction: its job runs after the commit and sees every
    event of it (acceptance records 101, 103 and 102 in one). A later transaction arms its own.
    """
    arm_many([message])


class ArmedInTransaction:
    """The messages whose callback effect the current transaction has written already."""

    def __init__(self) -> None:
        self.ids: set[int] = set()

    def __call__(self) -> None:
        return None  # only remembered for the transaction's length


def arm_many(messages: Sequence[OutboundMessage]) -> None:
    """`arm` for a chunk of messages (those with a callback URL), in one INSERT."""
    armed = at_commit(ArmedInTransaction)
    done = armed.ids if armed is not None else set()
    due = [m for m in messages if m.status_callback and m.id not in done]
    outbox.add_for_messages(KIND, due)
    done.update(m.id for m in due)


def changes(events: list[MessageEvent]) -> list[MessageEvent]:
    """The events that moved the status, in order: what the business is told about."""
    moved: list[MessageEvent] = []
    for event in events:
        if not moved or statuses.can_move(moved[-1].code, event.code):
            moved.append(event)
    return moved


def body(message: OutboundMessage, event: MessageEvent) -> bytes:
    code = event.code
    return json.dumps(
        {
            "id": message.id,
            "status": code,
            "status_name": statuses.name(code),
            "status_group": statuses.group(code),
            "legacy_status": statuses.legacy(code),
            "to": message.recipient,
            "from": message.sender,
            "at": event.at.isoformat(timespec="seconds") + "Z",
            "detail": event.detail,
            "batch": message.batch,
        }
    ).encode()


def deliver(effect: Effect) -> str:
    """The outbox handler: POST each undelivered status change in order; Failed stops at the first refusal."""
    message = OutboundMessage.get_by_id(effect.message_id)
    events = list(MessageEvent.select().where(MessageEvent.message == message.id).order_by(MessageEvent.id))
    due = [event for event in changes(events) if event.id > message.callback_cursor]
    for event in due:
        post(message, event)
        OutboundMessage.update(callback_cursor=event.id).where(
            (OutboundMessage.id == message.id) & (OutboundMessage.callback_cursor < event.id)
        ).execute()
    return f"{len(due)} delivered"


def post(message: OutboundMessage, event: MessageEvent) -> None:
    payload = body(message, event)
    headers = signing.signed_json(message.account_id, payload)
    try:
        answer = netguard.post_to_account_url(
            message.status_callback, payload, headers, current_app.config["FORWARD_TIMEOUT_SECONDS"]
        )
    except netguard.Refused as exc:
        raise outbox.Failed(f"status callback refused: {exc}", retryable=False) from None
    except requests.RequestException as exc:
        raise outbox.Failed(f"status {event.code}: {exc.__class__.__name__}") from None
    if not 200 <= answer.status_code < 300:
        retryable = answer.status_code == 429 or answer.status_code >= 500
        raise outbox.Failed(f"status {event.code}: HTTP {answer.status_code}", retryable=retryable)


def gave_up(effect: Effect, detail: str) -> None:
    """Skip the change the business kept refusing, so the next ones are not held behind it."""
    message = OutboundMessage.get_by_id(effect.message_id)
    events = list(MessageEvent.select().where(MessageEvent.message == message.id).order_by(MessageEvent.id))
    pending = [event for event in changes(events) if event.id > message.callback_cursor]
    if pending:
        OutboundMessage.update(callback_cursor=pending[0].id).where(OutboundMessage.id == message.id).execute()
    log.warning("message %s: status callback given up: %s", message.id, detail)
