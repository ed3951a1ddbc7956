"""`GET /api/v1/audit`: the account's audit log (admins), newest first (bot/audit.py).

There is no route that changes or deletes a row: the log is append-only.
"""

from __future__ import annotations

from typing import Any

from flask import g, request

from bot.api import shapes
from bot.api.messages import moment
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import iso
from models import AuditEntry

CHANGES = {"type": ["object", "null"]}
AUDIT_ENTRY = shapes.obj(
    {
        "id": {"type": "integer"},
        "at": {"type": "string"},
        "actor_type": {"type": "string", "enum": ["user", "apikey", "operator", "cli"]},
        "actor_id": {"type": ["integer", "null"]},
        "actor": {"type": "string"},
        "address": {"type": "string"},
        "action": {"type": "string"},
        "target_type": {"type": "string"},
        "target_id": {"type": "string"},
        "target_name": {"type": "string"},
        "before": CHANGES,
        "after": CHANGES,
    },
    [
        "id",
        "at",
        "actor_type",
        "actor_id",
        "actor",
        "address",
        "action",
        "target_type",
        "target_id",
        "target_name",
        "before",
        "after",
    ],
)


def entry_json(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": iso(row.at),
        "actor_type": row.actor_type,
        "actor_id": row.actor_id,
        "actor": row.actor,
        "address": row.address,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "target_name": row.target_name,
        "before": row.before,
        "after": row.after,
    }


def entries(account_id: int, action: str = "", since: str = "") -> Any:
    """The account's rows; `action` is one action (`keyword.update`) or a target type (`keyword`)."""
    query = AuditEntry.select().where(AuditEntry.account == account_id)
    if action:
        query = query.where((AuditEntry.action == action) | AuditEntry.action.startswith(action + "."))
    if since:
        query = query.where(AuditEntry.at >= moment(since, "since"))
    return query


@route(
    "GET",
    "/audit",
    role="admin",
    summary="The audit log: who changed what, before and after, when and from where (newest first)",
    query={**shapes.PAGING, "action": {"type": "string", "maxLength": 100}, "since": {"type": "string"}},
    response=shapes.listing("audit", AUDIT_ENTRY),
)
def list_audit() -> dict:
    query = entries(g.account.id, request.args.get("action", ""), request.args.get("since", ""))
    rows, cursor = page(query, AuditEntry.id)
    return {"audit": [entry_json(row) for row in rows], "next": cursor}
