"""`/console/audit`: the account's audit log for admins (bot/audit.py), newest first, filtered by action."""

from __future__ import annotations

import json
from typing import Any

from flask import g, render_template, request

from bot.api.audit import entries
from bot.console import bp, page_number
from bot.console.auth import login_required

PAGE = 50
SHOWN = 60  # characters of one value in the before → after column


def shown(value: Any) -> str:
    """A value as compact JSON, cut to SHOWN characters ("–" for none)."""
    if value is None:
        return "–"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def changes(before: dict | None, after: dict | None) -> list[tuple[str, str, str]]:
    """(field, before, after) for each field of either side."""
    old, new = before or {}, after or {}
    return [(name, shown(old.get(name)), shown(new.get(name))) for name in dict.fromkeys([*old, *new])]


@bp.get("/audit")
@login_required("admin")
def audit_log() -> str:
    action = request.args.get("action", "").strip()[:100]
    page = page_number()
    query = entries(g.account.id, action)
    rows = list(query.order_by(query.model.id.desc()).paginate(page, PAGE + 1))
    return render_template(
        "console/audit.html",
        rows=[(row, changes(row.before, row.after)) for row in rows[:PAGE]],
        action=action,
        page=page,
        more=len(rows) > PAGE,
    )
