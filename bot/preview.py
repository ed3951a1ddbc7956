"""What a send would cost before it is sent: encoding, the characters that force UCS-2, segments, price.

Shared by `POST /api/v1/messages/preview` and the console's send form. The price is the segments of the
text (after the same NFC normalisation as the pipeline) times the account's price per segment, times the
recipients; with no recipient given it is the price of one message. `{unsubscribe_url}` is counted as
written: each recipient's own link is longer, so a preview of such a text is a lower bound. With
`track_links` each URL is counted as the short link it becomes (bot/links.py), as the pipeline prices it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import links
from bot.pipeline.segments import GSM_BASIC, GSM_EXTENSION, count_segments, normalize_body
from models import Account, GroupMember


@dataclass(frozen=True)
class Preview:
    encoding: str
    segments: int
    characters: int
    units: int
    ucs2_characters: list[str]
    price: int
    recipients: int
    balance_after: int | None  # None for an invoice account (nothing is debited)

    def as_json(self) -> dict:
        return {
            "encoding": self.encoding,
            "segments": self.segments,
            "characters": self.characters,
            "ucs2_characters": self.ucs2_characters,
            "price": self.price,
            "recipients": self.recipients,
            "balance_after": self.balance_after,
        }


def ucs2_characters(text: str) -> list[str]:
    """The distinct characters outside the GSM-7 tables, in the order they first appear."""
    seen: dict[str, None] = {}
    for ch in normalize_body(text):
        if ch not in GSM_BASIC and ch not in GSM_EXTENSION:
            seen.setdefault(ch, None)
    return list(seen)


def group_size(group_id: int) -> int:
    return GroupMember.select().where(GroupMember.group == group_id).count()


def preview(account: Account, text: str, recipients: int = 1, track_links: bool = False) -> Preview:
    if track_links:
        text = links.as_sent(normalize_body(text))
    counted = count_segments(text)
    price = counted.segments * account.price_per_segment * recipients
    balance_after = None if account.billing_mode == "invoice" else account.balance - price
    return Preview(
        encoding=counted.encoding,
        segments=counted.segments,
        characters=len(normalize_body(text)),
        units=counted.units,
        ucs2_characters=ucs2_characters(text),
        price=price,
        recipients=recipients,
        balance_after=balance_after,
    )
