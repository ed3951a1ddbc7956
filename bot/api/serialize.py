"""The JSON shapes of SPEC §7."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import statuses
from models import BlockEntry, Contact, Group, GroupMember, InboundMessage, MessageEvent, OutboundMessage


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") + "Z" if value else None


def contact(row: Contact) -> dict[str, Any]:
    groups = Group.select(Group.name).join(GroupMember).where(GroupMember.contact == row).order_by(Group.name_key)
    return {
        "id": row.id,
        "phone": row.phone,
        "first_name": row.first_name,
        "last_name": row.last_name,
        "groups": [group.name for group in groups],
        "fields": row.fields,
    }


def group(row: Group, size: int | None = None) -> dict[str, Any]:
    if size is None:
        size = GroupMember.select().where(GroupMember.group == row).count()
    return {"id": row.id, "name": row.name, "size": size}


def block_entry(row: BlockEntry) -> dict[str, Any]:
    return {"phone": row.phone, "source": row.source, "created_at": iso(row.created_at)}


def inbound(row: InboundMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "from": row.sender,
        "to": row.recipient,
        "text": row.body,
        "received_at": iso(row.received_at),
        "keyword": row.keyword,
        "action": row.action,
    }


def event(row: MessageEvent) -> dict[str, Any]:
    return {"code": row.code, "name": statuses.name(row.code), "at": iso(row.at), "detail": row.detail}


def message(row: OutboundMessage, events: list[MessageEvent] | None = None) -> dict[str, Any]:
    if events is None:
        events = list(row.events.order_by(MessageEvent.at, MessageEvent.id))
    return {
        "id": row.id,
        "direction": "outbound",
        "from": row.sender,
        "to": row.recipient,
        "text": row.body,
        "encoding": row.encoding,
        "segments": row.segments,
        "price": row.price,
        "status": row.status,
        "status_name": statuses.name(row.status),
        "status_group": statuses.group(row.status),
        "legacy_status": statuses.legacy(row.status),
        "events": [event(e) for e in events],
        "reply_to": row.reply_to_id,
        "created_at": iso(row.created_at),
    }
