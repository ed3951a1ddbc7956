"""Consent: who opted out of what, the ledger that proves it, and the rules on lifting an opt-out.

A phone opts out of everything (plain STOP, the unsubscribe link, a carrier's opt-out signal) or of one
topic of the account (`STOP OFFERS`, or a topic's own word). A send names its topic or none; `opted_out`
is the one check, for many phones at once: a phone opted out of everything gets nothing but its
confirmation, one opted out of a topic gets nothing of that topic (a send without a topic is not one).

Every change of the block list writes a ConsentEvent in the same transaction (bot/blocklist.py): kind,
topic, source, and the evidence (the phone's own text and inbound id, or the business's user or key). A
repeat that changes nothing writes no event: the first one is the proof.

A block entry the phone caused itself (STOP, the unsubscribe link, a carrier's opt-out signal) can only
be lifted by the phone (START); the business may delete only the entries it added (API, manual, import).
Opt-out and opt-in confirmations to one phone are capped at CONFIRMATIONS_PER_DAY (3) per 24 hours per
account, so STOP/START cycles cannot buy unlimited messages; the block list still changes every time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from flask import current_app
from peewee import ModelSelect

from bot.prepared import Prepared
from models import Account, BlockEntry, ConsentEvent, InboundMessage, OutboundMessage, utcnow

PHONE_SOURCES = frozenset({"keyword", "link", "carrier"})  # the phone's own opt-out
CONFIRMING_ACTIONS = ("opt-out", "opt-in")  # inbound actions whose reply is a confirmation
LEDGER_SOURCES = {  # a block entry's source -> the ledger's
    "keyword": "keyword",
    "link": "link",
    "carrier": "carrier",
    "api": "business",
    "manual": "business",
    "import": "import",
}


@dataclass(frozen=True)
class Evidence:
    """What proves a consent change: the phone's message, or who of the business made it."""

    text: str = ""
    inbound: InboundMessage | None = None
    actor: str = ""  # "user:<email>" | "key:<prefix>"


@lru_cache(maxsize=64)
def opted_out_query(phones: int, topics: int) -> Prepared:
    """The block-list read for `phones` phones and `topics` topics, its SQL built once per shape (a
    reply's one phone, a group chunk's thousand): every send runs it."""
    return Prepared(
        lambda account, *values: (
            BlockEntry.select(BlockEntry.phone)
            .where(
                (BlockEntry.account == account)
                & BlockEntry.phone.in_(values[:phones])
                & BlockEntry.topic.in_(values[phones:])
            )
            .distinct()
        ),
        [BlockEntry.account, *[BlockEntry.phone] * phones, *[BlockEntry.topic] * topics],
    )


def opted_out(account: Account | int, phones: Iterable[str], topic: str | None = None) -> set[str]:
    """The phones (E.164) that must get nothing of `topic` (None: a send without one), in one query."""
    wanted = list(dict.fromkeys(phones))
    if not wanted:
        return set()
    topics = ["", topic] if topic else [""]
    cursor = opted_out_query(len(wanted), len(topics)).execute(account, *wanted, *topics)
    return {phone for (phone,) in cursor.fetchall()}


def record(account: Account, phone: str, kind: str, topic: str, source: str, evidence: Evidence) -> ConsentEvent:
    """Append a ledger event; call it inside the transaction that changes the block list."""
    return ConsentEvent.create(
        account=account,
        phone=phone,
        kind=kind,
        topic=topic or None,
        source=LEDGER_SOURCES[source],
        text=evidence.text,
        inbound=evidence.inbound,
        actor=evidence.actor,
    )


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


def history(account: Account | int, phone: str) -> ModelSelect:
    """A phone's consent events in the account (the API pages them, the console shows them), newest first."""
    return (
        ConsentEvent.select()
        .where((ConsentEvent.account == account) & (ConsentEvent.phone == phone))
        .order_by(ConsentEvent.id.desc())
    )
