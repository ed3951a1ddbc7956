"""The audit log: each change a user, an API key, the operator or the CLI makes is an append-only row.

Who is read from where the change was asked, not passed through every call: an API request's key
(`g.api_key`: a business key's id and prefix, or `operator` for an operator key), a console request's
user (`g.user`: id and e-mail), or the CLI (`cli`, for the commands run under `as_cli`). A change with
nobody behind it (a phone's STOP, a worker's job, a seed) is not a user's change and is not recorded.

The services that the API, the console and the CLI share call `record` (or `created`, `changed`,
`deleted`): accounts (settings, billing, top-ups), keywords, numbers, users, API keys, the block list,
the GDPR erase, delivery replays, schedules and topics. `before` and `after` hold the changed fields only; secrets
(password and key hashes, TOTP secrets, recovery codes, carrier secrets) are masked. Nothing updates or
deletes a row, except `redact_phone`: a GDPR erase masks the phone in the rows that name it (the proof
that something happened stays; the person's number goes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from flask import g, has_request_context, request
from peewee import Field, ForeignKeyField, Model

from bot.phones import mask
from models import Account, ApiKey, AuditEntry, Carrier, Effect, Keyword, Schedule, Topic, User, VirtualNumber

MASK = "[secret]"
SECRET_FIELDS = frozenset(
    {"password_hash", "secret_hash", "totp_secret", "recovery_codes", "secret", "signature_secret", "token_hash"}
)
UNTRACKED = frozenset({"id", "created_at", "totp_last_step", "balance"})  # balance moves with every send


@dataclass(frozen=True)
class Actor:
    type: str  # user | apikey | operator | cli
    id: int | None
    label: str  # e-mail, key prefix, or "cli"
    address: str  # the request's remote address, or "cli"


@dataclass(frozen=True)
class Target:
    type: str
    id: str
    name: str
    account_id: int | None


CLI = Actor("cli", None, "cli", "cli")
_cli_actor: ContextVar[Actor | None] = ContextVar("audit_cli_actor", default=None)

# The target type of each audited model, and how it names itself and its account.
TARGETS: dict[type[Model], tuple[str, Callable[[Any], str], Callable[[Any], int | None]]] = {
    Account: ("account", lambda row: row.name, lambda row: row.id),
    Keyword: ("keyword", lambda row: f"{row.word.upper()} on {row.number.number}", lambda row: row.number.account_id),
    VirtualNumber: ("number", lambda row: row.number, lambda row: row.account_id),
    User: ("user", lambda row: row.email, lambda row: row.account_id),
    ApiKey: ("apikey", lambda row: row.prefix, lambda row: row.account_id),
    Carrier: ("carrier", lambda row: row.name, lambda row: None),
    Effect: ("delivery", lambda row: row.payload.get("url", ""), lambda row: row.inbound.number.account_id),
    Schedule: ("schedule", lambda row: f"{row.frequency} at {row.time_of_day}", lambda row: row.account_id),
    Topic: ("topic", lambda row: row.name, lambda row: row.account_id),
}


@contextmanager
def as_cli() -> Iterator[None]:
    """Changes made inside are the CLI's (the operator at the machine)."""
    token = _cli_actor.set(CLI)
    try:
        yield
    finally:
        _cli_actor.reset(token)


def current_actor() -> Actor | None:
    """Who is making the current change: the console user, the API key, the CLI, or nobody."""
    if not has_request_context():
        return _cli_actor.get()
    address = request.remote_addr or ""
    user, key = g.get("user"), g.get("api_key")
    if user is not None:
        return Actor("user", user.id, user.email, address)
    if key is not None:
        return Actor("apikey" if key.account_id else "operator", key.id, key.prefix, address)
    return None


def as_user(user: User) -> Actor:
    """The user acting on their own account without a session (a password set by a one-time link)."""
    return Actor("user", user.id, user.email, (request.remote_addr or "") if has_request_context() else "")


def target_of(row: Model) -> Target:
    kind, name, account = TARGETS[type(row)]
    return Target(kind, str(row.id), name(row), account(row))


def blocked_phone(account_id: int, phone: str) -> Target:
    return Target("phone", phone, phone, account_id)


def jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def fields(row: Model) -> dict[str, Any]:
    """The row's tracked fields as JSON values (a foreign key as its id; the account or number that the
    target's name already says is left out)."""
    return {
        name: jsonable(value)
        for name, value in row.__data__.items()
        if name not in UNTRACKED and not in_scope(row._meta.fields.get(name))
    }


def in_scope(field: Field | None) -> bool:
    return isinstance(field, ForeignKeyField) and field.rel_model in (Account, VirtualNumber)


def masked(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {name: (MASK if value else value) if name in SECRET_FIELDS else value for name, value in values.items()}


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields whose value differs, as (their values before, their values after)."""
    names = [name for name in dict.fromkeys([*before, *after]) if before.get(name) != after.get(name)]
    return {name: before.get(name) for name in names}, {name: after.get(name) for name in names}


def record(
    action: str,
    target: Model | Target,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    *,
    by: Actor | None = None,
    phone: str | None = None,
) -> AuditEntry | None:
    """Append one row for `action` (e.g. `keyword.update`) on `target`; None when nobody made the change."""
    who = by or current_actor()
    if who is None:
        return None
    where = target if isinstance(target, Target) else target_of(target)
    return AuditEntry.create(
        account=where.account_id,
        actor_type=who.type,
        actor_id=who.id,
        actor=who.label,
        address=who.address,
        action=action,
        target_type=where.type,
        target_id=where.id,
        target_name=where.name[:255],
        before=masked(before),
        after=masked(after),
        phone=phone,
    )


def created(action: str, row: Model) -> None:
    """A new row: its fields that are set, as `after`."""
    if current_actor() is not None:
        record(action, row, None, {k: v for k, v in fields(row).items() if v not in (None, "", [], {})})


def deleted(action: str, row: Model) -> None:
    if current_actor() is not None:
        record(action, row, fields(row), None)


def changed(action: str, row: Model, before: dict[str, Any], by: Actor | None = None) -> None:
    """`row` as it is now against `before` (its `fields` earlier): a row of the changed fields, if any."""
    old, new = diff(before, fields(row))
    if old or new:
        record(action, row, old, new, by=by)


@contextmanager
def change(action: str, row: Model, by: Actor | None = None) -> Iterator[Model]:
    """Record what the block changes on `row` (set its attributes and save it inside)."""
    before = fields(row)
    yield row
    changed(action, row, before, by)


def redact_phone(account: Account, phone: str) -> int:
    """Mask `phone` in the account's audit rows about it (a GDPR erase); returns the rows masked."""
    hidden = mask(phone)
    rows = list(AuditEntry.select().where((AuditEntry.account == account.id) & (AuditEntry.phone == phone)))
    for row in rows:
        row.phone, row.target_id, row.target_name = hidden, hidden, row.target_name.replace(phone, hidden)
        row.before, row.after = replaced(row.before, phone, hidden), replaced(row.after, phone, hidden)
        row.save()
    return len(rows)


def replaced(value: Any, phone: str, hidden: str) -> Any:
    if isinstance(value, str):
        return value.replace(phone, hidden)
    if isinstance(value, list):
        return [replaced(item, phone, hidden) for item in value]
    if isinstance(value, dict):
        return {key: replaced(item, phone, hidden) for key, item in value.items()}
    return value
