"""The account's block list, shared by every service: after STOP nothing more is sent to the phone.

Each change writes its consent ledger event in the same transaction (bot/consent.py).
"""

from __future__ import annotations

from peewee import IntegrityError

from bot import consent
from bot.consent import Evidence
from models import Account, BlockEntry, db

SOURCES = ("keyword", "link", "api", "manual", "carrier", "import")
NO_EVIDENCE = Evidence()  # the source alone (the unsubscribe link)


def block(account: Account, phone: str, source: str, topic: str = "", evidence: Evidence = NO_EVIDENCE) -> bool:
    """Opt a phone out of `topic` ("": everything); False when it was already (the first source is kept)."""
    try:
        with db.atomic():
            BlockEntry.create(account=account, phone=phone, source=source, topic=topic)
            consent.record(account, phone, "opt_out", topic, source, evidence)
    except IntegrityError:
        return False
    return True


def unblock(account: Account, phone: str, source: str, evidence: Evidence = NO_EVIDENCE) -> bool:
    """Lift everything the phone opted out of (START); one opt-in event for everything."""
    with db.atomic():
        lifted = BlockEntry.delete().where((BlockEntry.account == account) & (BlockEntry.phone == phone)).execute()
        if lifted:
            consent.record(account, phone, "opt_in", "", source, evidence)
    return bool(lifted)


def unblock_topic(account: Account, phone: str, topic: str, source: str, evidence: Evidence = NO_EVIDENCE) -> bool:
    """Lift one entry: the opt-out of `topic` ("": the opt-out of everything), leaving the others."""
    with db.atomic():
        lifted = (
            BlockEntry.delete()
            .where((BlockEntry.account == account) & (BlockEntry.phone == phone) & (BlockEntry.topic == topic))
            .execute()
        )
        if lifted:
            consent.record(account, phone, "opt_in", topic, source, evidence)
    return bool(lifted)


def listed(account: Account, phone: str) -> bool:
    """Whether the phone has any opt-out of the account (everything or a topic)."""
    return BlockEntry.select().where((BlockEntry.account == account) & (BlockEntry.phone == phone)).exists()
