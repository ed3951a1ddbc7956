"""Sending messages and following them: status, status group, legacy status and full history."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from flask import g, request
from peewee import fn

from bot.api import account_url, owned, shapes
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import inbound as inbound_json
from bot.api.serialize import message as message_json
from bot.api.topics import known_topic
from bot.contacts import group_named
from bot.errors import ApiError
from bot.pipeline import statuses
from bot.pipeline.outbound import cancel
from bot.pipeline.sending import Send, SendRefused, send_to_group, send_to_phones
from models import InboundMessage, MessageEvent, OutboundMessage, TrackedLink, VirtualNumber, utcnow

EARLIEST = datetime(1970, 1, 1)
SCHEDULE_AHEAD = timedelta(days=3653)  # the latest send_at: ten years from now


def moment(raw: str, field: str) -> datetime:
    """An ISO-8601 time as naive UTC (a time without an offset is taken as UTC)."""
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved past the calendar's end
        raise ApiError(422, "invalid", f"{field} must be an ISO-8601 time", field) from None


def schedule(raw: str) -> datetime:
    """`send_at`: a time from 1970 until ten years from now (a time in the past sends at once)."""
    when = moment(raw, "send_at")
    if not EARLIEST <= when <= utcnow() + SCHEDULE_AHEAD:
        raise ApiError(422, "invalid", "send_at must be between 1970-01-01 and ten years from now", "send_at")
    return when


def with_history(rows: list[OutboundMessage]) -> list[dict]:
    history: dict[int, list[MessageEvent]] = defaultdict(list)
    events = MessageEvent.select().where(MessageEvent.message.in_([row.id for row in rows]))
    for event in events.order_by(MessageEvent.at, MessageEvent.id):
        history[event.message_id].append(event)
    clicks = clicks_of(rows)
    return [message_json(row, history[row.id], clicks.get(row.id, 0)) for row in rows]


def clicks_of(rows: list[OutboundMessage]) -> dict[int, int]:
    """Clicks on each message's tracked links, in one query for the page."""
    clicked = (
        TrackedLink.select(TrackedLink.message, fn.SUM(TrackedLink.clicks))
        .where(TrackedLink.message.in_([row.id for row in rows]))
        .group_by(TrackedLink.message)
        .tuples()
    )
    return {message_id: int(total) for message_id, total in clicked}


def own_message(message_id: int) -> OutboundMessage:
    return owned(OutboundMessage, message_id, "message")


def sent_location(answer: dict) -> str | None:
    """One message: its own resource. Several phones or a group: their batch's progress."""
    if "batch" in answer:
        return f"/batches/{answer['batch']['id']}"
    return f"/messages/{answer['messages'][0]['id']}" if len(answer.get("messages", [])) == 1 else None


@route(
    "POST",
    "/messages",
    role="user",
    summary="Send to one or more phones, or to a group",
    body=shapes.SEND_IN,
    response=shapes.SENT,
    status=202,
    idempotent=True,
    location=sent_location,
    raw_text=("text",),
)
def send(body: dict) -> tuple[dict, int]:
    """Phones: every message is validated and funded before the answer (its status says how it went); two
    or more phones are one batch (a phone listed twice, in any spelling, is a 422 naming `to`).
    A group: the answer comes at once with the batch (a row, so it survives Redis); jobs create the messages.
    `topic` (one of the account's): a phone opted out of it or of everything gets its message at 405."""
    if ("to" in body) == ("group" in body):
        raise ApiError(422, "invalid", "give either to (a phone or a list) or group", "to")
    if "status_callback" in body:
        account_url(body["status_callback"], "status_callback")
    order = Send(
        g.account,
        body["from"],
        body["text"],
        schedule(body["send_at"]) if "send_at" in body else None,
        body.get("validity_minutes"),
        body.get("status_callback"),
        body.get("track_links", False),
        known_topic(body["topic"]) if "topic" in body else None,
    )
    try:
        if "group" in body:
            group = group_named(g.account, body["group"], create=False)
            if group is None:
                raise ApiError(404, "not_found", f"no group named {body['group']!r}", "group")
            batch = send_to_group(order, group)
            return {"messages": [], "batch": {"id": batch.id, "group": group.name, "recipients": batch.recipients}}, 202
        recipients = body["to"] if isinstance(body["to"], list) else [body["to"]]
        sent = send_to_phones(order, recipients)
        answer: dict = {"messages": with_history(sent)}
        if sent[0].batch is not None:
            answer["batch"] = {"id": sent[0].batch, "recipients": len(sent)}
        return answer, 202
    except SendRefused as exc:
        raise ApiError(422, "invalid", str(exc), exc.field) from None


@route(
    "GET",
    "/messages",
    role="viewer",
    summary="Messages, newest first",
    query={
        **shapes.PAGING,
        "to": {"type": "string"},
        "status": {"type": "integer"},
        "direction": {"type": "string", "enum": ["outbound"]},
        "since": {"type": "string"},
        "batch": {"type": "string", "maxLength": 64},
    },
    response=shapes.listing("messages", shapes.MESSAGE),
)
def list_messages() -> dict:
    query = OutboundMessage.select().where(OutboundMessage.account == g.account.id)
    if to := request.args.get("to"):
        query = query.where(OutboundMessage.recipient == to)
    if (status := request.args.get("status")) is not None:
        if not status.isdigit() or int(status) not in statuses.Status._value2member_map_:
            raise ApiError(422, "invalid", "status must be a known status code", "status")
        query = query.where(OutboundMessage.status == int(status))
    if batch := request.args.get("batch"):
        query = query.where(OutboundMessage.batch == batch)
    if since := request.args.get("since"):
        query = query.where(OutboundMessage.created_at >= moment(since, "since"))
    rows, cursor = page(query, OutboundMessage.id)
    return {"messages": with_history(rows), "next": cursor}


@route(
    "GET", "/messages/<int:message_id>", role="viewer", summary="A message with its history", response=shapes.MESSAGE
)
def get_message(message_id: int) -> dict:
    return with_history([own_message(message_id)])[0]


@route(
    "POST",
    "/messages/<int:message_id>/cancel",
    role="user",
    summary="Cancel a message not yet claimed for sending (then 409)",
    response=shapes.MESSAGE,
)
def cancel_message(message_id: int) -> dict:
    row = own_message(message_id)
    if not cancel(row.id):
        raise ApiError(409, "conflict", f"message {message_id} is already {statuses.name(row.status)}")
    return with_history([own_message(message_id)])[0]


@route(
    "GET",
    "/inbound",
    role="viewer",
    summary="Inbound messages to the account's numbers",
    query=shapes.PAGING,
    response=shapes.listing("inbound", shapes.INBOUND),
)
def list_inbound() -> dict:
    numbers = VirtualNumber.select(VirtualNumber.id).where(VirtualNumber.account == g.account.id)
    rows, cursor = page(InboundMessage.select().where(InboundMessage.number.in_(numbers)), InboundMessage.id)
    return {"inbound": [inbound_json(row) for row in rows], "next": cursor}
