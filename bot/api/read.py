"""Read-only views of what the bot did: contacts, groups, block list, inbound and outbound messages."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from flask import Response, g, jsonify, request
from peewee import JOIN, fn

from bot import statuses
from bot.api import bp, requires
from bot.api import serialize as out
from bot.api.paging import int_arg, page
from bot.errors import ApiError
from models import (
    BlockEntry,
    Contact,
    Group,
    GroupMember,
    InboundMessage,
    MessageEvent,
    OutboundMessage,
    VirtualNumber,
)


@bp.get("/contacts")
@requires("viewer")
def list_contacts() -> Response:
    query = Contact.select().where(Contact.account == g.account)
    if phone := request.args.get("phone"):
        query = query.where(Contact.phone == phone)
    if group_name := request.args.get("group"):
        members = (
            GroupMember.select(GroupMember.contact)
            .join(Group)
            .where((Group.account == g.account) & (Group.name_key == group_name.casefold()))
        )
        query = query.where(Contact.id.in_(members))
    if text := request.args.get("q"):
        query = query.where(
            fn.LOWER(Contact.first_name).contains(text.casefold())
            | fn.LOWER(Contact.last_name).contains(text.casefold())
            | Contact.phone.contains(text)
        )
    rows, cursor = page(query, Contact.id)
    return jsonify(contacts=[out.contact(row) for row in rows], next=cursor)


@bp.get("/groups")
@requires("viewer")
def list_groups() -> Response:
    size = fn.COUNT(GroupMember.id).alias("size")
    query = (
        Group.select(Group, size)
        .join(GroupMember, join_type=JOIN.LEFT_OUTER)
        .where(Group.account == g.account)
        .group_by(Group.id)
    )
    rows, cursor = page(query, Group.id)
    return jsonify(groups=[out.group(row, row.size) for row in rows], next=cursor)


@bp.get("/blocklist")
@requires("viewer")
def list_blocklist() -> Response:
    rows, cursor = page(BlockEntry.select().where(BlockEntry.account == g.account), BlockEntry.id)
    return jsonify(blocklist=[out.block_entry(row) for row in rows], next=cursor)


@bp.get("/inbound")
@requires("viewer")
def list_inbound() -> Response:
    numbers = VirtualNumber.select(VirtualNumber.id).where(VirtualNumber.account == g.account)
    rows, cursor = page(InboundMessage.select().where(InboundMessage.number.in_(numbers)), InboundMessage.id)
    return jsonify(inbound=[out.inbound(row) for row in rows], next=cursor)


@bp.get("/messages")
@requires("viewer")
def list_messages() -> Response:
    direction = request.args.get("direction", "outbound")
    if direction != "outbound":
        raise ApiError(422, "invalid", "direction: only outbound is listed here; inbound is at /inbound", "direction")
    query = OutboundMessage.select().where(OutboundMessage.account == g.account)
    if to := request.args.get("to"):
        query = query.where(OutboundMessage.recipient == to)
    status = int_arg("status")
    if status is not None:
        if status not in statuses.Status._value2member_map_:
            raise ApiError(422, "invalid", "status must be a known status code", "status")
        query = query.where(OutboundMessage.status == status)
    if since := request.args.get("since"):
        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            raise ApiError(422, "invalid", "since must be an ISO-8601 time", "since") from None
        query = query.where(OutboundMessage.created_at >= moment)
    rows, cursor = page(query, OutboundMessage.id)
    history: dict[int, list[MessageEvent]] = defaultdict(list)
    events = MessageEvent.select().where(MessageEvent.message.in_([row.id for row in rows]))
    for event in events.order_by(MessageEvent.at, MessageEvent.id):
        history[event.message_id].append(event)
    return jsonify(messages=[out.message(row, history[row.id]) for row in rows], next=cursor)


@bp.get("/messages/<int:message_id>")
@requires("viewer")
def get_message(message_id: int) -> Response:
    row = OutboundMessage.get_or_none((OutboundMessage.id == message_id) & (OutboundMessage.account == g.account))
    if row is None:
        raise ApiError(404, "not_found", f"no message {message_id}")
    return jsonify(out.message(row))
