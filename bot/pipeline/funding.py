"""SPEC §5 step 2, funding, for a chunk of messages: one locked read and one debit per paying account.

It runs after the chunk's messages are written, on those written only: a member whose message an
earlier run already wrote (the INSERT skipped it) is never charged twice. Its ledger lines are written
with the chunk's events (`outbound.write_history`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.db import for_update
from bot.pipeline.statuses import Status
from bot.pipeline.validation import Rejected
from bot.prepared import Prepared
from models import Account

if TYPE_CHECKING:
    from bot.pipeline.outbound import Staged


def fund(written: list[Staged]) -> list[Staged]:
    """SPEC §5 step 2 for the written messages that passed validation, in order; returns those not funded.

    An invoice account accrues a line per message (post-invoicing takes priority over any balance). A
    balance account is debited the chunk's total by one conditional UPDATE when its balance covers it
    (the common case: one statement). When it does not, its row is read locked, its messages are funded
    one by one while the balance covers them and the others are 402, exactly as a debit per message
    would leave them, and the funded total is taken in one conditional debit, so the balance never goes
    below zero.
    """
    due = [item for item in written if item.rejection is None and item.draft.account.billing_mode != "invoice"]
    totals: dict[int, int] = {}
    for item in due:
        totals[item.draft.account.id] = totals.get(item.draft.account.id, 0) + item.message.price
    short = {account_id for account_id in sorted(totals) if not debit(account_id, totals[account_id])}
    if not short:
        return []
    left = balances(short)
    funded: dict[int, int] = {}
    unfunded = []
    for item in due:
        account, price = item.draft.account, item.message.price
        if account.id not in short:
            continue
        if left[account.id] < price:
            item.rejection = Rejected(Status.INSUFFICIENT_FUNDS, f"price {price}, balance {left[account.id]}")
            item.message.status = Status.INSUFFICIENT_FUNDS
            unfunded.append(item)
            continue
        left[account.id] -= price
        funded[account.id] = funded.get(account.id, 0) + price
    for account_id, total in funded.items():
        if not debit(account_id, total):  # the row is locked (PostgreSQL) or the write transaction serial (SQLite)
            raise RuntimeError(f"account {account_id}: balance changed under its lock")
    return unfunded


DEBIT = Prepared(
    lambda total, account_id, covered: Account.update(balance=Account.balance - total).where(
        (Account.id == account_id) & (Account.balance >= covered)
    ),
    [Account.balance, Account.id, Account.balance],
)


def debit(account_id: int, total: int) -> bool:
    """Take `total` from the account's balance if it covers it (the row stays locked until the commit)."""
    return total == 0 or DEBIT.execute(total, account_id, total).rowcount == 1


def balances(account_ids: set[int]) -> dict[int, int]:
    """The accounts' balances, their rows locked until the commit on PostgreSQL (one query).

    The lock is the one the debit's UPDATE takes (NO KEY UPDATE): a plain FOR UPDATE would wait on the
    key-share lock that every concurrent INSERT of a message or ledger row of the account holds, and
    two such transactions deadlock.
    """
    if not account_ids:
        return {}
    query = Account.select(Account.id, Account.balance).where(Account.id.in_(account_ids)).order_by(Account.id)
    return dict(for_update(query, "FOR NO KEY UPDATE").tuples())
