"""The JSON shapes of SPEC §7."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.pipeline import segments, statuses
from models import (
    Account,
    ApiKey,
    BlockEntry,
    Contact,
    Group,
    GroupMember,
    InboundMessage,
    Keyword,
    MessageEvent,
    OutboundMessage,
    User,
    VirtualNumber,
)


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") + "Z" if value else None


def group_names(contact_ids: list[int]) -> dict[int, list[str]]:
    """The group names of many contacts in one query, sorted case-insensitively."""
    names: dict[int, list[str]] = {contact_id: [] for contact_id in contact_ids}
    rows = (
        GroupMember.select(GroupMember.contact, Group.name)
        .join(Group)
        .where(GroupMember.contact.in_(contact_ids))
        .order_by(Group.name_key)
        .tuples()
    )
    for contact_id, name in rows:
        names[contact_id].append(name)
    return names


def contacts(rows: list[Contact]) -> list[dict[str, Any]]:
    names = group_names([row.id for row in rows])
    return [
        {
            "id": row.id,
            "phone": row.phone,
            "first_name": row.first_name,
            "last_name": row.last_name,
            "groups": names[row.id],
            "fields": row.fields,
        }
        for row in rows
    ]


def contact(row: Contact) -> dict[str, Any]:
    return contacts([row])[0]


def group(row: Group, size: int | None = None) -> dict[str, Any]:
    if size is None:
        size = GroupMember.select().where(GroupMember.group == row).count()
    return {"id": row.id, "name": row.name, "size": size}


def block_entry(row: BlockEntry) -> dict[str, Any]:
    return {"phone": row.phone, "topic": row.topic or None, "source": row.source, "created_at": iso(row.created_at)}


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


def message(row: OutboundMessage, events: list[MessageEvent] | None = None, clicks: int = 0) -> dict[str, Any]:
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
        "clicks": clicks,
        "created_at": iso(row.created_at),
    }


def account(row: Account) -> dict[str, Any]:
    return {
        "name": row.name,
        "billing_mode": row.billing_mode,
        "balance": row.balance,
        "currency": row.currency,
        "price_per_segment": row.price_per_segment,
        "stop_service_enabled": row.stop_service_enabled,
        "nanp_campaign": row.nanp_campaign,
        "quiet_hours": row.quiet_hours,
        "status_callback_url": row.status_callback_url,
        "require_two_factor": row.require_two_factor,
        "timezone": row.timezone,
    }


def user(row: User) -> dict[str, Any]:
    return {
        "id": row.id,
        "email": row.email,
        "role": row.role,
        "active": row.active,
        "password_set": bool(row.password_hash),
    }


def api_key(row: ApiKey, secret: str | None = None) -> dict[str, Any]:
    shown = {
        "id": row.id,
        "label": row.label,
        "role": row.role,
        "created_at": iso(row.created_at),
        "revoked_at": iso(row.revoked_at),
    }
    return {**shown, "key": secret} if secret else shown


def number(row: VirtualNumber) -> dict[str, Any]:
    return {
        "number": row.number,
        "carrier": row.carrier.name,
        "save_enabled": row.save_enabled,
        "stop_enabled": row.stop_enabled,
        "help_text": row.help_text,
        "default_reply": row.default_reply,
        "email_copy": row.email_copy,
        "forward_url": row.forward_url,
    }


def keyword(row: Keyword) -> dict[str, Any]:
    counted = segments.count_segments(row.reply)
    return {
        "word": row.word,
        "aliases": row.aliases,
        "action": row.action,
        "reply": row.reply,
        "group": row.group_name,
        "url": row.url,
        "flow": row.flow,
        "reply_segments": {"encoding": counted.encoding, "segments": counted.segments, "units": counted.units},
    }
