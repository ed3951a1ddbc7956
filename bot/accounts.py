"""Accounts: one-line names, and the billing that belongs to the operator (SPEC §11).

The operator (CLI, operator API keys) sets `billing_mode`, `price_per_segment`, `nanp_campaign` and
tops balances up; a business key changing any of them gets a 403 naming the field.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from bot import audit
from models import Account, LedgerEntry, db

OPERATOR_FIELDS = ("billing_mode", "price_per_segment", "nanp_campaign")
MAX_TOPUP = 100_000_000  # minor units in one top-up (1,000,000.00 in a two-decimal currency)
LINE_BREAKING = {"Cc", "Zl", "Zp"}  # control characters (newline, tab, NUL, ...) and line/paragraph separators


class BadName(ValueError):
    pass


def check_name(name: str) -> str:
    """The name trimmed; BadName unless it is one non-blank line without control characters."""
    if any(unicodedata.category(char) in LINE_BREAKING for char in name):
        raise BadName("the account name must be one line without control characters")
    if not name.strip():
        raise BadName("the account name must not be blank")
    return name.strip()


def update(account: Account, changes: dict[str, Any]) -> Account:
    """Write `changes` to the account (the API's, the operator's and the CLI's settings); audited."""
    with db.atomic():
        before = audit.fields(Account.get_by_id(account.id))
        if changes:
            Account.update(**changes).where(Account.id == account.id).execute()
        after = Account.get_by_id(account.id)
        audit.changed("account.update", after, before)
    return after


def topup(account: Account, amount: int, reference: str = "") -> LedgerEntry:
    """Add `amount` minor units to the balance with a ledger row `topup` keeping the payment reference."""
    if not 1 <= amount <= MAX_TOPUP:
        raise ValueError(f"a top-up is 1 to {MAX_TOPUP} minor units")
    with db.atomic():
        Account.update(balance=Account.balance + amount).where(Account.id == account.id).execute()
        entry = LedgerEntry.create(account=account.id, kind="topup", amount=amount, reference=reference)
        balance = Account.select(Account.balance).where(Account.id == account.id).scalar()
        after = {"balance": balance, "amount": amount, "reference": reference, "ledger_id": entry.id}
        audit.record("account.topup", account, {"balance": balance - amount}, after)
        return entry
