"""The account as its business sees it: settings, the ledger and the monthly invoice summary.

Billing fields and top-ups are the operator's (bot/accounts.py, bot/api/operator.py): here they are 403.
"""

from __future__ import annotations

from datetime import datetime

from flask import g
from peewee import fn

from bot import accounts, recurrence, schedules, signing
from bot.api import account_url, shapes
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import account as account_json
from bot.api.serialize import iso
from bot.errors import ApiError
from models import Account, LedgerEntry, OutboundMessage, db, utcnow


@route("GET", "/account", role="viewer", summary="The account", response=shapes.ACCOUNT)
def get_account() -> dict:
    return account_json(Account.get_by_id(g.account.id))


@route(
    "PATCH",
    "/account",
    role="admin",
    summary="Change account settings",
    body=shapes.ACCOUNT_PATCH,
    response=shapes.ACCOUNT,
)
def patch_account(body: dict) -> dict:
    """A business admin may change `stop_service_enabled`, `quiet_hours`, `status_callback_url` (checked
    like a bot's URL; "" for none), `require_two_factor` (console users must enrol) and the (one-line)
    name, and `timezone` (an IANA name: the local time of its schedules, whose next runs move with it);
    billing fields are 403."""
    for name in accounts.OPERATOR_FIELDS:
        if name in body:
            raise ApiError(403, "forbidden", f"{name} is set by the operator, not by the account", name)
    if "name" in body:
        try:
            body["name"] = accounts.check_name(body["name"])
        except accounts.BadName as exc:
            raise ApiError(422, "invalid", str(exc), "name") from None
        if Account.select().where((Account.name == body["name"]) & (Account.id != g.account.id)).exists():
            raise ApiError(409, "conflict", "another account has that name", "name")
    if body.get("status_callback_url"):
        account_url(body["status_callback_url"], "status_callback_url")
    quiet = body.get("quiet_hours")
    if quiet and quiet["start"] == quiet["end"]:
        raise ApiError(422, "invalid", "quiet_hours start and end are the same: use null for none", "quiet_hours")
    if "timezone" in body:
        try:
            recurrence.zone(body["timezone"])
        except recurrence.UnknownZone as exc:
            raise ApiError(422, "invalid", str(exc), "timezone") from None
    with db.atomic():
        account = accounts.update(g.account, body)
        if "timezone" in body:
            schedules.retime(account, utcnow())
    return account_json(account)


@route(
    "POST",
    "/account/topups",
    role="admin",
    summary="Top-ups are the operator's: always 403 (see POST /operator/accounts/{name}/topups)",
    status=403,
)
def topup() -> None:
    raise ApiError(403, "forbidden", "top-ups are made by the operator, not by the account", "amount")


@route(
    "GET",
    "/account/ledger",
    role="viewer",
    summary="Debits, refunds, invoice lines and top-ups",
    query=shapes.PAGING,
    response=shapes.listing("ledger", shapes.LEDGER_ENTRY),
)
def ledger() -> dict:
    rows, cursor = page(LedgerEntry.select().where(LedgerEntry.account == g.account.id), LedgerEntry.id)
    entries = [{"kind": r.kind, "amount": r.amount, "message_id": r.message_id, "at": iso(r.at)} for r in rows]
    return {"ledger": entries, "next": cursor}


@route(
    "GET",
    "/account/invoices/<month>",
    role="viewer",
    summary="A month's post-invoiced traffic (yyyy-mm)",
    response=shapes.INVOICE,
)
def invoice(month: str) -> dict:
    try:
        start = datetime.strptime(month, "%Y-%m")
    except ValueError:
        raise ApiError(422, "invalid", "month must be yyyy-mm", "month") from None
    try:
        end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    except ValueError:  # December 9999: the calendar ends there
        end = datetime.max
    lines = LedgerEntry.select().where(
        (LedgerEntry.account == g.account.id)
        & (LedgerEntry.kind == "invoice")
        & (LedgerEntry.at >= start)
        & (LedgerEntry.at < end)
    )
    refunded = LedgerEntry.select(LedgerEntry.message).where(
        (LedgerEntry.kind == "refund") & LedgerEntry.message.in_(lines.select(LedgerEntry.message))
    )
    billed = lines.where(LedgerEntry.message.not_in(refunded))
    messages = OutboundMessage.select().where(OutboundMessage.id.in_(billed.select(LedgerEntry.message)))
    return {
        "month": month,
        "messages": messages.count(),
        "segments": int(messages.select(fn.COALESCE(fn.SUM(OutboundMessage.segments), 0)).scalar() or 0),
        "amount": int(billed.select(fn.COALESCE(fn.SUM(LedgerEntry.amount), 0)).scalar() or 0),
        "currency": g.account.currency,
    }


@route(
    "GET",
    "/account/forward-secret",
    role="admin",
    summary="The secret that signs forwards to business URLs",
    response=shapes.obj({"secret": {"type": "string"}}, ["secret"]),
)
def get_forward_secret() -> dict:
    return {"secret": signing.account_secret(g.account.id)}
