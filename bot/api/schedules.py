"""Recurring broadcasts: `GET/POST /api/v1/schedules`, `GET/PATCH/DELETE /api/v1/schedules/<id>` and
`GET /api/v1/schedules/<id>/runs` (bot/schedules.py runs them; each run is a batch)."""

from __future__ import annotations

from flask import g

from bot import schedules
from bot.api import owned, shapes
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import iso
from bot.db import for_update
from bot.errors import ApiError
from models import Group, Schedule, ScheduleRun, db, utcnow

RECENT_RUNS = 10  # the runs shown with a schedule; all of them under /schedules/<id>/runs


def run_json(row: ScheduleRun) -> dict:
    return {"due_at": iso(row.due_at), "ran_at": iso(row.ran_at), "batch": row.batch, "error": row.error}


def schedules_json(rows: list[Schedule]) -> list[dict]:
    runs = schedules.recent_runs([row.id for row in rows], RECENT_RUNS)
    groups = {group.id: group.name for group in Group.select().where(Group.id.in_([row.group_id for row in rows]))}
    return [
        {
            "id": row.id,
            "group": groups.get(row.group_id),
            "from": row.sender,
            "text": row.text,
            "frequency": row.frequency,
            "days": row.days,
            "day_of_month": row.day_of_month,
            "time": row.time_of_day,
            "timezone": g.account.timezone,
            "start_date": row.start_date.isoformat(),
            "end_date": row.end_date.isoformat() if row.end_date else None,
            "count": row.count,
            "runs": row.runs,
            "next_run_at": iso(row.next_run_at),
            "recent_runs": [run_json(run) for run in runs[row.id]],
            "created_at": iso(row.created_at),
        }
        for row in rows
    ]


def own_schedule(schedule_id: int) -> Schedule:
    return owned(Schedule, schedule_id, "schedule")


def refused(exc: schedules.Refused) -> ApiError:
    return ApiError(exc.status, "not_found" if exc.status == 404 else "invalid", str(exc), exc.field)


@route(
    "GET",
    "/schedules",
    role="viewer",
    summary="Recurring sends to groups, newest first",
    query=shapes.PAGING,
    response=shapes.listing("schedules", shapes.SCHEDULE),
)
def list_schedules() -> dict:
    rows, cursor = page(Schedule.select().where(Schedule.account == g.account.id), Schedule.id)
    return {"schedules": schedules_json(rows), "next": cursor}


@route(
    "POST",
    "/schedules",
    role="user",
    summary="Send a text to a group daily, weekly on days or monthly on a day, at a local time",
    body=shapes.SCHEDULE_IN,
    response=shapes.SCHEDULE,
    status=201,
    idempotent=True,
    location="/schedules/{id}",
)
def create_schedule(body: dict) -> tuple[dict, int]:
    """The time, days and dates are in the account's `timezone`; `count` and `end_date` (included) end it."""
    try:
        schedule = schedules.create(g.account, body, utcnow())
    except schedules.Refused as exc:
        raise refused(exc) from None
    return schedules_json([schedule])[0], 201


@route("GET", "/schedules/<int:schedule_id>", role="viewer", summary="A schedule", response=shapes.SCHEDULE)
def get_schedule(schedule_id: int) -> dict:
    return schedules_json([own_schedule(schedule_id)])[0]


@route(
    "PATCH",
    "/schedules/<int:schedule_id>",
    role="user",
    summary="Change a schedule (a new rule finds its next run again)",
    body=shapes.SCHEDULE_PATCH,
    response=shapes.SCHEDULE,
)
def patch_schedule(schedule_id: int, body: dict) -> dict:
    with db.atomic():
        query = Schedule.select().where((Schedule.id == schedule_id) & (Schedule.account == g.account.id))
        row = for_update(query).get_or_none()  # not while a run claims it
        if row is None:
            raise ApiError(404, "not_found", f"no schedule {schedule_id}")
        try:
            schedules.change(row, body, utcnow())
        except schedules.Refused as exc:
            raise refused(exc) from None
    return schedules_json([row])[0]


@route(
    "DELETE",
    "/schedules/<int:schedule_id>",
    role="user",
    summary="Delete a schedule: no more runs (its batches stay)",
    status=204,
)
def delete_schedule(schedule_id: int) -> tuple[str, int]:
    schedules.delete(own_schedule(schedule_id))
    return "", 204


@route(
    "GET",
    "/schedules/<int:schedule_id>/runs",
    role="viewer",
    summary="A schedule's runs, newest first, each with its batch",
    query=shapes.PAGING,
    response=shapes.listing("runs", shapes.SCHEDULE_RUN),
)
def list_runs(schedule_id: int) -> dict:
    schedule = own_schedule(schedule_id)
    rows, cursor = page(ScheduleRun.select().where(ScheduleRun.schedule == schedule.id), ScheduleRun.id)
    return {"runs": [run_json(row) for row in rows], "next": cursor}
