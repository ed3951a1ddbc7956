"""`/console/messages/<id>`: a message's timeline, each event with what it means and what to do next."""

from __future__ import annotations

from flask import abort, g, render_template

from bot.console import bp
from bot.console.auth import login_required
from bot.pipeline import statuses
from models import MessageEvent, OutboundMessage


@bp.get("/messages/<int:message_id>")
@login_required()
def message(message_id: int) -> str:
    row = OutboundMessage.get_or_none((OutboundMessage.id == message_id) & (OutboundMessage.account == g.account.id))
    if row is None:
        abort(404, f"No message {message_id}.")
    events = [
        {
            "code": event.code,
            "name": statuses.name(event.code),
            "group": statuses.group(event.code),
            "at": event.at,
            "detail": event.detail,
            "source": event.source,
            "explanation": statuses.explain(event.code),
        }
        for event in row.events.order_by(MessageEvent.at, MessageEvent.id)
    ]
    return render_template(
        "console/message.html",
        message=row,
        events=events,
        status_name=statuses.name(row.status),
        status_group=statuses.group(row.status),
        explanation=statuses.explain(row.status),
        final=statuses.is_final(row.status),
    )
