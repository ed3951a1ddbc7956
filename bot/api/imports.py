"""Contact imports (SPEC §7 contacts): their progress and row errors; POST /contacts/import starts one."""

from __future__ import annotations

from typing import Any

from flask import g

from bot.api import owned, shapes
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import iso
from models import ContactImport


def import_json(row: ContactImport) -> dict[str, Any]:
    return {
        "id": row.id,
        "state": row.state,
        "skip_invalid": row.skip_invalid,
        "rows_total": row.rows_total,
        "rows_done": row.rows_done,
        "imported": row.imported,
        "updated": row.updated,
        "skipped": row.skipped,
        "errors": row.errors,
        "created_at": iso(row.created_at),
        "finished_at": iso(row.finished_at),
    }


@route(
    "GET",
    "/imports",
    role="viewer",
    summary="Contact imports, newest first",
    query=shapes.PAGING,
    response=shapes.listing("imports", shapes.IMPORT),
)
def list_imports() -> dict:
    rows, cursor = page(ContactImport.select().where(ContactImport.account == g.account.id), ContactImport.id)
    return {"imports": [import_json(row) for row in rows], "next": cursor}


@route("GET", "/imports/<int:import_id>", role="viewer", summary="A contact import's progress", response=shapes.IMPORT)
def get_import(import_id: int) -> dict:
    return import_json(owned(ContactImport, import_id, "import"))
