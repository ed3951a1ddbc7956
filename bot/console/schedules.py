"""`/console/schedules`: recurring sends to groups, their next and recent runs; `user` creates and deletes
(the same checks as `POST /api/v1/schedules`: its schema, then bot/schedules.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from bot import schedules
from bot.api import shapes
from bot.api.schema import check
from bot.console import bp
from bot.console.auth import login_required
from bot.errors import ApiError
from bot.inputguard import first_unstorable
from models import Group, Schedule, VirtualNumber, utcnow

RECENT_RUNS = 3
WHOLE = ("count", "day_of_month")  # form fields that are numbers in the API


def local(moment: datetime | None) -> datetime | None:
    """A stored UTC time in the account's zone."""
    return moment.replace(tzinfo=UTC).astimezone(schedules.account_zone(g.account)) if moment else None


def fields_of(form: Any) -> dict[str, Any]:
    """The form as the API's body: empty fields left out, and only the fields of the chosen frequency."""
    frequency = form.get("frequency", "")
    fields: dict[str, Any] = {
        name: form[name].strip()
        for name in ("group", "from", "frequency", "time", "start_date", "end_date", *WHOLE)
        if form.get(name, "").strip()
    }
    fields["text"] = form.get("text", "")
    for name in WHOLE:
        if name in fields:
            fields[name] = int(fields[name]) if fields[name].isdigit() else fields[name]
    if frequency == "weekly":
        fields["days"] = form.getlist("days")
    if frequency != "monthly":
        fields.pop("day_of_month", None)
    return fields


def page(form: Any, status: int = 200) -> tuple[str, int]:
    rows = list(Schedule.select().where(Schedule.account == g.account.id).order_by(Schedule.id.desc()))
    runs = schedules.recent_runs([row.id for row in rows], RECENT_RUNS)
    groups = {group.id: group for group in Group.select().where(Group.account == g.account.id)}
    numbers = VirtualNumber.select(VirtualNumber.number).where(VirtualNumber.account == g.account.id)
    html = render_template(
        "console/schedules.html",
        rows=[(row, groups.get(row.group_id), local(row.next_run_at), runs[row.id]) for row in rows],
        groups=sorted(groups.values(), key=lambda group: group.name_key),
        numbers=[number.number for number in numbers.order_by(VirtualNumber.number)],
        form=form,
        timezone=g.account.timezone,
    )
    return html, status


@bp.get("/schedules")
@login_required()
def schedule_list() -> tuple[str, int]:
    return page(MultiDict())


@bp.post("/schedules")
@login_required("user")
def add_schedule() -> Response | tuple[str, int]:
    fields = fields_of(request.form)
    try:
        if bad := first_unstorable(fields):
            raise ApiError(422, "invalid", f"{bad} holds a NUL or an invalid character", bad)
        check(shapes.SCHEDULE_IN, fields, "")
        made = schedules.create(g.account, fields, utcnow())
    except ApiError as exc:
        flash(exc.message, "error")
        return page(request.form, 422)
    except schedules.Refused as exc:
        flash(str(exc), "error")
        return page(request.form, 422)
    flash(
        f"Schedule {made.id} made: its first run is {local(made.next_run_at):%Y-%m-%d %H:%M} {g.account.timezone}.",
        "ok",
    )
    return redirect(url_for("console.schedule_list"))


@bp.post("/schedules/<int:schedule_id>/delete")
@login_required("user")
def delete_schedule(schedule_id: int) -> Response:
    found = Schedule.get_or_none((Schedule.id == schedule_id) & (Schedule.account == g.account.id))
    if found is None:
        abort(404, f"No schedule {schedule_id}.")
    schedules.delete(found)
    flash(f"Schedule {schedule_id} deleted: no more runs (its batches stay).", "ok")
    return redirect(url_for("console.schedule_list"))
