"""The web console at `/console/`: server-rendered pages for an account's users (SPEC §13).

Login is a signed session cookie (Flask's, keyed by SMSBOT_SECRET_KEY); every POST form carries a CSRF
token; the user's role decides what each page shows and what it accepts (viewer reads, user also sends
and edits contacts and the block list, admin also keywords). Every query is scoped to the user's account:
another account's object is a 404, the same as in the API.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Flask, request

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


@bp.app_template_filter("money")
def money(minor: int | None) -> str:
    """Minor units as a decimal amount: 12345 → 123.45."""
    if minor is None:
        return "–"
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d}".replace(",", "\u202f")


@bp.app_template_filter("when")
def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


LAST_PAGE = 100_000  # a page number past it is served as it: a database cannot skip 10^20 rows


def page_number() -> int:
    """The list page asked for by the `page` query argument: 1 when absent or not a positive number."""
    raw = request.args.get("page", "1")
    return min(max(int(raw), 1), LAST_PAGE) if raw.isdecimal() else 1


def init_app(app: Flask) -> None:
    from bot.console import (  # noqa: F401  (declare the views)
        audit,
        auth,
        batches,
        dashboard,
        deliveries,
        imports,
        inbox,
        manage,
        messages,
        schedules,
        security,
        send,
    )

    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("SESSION_COOKIE_NAME", "smsbot_console")
    app.register_blueprint(bp)
