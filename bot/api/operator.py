"""The operator's API (SPEC §11): accounts' billing and top-ups, for operator keys only.

An operator key (`smsbot apikey create --operator`) belongs to no account; business keys get a 403 here,
and an operator key gets a 403 on every business route. Accounts are addressed by their unique name.
"""

from __future__ import annotations

from typing import Any

from bot import accounts
from bot.api import shapes
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import account as business_account_json
from bot.api.serialize import iso
from bot.errors import ApiError
from models import Account, LedgerEntry

OPERATOR_ACCOUNT = shapes.obj(
    {
        **shapes.ACCOUNT["properties"],
        "banned_words": {"type": "array", "items": {"type": "string"}},
        "created_at": {"type": "string"},
    },
    [*shapes.ACCOUNT["required"], "banned_words", "created_at"],
)
OPERATOR_ACCOUNT_PATCH = shapes.obj(
    {
        "billing_mode": {"type": "string", "enum": ["balance", "invoice"]},
        "price_per_segment": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
        "nanp_campaign": {"type": "string", "maxLength": 64},
        "stop_service_enabled": {"type": "boolean"},
        "banned_words": {
            "type": "array",
            "maxItems": 200,
            "items": {"type": "string", "minLength": 1, "maxLength": 50},
        },
    }
)
TOPUP_IN = shapes.obj(
    {
        "amount": {"type": "integer", "minimum": 1, "maximum": accounts.MAX_TOPUP},
        "reference": {"type": "string", "maxLength": 200},
    },
    ["amount"],
)
TOPUP = shapes.obj(
    {
        "id": {"type": "integer"},
        "account": {"type": "string"},
        "amount": {"type": "integer"},
        "reference": {"type": "string"},
        "at": {"type": "string"},
        "balance": {"type": "integer"},
    },
    ["id", "account", "amount", "reference", "at", "balance"],
)


def account_json(row: Account) -> dict[str, Any]:
    """What the business sees of its account, plus what only the operator manages."""
    return {**business_account_json(row), "banned_words": row.banned_words, "created_at": iso(row.created_at)}


def topup_json(entry: LedgerEntry, account: Account) -> dict[str, Any]:
    return {
        "id": entry.id,
        "account": account.name,
        "amount": entry.amount,
        "reference": entry.reference,
        "at": iso(entry.at),
        "balance": account.balance,
    }


def named(name: str) -> Account:
    account = Account.get_or_none(Account.name == name)
    if account is None:
        raise ApiError(404, "not_found", f"no account named {name!r}")
    return account


@route(
    "GET",
    "/operator/accounts",
    role="operator",
    summary="Every account (operator)",
    query=shapes.PAGING,
    response=shapes.listing("accounts", OPERATOR_ACCOUNT),
)
def operator_list_accounts() -> dict:
    rows, cursor = page(Account.select(), Account.id)
    return {"accounts": [account_json(row) for row in rows], "next": cursor}


@route("GET", "/operator/accounts/<name>", role="operator", summary="An account (operator)", response=OPERATOR_ACCOUNT)
def operator_get_account(name: str) -> dict:
    return account_json(named(name))


@route(
    "PATCH",
    "/operator/accounts/<name>",
    role="operator",
    summary="Change an account's billing and service settings (operator)",
    body=OPERATOR_ACCOUNT_PATCH,
    response=OPERATOR_ACCOUNT,
)
def operator_patch_account(name: str, body: dict) -> dict:
    return account_json(accounts.update(named(name), body))


@route(
    "POST",
    "/operator/accounts/<name>/topups",
    role="operator",
    summary="Top up an account's balance, keeping the payment reference (operator)",
    body=TOPUP_IN,
    response=TOPUP,
    status=201,
    idempotent=True,
    location="/operator/accounts/{name}/topups/{id}",
)
def operator_topup(name: str, body: dict) -> tuple[dict, int]:
    account = named(name)
    entry = accounts.topup(account, body["amount"], body.get("reference", ""))
    return topup_json(entry, Account.get_by_id(account.id)), 201


@route(
    "GET",
    "/operator/accounts/<name>/topups/<int:topup_id>",
    role="operator",
    summary="A top-up (operator)",
    response=TOPUP,
)
def operator_get_topup(name: str, topup_id: int) -> dict:
    account = named(name)
    entry = LedgerEntry.get_or_none(
        (LedgerEntry.id == topup_id) & (LedgerEntry.account == account.id) & (LedgerEntry.kind == "topup")
    )
    if entry is None:
        raise ApiError(404, "not_found", f"no top-up {topup_id} of {name!r}")
    return topup_json(entry, account)
