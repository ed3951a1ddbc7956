"""The dashboard's numbers, each one query scoped to the account (dates are UTC days)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from peewee import fn

from bot.pipeline import statuses
from models import Account, BlockEntry, InboundMessage, LedgerEntry, OutboundMessage, VirtualNumber, utcnow

DAYS = 30


@dataclass(frozen=True)
class DayRate:
    day: date
    delivered: int
    final: int

    @property
    def rate(self) -> float | None:
        """Delivered to the handset out of the messages with a final status; None without any."""
        return self.delivered / self.final if self.final else None


def day_of(value: object) -> date:
    """fn.DATE gives a date on PostgreSQL; on SQLite peewee reads it back through the column as a datetime."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def window(days: int = DAYS) -> list[date]:
    today = utcnow().date()
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def money_to_date(account: Account) -> tuple[str, int]:
    """("balance", balance) or ("invoice", this month's invoiced amount less refunds so far)."""
    if account.billing_mode != "invoice":
        return "balance", account.balance
    now = utcnow()
    start = datetime(now.year, now.month, 1)
    lines = LedgerEntry.select().where(
        (LedgerEntry.account == account.id) & (LedgerEntry.kind == "invoice") & (LedgerEntry.at >= start)
    )
    refunded = LedgerEntry.select(LedgerEntry.message).where(
        (LedgerEntry.kind == "refund") & LedgerEntry.message.in_(lines.select(LedgerEntry.message))
    )
    billed = lines.where(LedgerEntry.message.not_in(refunded))
    return "invoice", int(billed.select(fn.COALESCE(fn.SUM(LedgerEntry.amount), 0)).scalar() or 0)


def today_by_group(account: Account) -> dict[str, int]:
    start = datetime.combine(utcnow().date(), datetime.min.time())
    rows = (
        OutboundMessage.select(OutboundMessage.status, fn.COUNT(OutboundMessage.id))
        .where((OutboundMessage.account == account.id) & (OutboundMessage.created_at >= start))
        .group_by(OutboundMessage.status)
        .tuples()
    )
    counts = {name: 0 for name in statuses.GROUPS.values()}
    for code, count in rows:
        counts[statuses.group(code)] += count
    return counts


def delivery_rates(account: Account, days: int = DAYS) -> list[DayRate]:
    first = datetime.combine(window(days)[0], datetime.min.time())
    day = fn.DATE(OutboundMessage.created_at)
    rows = (
        OutboundMessage.select(day, OutboundMessage.status, fn.COUNT(OutboundMessage.id))
        .where((OutboundMessage.account == account.id) & (OutboundMessage.created_at >= first))
        .group_by(day, OutboundMessage.status)
        .tuples()
    )
    delivered: Counter[date] = Counter()
    final: Counter[date] = Counter()
    for raw_day, code, count in rows:
        if statuses.is_final(code):
            final[day_of(raw_day)] += count
            if code == statuses.Status.DELIVERED_TO_HANDSET:
                delivered[day_of(raw_day)] += count
    return [DayRate(d, delivered[d], final[d]) for d in window(days)]


def opt_outs(account: Account, days: int = DAYS) -> list[tuple[date, int]]:
    first = datetime.combine(window(days)[0], datetime.min.time())
    day = fn.DATE(BlockEntry.created_at)
    rows = (
        BlockEntry.select(day, fn.COUNT(BlockEntry.id))
        .where((BlockEntry.account == account.id) & (BlockEntry.created_at >= first))
        .group_by(day)
        .tuples()
    )
    counts = {day_of(d): n for d, n in rows}
    return [(d, counts.get(d, 0)) for d in window(days)]


def top_keywords(account: Account, days: int = DAYS, limit: int = 8) -> list[tuple[str, int]]:
    first = utcnow() - timedelta(days=days)
    numbers = VirtualNumber.select(VirtualNumber.id).where(VirtualNumber.account == account.id)
    count = fn.COUNT(InboundMessage.id)
    rows = (
        InboundMessage.select(InboundMessage.keyword, count)
        .where(InboundMessage.number.in_(numbers) & (InboundMessage.received_at >= first))
        .where(InboundMessage.keyword != "")
        .group_by(InboundMessage.keyword)
        .order_by(count.desc(), InboundMessage.keyword)
        .limit(limit)
        .tuples()
    )
    return [(word.upper(), n) for word, n in rows]
