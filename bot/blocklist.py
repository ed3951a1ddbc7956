"""The account's block list, shared by every service: after STOP nothing more is sent to the phone.

Each change writes its consent ledger event (bot/consent.py) and, when a user, key or the CLI made it,
its audit row (bot/audit.py) in the same transaction.
"""

from __future__ import annotations

from peewee import IntegrityError

from bot import audit, consent
from bot.consent import Evidence
from models import Account, BlockEntry, db

NO_EVIDENCE = Evidence()  # the source alone (the unsubscribe link)


def block(account: Account, phone: str, source: str, topic: str = "", evidence: Evidence = NO_EVIDENCE) -> bool:
    """Opt a phone out of `topic` ("": everything); False when it was already (the first source is kept)."""
    try:
        with db.atomic():
            BlockEntry.create(account=account, phone=phone, source=source, topic=topic)
            consent.record(account, phone, "opt_out", topic, source, evidence)
            audit.record(
                "blocklist.add", audit.blocked_phone(account.id, phone), None, entry_fields(source, topic), phone=phone
            )
    except IntegrityError:
        return False
    return True


def unblock(account: Account, phone: str, source: str, evidence: Evidence = NO_EVIDENCE) -> bool:
    """Lift everything the phone opted out of (START); one opt-in event for everything."""
    entries = (BlockEntry.account == account) & (BlockEntry.phone == phone)
    with db.atomic():
        lifted = list(BlockEntry.select(BlockEntry.source, BlockEntry.topic).where(entries))
        if not lifted or not BlockEntry.delete().where(entries).execute():
            return False
        consent.record(account, phone, "opt_in", "", source, evidence)
        for entry in lifted:
            audited_removal(account, phone, entry)
    return True


def unblock_topic(account: Account, phone: str, topic: str, source: str, evidence: Evidence = NO_EVIDENCE) -> bool:
    """Lift one entry: the opt-out of `topic` ("": the opt-out of everything), leaving the others."""
    entry_of_topic = (BlockEntry.account == account) & (BlockEntry.phone == phone) & (BlockEntry.topic == topic)
    with db.atomic():
        entry = BlockEntry.get_or_none(entry_of_topic)
        if entry is None or not BlockEntry.delete().where(entry_of_topic).execute():
            return False
        consent.record(account, phone, "opt_in", topic, source, evidence)
        audited_removal(account, phone, entry)
    return True


def entry_fields(source: str, topic: str) -> dict[str, str]:
    return {"source": source, "topic": topic} if topic else {"source": source}


def audited_removal(account: Account, phone: str, entry: BlockEntry) -> None:
    """The audit row of a lifted entry (written only when a user or key acts: a phone's START is not)."""
    target = audit.blocked_phone(account.id, phone)
    audit.record("blocklist.remove", target, entry_fields(entry.source, entry.topic), None, phone=phone)


def listed(account: Account, phone: str) -> bool:
    """Whether the phone has any opt-out of the account (everything or a topic)."""
    return BlockEntry.select().where((BlockEntry.account == account) & (BlockEntry.phone == phone)).exists()
