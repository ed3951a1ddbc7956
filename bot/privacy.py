"""GDPR erase of one phone: its contact, message texts, survey answers, conversation state and waiting
message parts go; its block entries and its consent ledger stay.

The audit log keeps the proof of what was done to the phone (block list changes, this erase) with the
phone masked to its last four digits (bot/audit.py `redact_phone`).

The block entry is kept on purpose (ICO guidance: suppress, don't delete), so that an erased person is
never messaged again by mistake; it holds only the phone, the topic, the source and the time. The consent
ledger (ConsentEvent) is kept whole, the text of each opt-out or opt-in SMS included: it is the proof that
the account honoured the person's wish, which the business must be able to show a regulator or a court
(GDPR art. 17(3)(b) and (e)); it holds nothing else of the person, and the erase answer says how many
events were kept. Parts of a concatenated SMS know their carrier and sender but not their number, so the
parts of that sender on the carriers serving the account's numbers go.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from bot import audit, blocklist, consent, phones
from models import (
    Account,
    Contact,
    Conversation,
    InboundMessage,
    InboundPart,
    OutboundMessage,
    VirtualNumber,
    db,
)

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
        conversations = (
            Conversation.delete().where((Conversation.number.in_(numbers)) & (Conversation.phone == phone)).execute()
        )
        parts = erase_parts(account, phone)
        blocked = blocklist.listed(account, phone)
        kept = consent.history(account, phone).count()
        erased = {
            "phone": phone,
            "contacts": contacts,
            "messages": outbound + inbound,
            "conversations": conversations,
            "parts": parts,
            "blocked": blocked,
            "consent_events": kept,
        }
        audit.redact_phone(account, phone)
        hidden = phones.mask(phone)
        audit.record(
            "privacy.erase", audit.blocked_phone(account.id, hidden), None, {**erased, "phone": hidden}, phone=hidden
        )
    return erased


def erase_parts(account: Account, phone: str) -> int:
    """Delete the waiting parts of that sender on the account's carriers (stored as the carrier wrote it)."""
    carriers = VirtualNumber.select(VirtualNumber.carrier).where(VirtualNumber.account == account)
    waiting = InboundPart.select(InboundPart.id, InboundPart.sender).where(InboundPart.carrier.in_(carriers))
    ids = [part.id for part in waiting if same_phone(part.sender, phone)]
    return InboundPart.delete().where(InboundPart.id.in_(ids)).execute() if ids else 0


def same_phone(raw: str, phone: str) -> bool:
    try:
        return phones.to_e164(raw, current_app.config["DEFAULT_REGION"]) == phone
    except phones.PhoneError:
        return raw.strip() == phone
