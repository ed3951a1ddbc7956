"""`/console/send`: to a phone, several phones or a group, with a live preview of encoding and price."""

from __future__ import annotations

import re
from typing import Any

from flask import abort, flash, g, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from bot.api.messages import clicks_of
from bot.console import bp
from bot.console.auth import login_required
from bot.pipeline import statuses
from bot.pipeline.sending import Send, SendRefused, send_to_group, send_to_phones
from bot.preview import group_size, preview
from models import Group, VirtualNumber

MAX_PHONES = 1000


def recipients_of(raw: str) -> list[str]:
    """Phones separated by commas, semicolons or new lines."""
    return [part.strip() for part in re.split(r"[,;\n]+", raw) if part.strip()]


def own_group(group_id: str) -> Group:
    group = None
    if group_id.isdigit():
        group = Group.get_or_none((Group.id == int(group_id)) & (Group.account == g.account.id))
    if group is None:
        abort(404, "No such group.")
    return group


def form_choices() -> dict[str, Any]:
    numbers = [
        row.number
        for row in VirtualNumber.select().where(VirtualNumber.account == g.account.id).order_by(VirtualNumber.number)
    ]
    groups = list(Group.select().where(Group.account == g.account.id).order_by(Group.name_key))
    return {"numbers": numbers, "groups": groups}


@bp.get("/send")
@login_required("user")
def send_form() -> str:
    return render_template("console/send.html", **form_choices(), form={"to": request.args.get("to", "")})


@bp.post("/send/preview")
@login_required("user")
def send_preview() -> Response:
    """The same numbers as `POST /api/v1/messages/preview`, for the form's script."""
    text = request.form.get("text", "")
    if request.form.get("mode") == "group" and request.form.get("group"):
        count = group_size(own_group(request.form["group"]).id)
    else:
        count = max(len(recipients_of(request.form.get("to", ""))), 1)
    result = preview(g.account, text, count, request.form.get("track_links") == "on")
    return jsonify({**result.as_json(), "units": result.units, "currency": g.account.currency})


@bp.post("/send")
@login_required("user")
def send() -> Any:
    form = request.form
    order = Send(
        g.account, form.get("sender", "").strip(), form.get("text", ""), track_links=form.get("track_links") == "on"
    )
    try:
        if form.get("mode") == "group":
            group = own_group(form.get("group", ""))
            batch = send_to_group(order, group)
            flash(f"Sending to the {batch.recipients} members of {group.name} (batch {batch.id}).", "ok")
            return redirect(url_for("console.batch", batch_id=batch.id))
        phones = recipients_of(form.get("to", ""))
        if not phones or len(phones) > MAX_PHONES:
            flash(f"Give between 1 and {MAX_PHONES} phone numbers.", "error")
            return render_template("console/send.html", **form_choices(), form=form), 422
        sent = send_to_phones(order, phones)
    except SendRefused as exc:
        flash(str(exc), "error")
        return render_template("console/send.html", **form_choices(), form=form), 422
    if len(sent) == 1:
        return redirect(url_for("console.message", message_id=sent[0].id))
    clicks = clicks_of(sent)
    rows = [(m, statuses.name(m.status), statuses.group(m.status), clicks.get(m.id, 0)) for m in sent]
    return render_template("console/sent.html", rows=rows, batch=sent[0].batch)
