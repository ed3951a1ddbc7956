"""The account's block list, shared by every service: after STOP nothing more is sent to the phone."""

from __future__ import annotations

from peewee import IntegrityError

from bot import audit
from bot.pipeline.outbound import is_blocked
from models import Account, BlockEntry, db

SOURCES = ("keyword", "link", "api", "manual", "carrier")


def block(account: Account, phone: str, source: str) -> bool:
    """Put a phone on the block list; False when it was there already (the first source is kept)."""
    try:
        with db.atomic():
            BlockEntry.create(account=account, phone=phone, source=source)
            target = audit.blocked_phone(account.id, phone)
            audit.record("blocklist.add", target, None, {"source": source}, phone=phone)
    except IntegrityError:
        return False
    return True


def unblock(account: Account, phone: str) -> bool:
    """Lift a phone's block; False when it was not blocked. The entry's source goes to the audit log."""
    with db.atomic():
        entry = BlockEntry.get_or_none((BlockEntry.account == account) & (BlockEntry.phone == phone))
        if entry is None or not BlockEntry.delete().where(BlockEntry.id == entry.id).execute():
            return False
        target = audit.blocked_phone(account.id, phone)
        audit.record("blocklist.remove", target, {"source": entry.source}, None, phone=phone)
    return True


__all__ = ["SOURCES", "block", "is_blocked", "unblock"]
