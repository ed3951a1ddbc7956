"""Consent: only the phone lifts its own opt-out, and confirmations to one phone are capped.

A block entry the phone caused itself (STOP, the unsubscribe link, a carrier's opt-out signal) can only
be lifted by the phone (START); the business may delete only the entries it added (API, manual, import).
Opt-out and opt-in confirmations to one phone are capped at CONFIRMATIONS_PER_DAY (3) per 24 hours per
account, so STOP/START cycles cannot buy unlimited messages; the block list still changes every time.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from models import Account, BlockEntry, InboundMessage, OutboundMessage, utcnow

PHONE_SOURCES = frozenset({"keyword", "link", "carrier"})  # the phone's own opt-out
CONFIRMING_ACTIONS = ("opt-out", "opt-in")  # inbound actions whose reply is a confirmation


def lifted_only_by_phone(entry: BlockEntry) -> bool:
    return entry.source in PHONE_SOURCES


def confirmations_capped(account: Account, phone: str) -> bool:
    """Whether the phone had its day's confirmations: replies to its opt-outs and opt-ins in 24 h."""
    since = utcnow() - timedelta(hours=24)
    sent = (
        OutboundMessage.select()
        .join(InboundMessage, on=OutboundMessage.reply_to == InboundMessage.id)
        .where(
            (OutboundMessage.account == account)
            & (OutboundMessage.recipient == phone)
            & (OutboundMessage.created_at >= since)
            & InboundMessage.action.in_(CONFIRMING_ACTIONS)
        )
        .count()
    )
    return sent >= current_app.config["CONFIRMATIONS_PER_DAY"]


def capped_outcome(outcome: str) -> str:
    return f"{outcome}; no confirmation ({current_app.config['CONFIRMATIONS_PER_DAY']} sent in 24 h)"
