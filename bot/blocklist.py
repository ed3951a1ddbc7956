"""The account's block list, shared by every service: after STOP nothing more is sent to the phone."""

from __future__ import annotations

from peewee import IntegrityError

from bot.pipeline.validation import is_blocked
from models import Account, BlockEntry, db

SOURCES = ("keyword", "link", "api", "manual", "carrier")


def block(account: Account, phone: str, source: str) -> bool:
    """Put a phone on the block list; False when it was there already (the first source is kept)."""
    try:
        with db.atomic():
            BlockEntry.create(account=account, phone=phone, source=source)
    except IntegrityError:
        return False
    return True


def unblock(account: Account, phone: str) -> bool:
    return bool(BlockEntry.delete().where((BlockEntry.account == account) & (BlockEntry.phone == phone)).execute())


__all__ = ["SOURCES", "block", "is_blocked", "unblock"]
