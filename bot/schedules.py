"""Recurring broadcasts: a text sent to a group daily, weekly on given days or monthly on a day, at a
local time of day in the account's time zone (bot/recurrence.py says when each run is due).

Each run is a group send made by `send_to_group`, so it is a Batch like any other and its messages pass
the governor (quiet hours, pacing) and the outbox. The runner (`run_due`, a step of the outbox sweep)
claims a due run with a conditional UPDATE that moves `next_run_at` forward and writes the run's batch
and ScheduleRun row in the same transaction: a run is never done twice, and a crash before the commit
leaves it due. The next slot is the first one after the moment the run happens, not after the slot it was
due at: slots missed while nothing swept (everything down) give one run on recovery, not one per slot.
A run goes at the first sweep at or after its slot (at most SWEEP_INTERVAL_SECONDS late).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from peewee import fn

from bot import audit, recurrence
from bot.contacts import group_named
from bot.db import for_update
from bot.pipeline import segments
from bot.pipeline.outbound import Draft
from bot.pipeline.sending import Send, SendRefused, check, send_to_group
from bot.pipeline.validation import Rejected, check_sender, check_text
from models import Account, Schedule, ScheduleRun, db

EARLIEST_DATE = date(2000, 1, 1)
AHEAD = timedelta(days=3653)  # the latest start or end date: ten years from today
RULE_FIELDS = ("frequency", "days", "day_of_month", "time", "start_date", "end_date", "count")
ONLY_FOR = {"days": "weekly", "day_of_month": "monthly"}  # fields of one frequency only


class Refused(ValueError):
    """A schedule's field is wrong: `status` 422, or 404 for a group the account does not have."""

    def __init__(self, message: str, field: str, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.status = field, status


@dataclass(frozen=True)
class Run:
    due_at: datetime
    batch: str | None
    error: str


def account_zone(account: Account) -> ZoneInfo:
    return recurrence.zone(account.timezone)


def rule_of(schedule: Schedule, account: Account) -> recurrence.Rule:
    hours, minutes = map(int, schedule.time_of_day.split(":"))
    return recurrence.Rule(
        frequency=schedule.frequency,
        time_of_day=time(hours, minutes),
        zone=account_zone(account),
        start=schedule.start_date,
        end=schedule.end_date,
        days=tuple(schedule.days or ()),
        day_of_month=schedule.day_of_month or 1,
    )


def following(schedule: Schedule, account: Account, runs: int, after: datetime) -> datetime | None:
    """When the run after `runs` runs is due: the first slot after `after`, or None once the schedule ended."""
    if schedule.count is not None and runs >= schedule.count:
        return None
    return recurrence.next_slot(rule_of(schedule, account), after)


def local_date(raw: str, field: str, today: date) -> date:
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise Refused(f"{field} must be a date, YYYY-MM-DD", field) from None
    if not EARLIEST_DATE <= value <= today + AHEAD:
        raise Refused(f"{field} must be between {EARLIEST_DATE} and ten years from today", field)
    return value


def check_send(send: Send) -> None:
    """Refuse now what would reject every message of every run: the group send's own check, then the
    pipeline's sender and content rules (bot/pipeline/validation.py), each naming its API field."""
    try:
        check(send)
    except SendRefused as exc:
        raise Refused(str(exc), exc.field) from None
    try:
        check_sender(Draft(send.account, send.sender, "", ""), send.sender, {})
    except Rejected as exc:
        raise Refused(f"from: {exc.detail}", "from") from None
    body = segments.normalize_body(send.text)
    try:
        check_text(body, segments.count_segments(body).segments, send.account.banned_words)
    except Rejected as exc:
        raise Refused(f"text: {exc.detail}", "text") from None


def apply(schedule: Schedule, account: Account, fields: dict, now: datetime) -> Schedule:
    """Set the API's `fields` on `schedule` (new or stored), check the whole, and compute `next_run_at`
    when the rule changed. Raises Refused naming the field; writes nothing."""
    today = now.replace(tzinfo=UTC).astimezone(account_zone(account)).date()
    if "group" in fields:
        group = group_named(account, fields["group"], create=False)
        if group is None:
            raise Refused(f"no group named {fields['group']!r}", "group", 404)
        schedule.group = group
    for name, attribute in (("from", "sender"), ("text", "text"), ("frequency", "frequency"), ("count", "count")):
        if name in fields:
            setattr(schedule, attribute, fields[name].strip() if name == "from" else fields[name])
    if "time" in fields:
        schedule.time_of_day = fields["time"]
    for name in ("start_date", "end_date"):
        if name in fields:
            setattr(schedule, name, None if fields[name] is None else local_date(fields[name], name, today))
    if schedule.start_date is None:
        schedule.start_date = today
    settle_frequency(schedule, fields)
    if schedule.end_date is not None and schedule.end_date < schedule.start_date:
        raise Refused(f"end_date {schedule.end_date} is before start_date {schedule.start_date}", "end_date")
    check_send(Send(account, schedule.sender, schedule.text))
    if schedule.id is None or any(name in fields for name in RULE_FIELDS):
        schedule.next_run_at = following(schedule, account, schedule.runs or 0, now)
        counted_out = schedule.count is not None and (schedule.runs or 0) >= schedule.count
        if schedule.next_run_at is None and not counted_out:
            raise Refused("no run is left before end_date", "end_date")
    return schedule


def settle_frequency(schedule: Schedule, fields: dict) -> None:
    """`days` belong to weekly, `day_of_month` to monthly: required there, refused elsewhere, and a stored
    one is dropped when the frequency changes away from its own."""
    for name, frequency in ONLY_FOR.items():
        if schedule.frequency != frequency:
            if fields.get(name):
                raise Refused(f"{name} is only for a {frequency} schedule", name)
            setattr(schedule, name, [] if name == "days" else None)
    if "days" in fields and schedule.frequency == "weekly":
        days = fields["days"]
        repeated = next((day for day in days if days.count(day) > 1), None)
        if repeated:
            raise Refused(f"days lists {repeated} twice", "days")
        schedule.days = sorted(days, key=recurrence.WEEKDAYS.index)
    if "day_of_month" in fields and schedule.frequency == "monthly":
        schedule.day_of_month = fields["day_of_month"]
    if schedule.frequency == "weekly" and not schedule.days:
        raise Refused("a weekly schedule needs days (mon … sun)", "days")
    if schedule.frequency == "monthly" and schedule.day_of_month is None:
        raise Refused("a monthly schedule needs day_of_month (1-31)", "day_of_month")


def create(account: Account, fields: dict, now: datetime) -> Schedule:
    schedule = apply(Schedule(account=account, runs=0), account, fields, now)
    with db.atomic():
        schedule.save()
        audit.created("schedule.create", schedule)
    return schedule


def change(schedule: Schedule, fields: dict, now: datetime) -> Schedule:
    with db.atomic(), audit.change("schedule.update", schedule):
        apply(schedule, schedule.account, fields, now)
        schedule.save()
    return schedule


def delete(schedule: Schedule) -> None:
    """No more runs; the batches of past runs stay."""
    with db.atomic():
        audit.deleted("schedule.delete", schedule)
        schedule.delete_instance()


def retime(account: Account, now: datetime) -> int:
    """The account's time zone changed: each running schedule's next slot, found again in the new zone
    (a run already due keeps its turn)."""
    running = list(Schedule.select().where((Schedule.account == account) & (Schedule.next_run_at > now)))
    for schedule in running:
        schedule.next_run_at = following(schedule, account, schedule.runs, now)
        schedule.save()
    return len(running)


def recent_runs(schedule_ids: list[int], limit: int) -> dict[int, list[ScheduleRun]]:
    """The newest `limit` runs of each schedule, newest first, in one query."""
    rank = fn.ROW_NUMBER().over(partition_by=[ScheduleRun.schedule], order_by=[ScheduleRun.id.desc()])
    ranked = (
        ScheduleRun.select(ScheduleRun.id, rank.alias("rank"))
        .where(ScheduleRun.schedule.in_(schedule_ids))
        .alias("ranked")
    )
    newest = (
        ScheduleRun.select()
        .join(ranked, on=(ScheduleRun.id == ranked.c.id))
        .where(ranked.c.rank <= limit)
        .order_by(ScheduleRun.id.desc())
    )
    runs: dict[int, list[ScheduleRun]] = defaultdict(list)
    for row in newest:
        runs[row.schedule_id].append(row)
    return runs


def run_due(now: datetime) -> int:
    """The sweeper's step: run every schedule due at `now` once; return how many ran."""
    due = Schedule.select(Schedule.id).where(Schedule.next_run_at <= now).order_by(Schedule.next_run_at)
    return sum(run(row.id, now) is not None for row in list(due))  # read to the end first (SQLite)


def run(schedule_id: int, now: datetime) -> Run | None:
    """Claim the schedule's due run and make its batch, in one transaction; None when it is not due."""
    with db.atomic():
        query = Schedule.select().where(Schedule.id == schedule_id)
        schedule = for_update(query).get_or_none()
        if schedule is None or schedule.next_run_at is None or schedule.next_run_at > now:
            return None
        due_at, account = schedule.next_run_at, schedule.account
        claimed = (
            Schedule.update(
                next_run_at=following(schedule, account, schedule.runs + 1, now),
                runs=Schedule.runs + 1,
                last_run_at=now,
            )
            .where((Schedule.id == schedule_id) & (Schedule.next_run_at == due_at))
            .execute()
        )
        if not claimed:
            return None
        batch, error = None, ""
        if schedule.group is None:
            error = "the group was deleted"
        else:
            try:
                batch = send_to_group(Send(account, schedule.sender, schedule.text), schedule.group).id
            except SendRefused as exc:  # the account changed since (e.g. its stop service is off)
                error = str(exc)
        ScheduleRun.create(schedule=schedule_id, due_at=due_at, ran_at=now, batch=batch, error=error)
    return Run(due_at, batch, error)
