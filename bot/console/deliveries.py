"""`/console/deliveries`: forwards to the business's bot that used up their retries (dead letters), each
with its tries, and a Replay button (the same as `POST /api/v1/deliveries/<id>/replay`, audited)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from bot import outbox
from bot.api.deliveries import forwards
from bot.console import bp, page_number
from bot.console.auth import login_required
from models import Effect, InboundMessage

PAGE = 50


@bp.get("/deliveries")
@login_required()
def deliveries() -> str:
    page = page_number()
    query = forwards().select(Effect, InboundMessage).where(Effect.state == "failed").order_by(Effect.id.desc())
    rows = list(query.paginate(page, PAGE + 1))
    return render_template("console/deliveries.html", rows=rows[:PAGE], page=page, more=len(rows) > PAGE)


@bp.post("/deliveries/<int:delivery_id>/replay")
@login_required("user")
def replay_delivery(delivery_id: int) -> Response:
    row = forwards().where(Effect.id == delivery_id).first()
    if row is None:
        abort(404, f"No delivery {delivery_id}.")
    if outbox.replay(row):
        flash(f"Delivery {delivery_id} is on its way again.", "ok")
    else:
        flash(f"Delivery {delivery_id} is {row.state}: only a failed one is replayed.", "error")
    return redirect(url_for("console.deliveries"))
