"""GDPR erase of one phone: its contact and message texts go, its block entry stays.

The block entry is kept on purpose (ICO guidance: suppress, don't delete), so that an erased person is
never messaged again by mistake; it holds only the phone, the source and the time.
"""

from __future__ import annotations

from typing import Any

from models import Account, BlockEntry, Contact, InboundMessage, OutboundMessage, VirtualNumber, db

ERASED = "[erased]"


def erase(account: Account, phone: str) -> dict[str, Any]:
    with db.atomic():
        contacts = Contact.delete().where((Contact.account == account) & (Contact.phone == phone)).execute()
        outbound = (
            OutboundMessage.update(body=ERASED)
            .where((OutboundMessage.account == account) & (OutboundMessage.recipient == phone))
            .execute()
        )
        numbers = VirtualNumber.select(VirtualNumber.id).where(VirtualNumber.account == account)
        inbound = (
            InboundMessage.update(body=ERASED)
            .where((InboundMessage.number.in_(numbers)) & (InboundMessage.sender == phone))
            .execute()
        )
        blocked = BlockEntry.select().where((BlockEntry.account == account) & (BlockEntry.phone == phone)).exists()
    return {"phone": phone, "contacts": contacts, "messages": outbound + inbound, "blocked": blocked}
