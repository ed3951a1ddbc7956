"""`/console/batches/<id>`: a group or multi-recipient send's progress and its messages, newest first."""

from __future__ import annotations

from flask import abort, g, render_template

from bot.api.messages import clicks_of
from bot.batch_progress import own_batch, progress
from bot.console import bp, page_number
from bot.console.auth import login_required
from bot.pipeline import statuses
from models import OutboundMessage

PAGE = 50


@bp.get("/batches/<batch_id>")
@login_required()
def batch(batch_id: str) -> str:
    found = own_batch(g.account, batch_id)
    if found is None:
        abort(404, f"No batch {batch_id}.")
    shown = progress(found)
    page = page_number()
    messages = (
        OutboundMessage.select()
        .where((OutboundMessage.batch == found.id) & (OutboundMessage.account == g.account.id))
        .order_by(OutboundMessage.id.desc())
        .paginate(page, PAGE)
    )
    messages = list(messages)
    clicks = clicks_of(messages)
    rows = [(m, statuses.name(m.status), statuses.group(m.status), clicks.get(m.id, 0)) for m in messages]
    return render_template(
        "console/batch.html",
        batch=found,
        progress=shown,
        rows=rows,
        page=page,
        pages=max((shown.accepted + PAGE - 1) // PAGE, 1),
    )
