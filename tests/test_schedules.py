"""Recurring broadcasts: schedules through the API, and their runs on a fake clock (never sleeping).

The runner (`bot.schedules.run_due`) takes `now`, so a test moves the clock step by step and calls it as
the sweeper would; every run must be a batch at exactly the right UTC instant, in the account's zone
across DST changes, and no more runs than the schedule allows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from bot import recurrence, schedules
from bot.apikeys import create_key
from bot.pipeline.jobs import sweep
from bot.pipeline.statuses import Status
from models import Account, Batch, Contact, Group, GroupMember, OutboundMessage, Schedule, ScheduleRun
from tests.console_helpers import log_in, make_user

STOCKHOLM = "Europe/Stockholm"
MEMBERS = ["+46731234567", "+46731234568"]


@pytest.fixture
def shop(make_account, make_carrier, make_number, httpserver: HTTPServer) -> Account:
    httpserver.expect_request("/sms", method="POST").respond_with_handler(
        lambda request: Response(json.dumps({"id": f"up-{json.loads(request.data)['id']}", "status": "accepted"}))
    )
    account = make_account(name="Shop", balance=10_000, price_per_segment=10, timezone=STOCKHOLM)
    make_number(account, make_carrier("generic", name="gw", url=httpserver.url_for("/sms")), "+46700000001")
    group = Group.create(account=account, name="VIP", name_key="vip")
    for phone in MEMBERS:
        GroupMember.create(group=group, contact=Contact.create(account=account, phone=phone))
    return account


def key(account: Account, role: str = "user") -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(account, role)[1]}"}


def plan(**fields: object) -> dict:
    return {"group": "VIP", "from": "Shop", "text": "Weekly offer", "frequency": "daily", "time": "09:00", **fields}


def clock(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    now = start
    while now <= end:
        yield now
        now += step


def travel(start: datetime, end: datetime, step: timedelta = timedelta(minutes=15)) -> list[datetime]:
    """Move a fake clock from start to end, running due schedules at each step; the moments a run happened."""
    ran = []
    for now in clock(start, end, step):
        if schedules.run_due(now):
            ran.append(now)
    return ran


def runs_of(schedule: Schedule) -> list[ScheduleRun]:
    return list(ScheduleRun.select().where(ScheduleRun.schedule == schedule.id).order_by(ScheduleRun.id))


# --- when runs are due ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "at", "utc"),
    [
        (date(2026, 3, 28), time(2, 30), datetime(2026, 3, 28, 1, 30)),  # CET, UTC+1
        (date(2026, 3, 29), time(2, 30), datetime(2026, 3, 29, 1, 0)),  # skipped: 03:00 CEST, the first minute after
        (date(2026, 3, 29), time(2, 0), datetime(2026, 3, 29, 1, 0)),
        (date(2026, 3, 29), time(3, 0), datetime(2026, 3, 29, 1, 0)),
        (date(2026, 10, 25), time(2, 30), datetime(2026, 10, 25, 0, 30)),  # twice: the first (CEST) occurrence
        (date(2026, 10, 25), time(3, 0), datetime(2026, 10, 25, 2, 0)),  # CET again
    ],
)
def test_a_local_time_is_one_utc_instant_across_dst(day, at, utc):
    assert recurrence.instant(day, at, recurrence.zone(STOCKHOLM)) == utc


def test_a_day_skipped_by_its_zone_runs_at_the_first_minute_after():
    # Samoa moved across the date line: 2011-12-30 did not exist there; noon runs at midnight of the 31st.
    assert recurrence.instant(date(2011, 12, 30), time(12, 0), recurrence.zone("Pacific/Apia")) == datetime(
        2011, 12, 30, 10, 0
    )


def test_weekly_mon_thu_in_stockholm_runs_three_times_across_the_spring_dst_change(app, shop):
    wednesday = datetime(2026, 3, 25, 10, 0)  # DST starts on Sunday 2026-03-29
    schedule = schedules.create(shop, plan(frequency="weekly", days=["thu", "mon"], count=3), wednesday)
    assert (schedule.days, schedule.start_date, schedule.next_run_at) == (
        ["mon", "thu"],
        date(2026, 3, 25),
        datetime(2026, 3, 26, 8, 0),
    )
    ran = travel(wednesday, datetime(2026, 4, 20))
    # 09:00 CET is 08:00 UTC; after the change 09:00 CEST is 07:00 UTC.
    expected = [datetime(2026, 3, 26, 8, 0), datetime(2026, 3, 30, 7, 0), datetime(2026, 4, 2, 7, 0)]
    assert ran == expected
    runs = runs_of(schedule)
    assert [(run.due_at, run.ran_at, run.error) for run in runs] == [(at, at, "") for at in expected]
    batches = [Batch.get_by_id(run.batch) for run in runs]
    assert [(b.group_id, b.text, b.sender, b.recipients) for b in batches] == [
        (schedule.group_id, "Weekly offer", "Shop", 2)
    ] * 3
    assert Batch.select().count() == 3
    stored = Schedule.get_by_id(schedule.id)
    assert (stored.runs, stored.next_run_at, stored.last_run_at) == (3, None, expected[-1])


def test_a_daily_time_that_dst_skips_or_repeats_runs_once_a_day(app, shop):
    schedule = schedules.create(shop, plan(time="02:30"), datetime(2026, 3, 27, 12, 0))
    spring = travel(datetime(2026, 3, 27, 12, 0), datetime(2026, 3, 30, 12, 0), timedelta(minutes=30))
    assert spring == [datetime(2026, 3, 28, 1, 30), datetime(2026, 3, 29, 1, 0), datetime(2026, 3, 30, 0, 30)]
    autumn = travel(datetime(2026, 10, 24, 12, 0), datetime(2026, 10, 26, 12, 0), timedelta(minutes=30))
    # On 2026-10-24 a run was due long before (missed): it runs once, at the first step.
    assert autumn == [datetime(2026, 10, 24, 12, 0), datetime(2026, 10, 25, 0, 30), datetime(2026, 10, 26, 1, 30)]
    assert Schedule.get_by_id(schedule.id).runs == 6


def test_monthly_on_the_31st_runs_on_each_months_last_day(app, shop):
    start = datetime(2027, 1, 1)
    schedule = schedules.create(shop, plan(frequency="monthly", day_of_month=31, time="12:00", count=4), start)
    ran = travel(start, datetime(2027, 6, 1), timedelta(hours=1))
    assert ran == [
        datetime(2027, 1, 31, 11, 0),  # CET
        datetime(2027, 2, 28, 11, 0),  # not a leap year
        datetime(2027, 3, 31, 10, 0),  # CEST since 2027-03-28
        datetime(2027, 4, 30, 10, 0),
    ]
    assert Schedule.get_by_id(schedule.id).next_run_at is None


def test_an_end_date_is_the_last_day_with_a_run(app, shop):
    start = datetime(2026, 6, 1, 3, 0)
    fields = plan(time="08:15", start_date="2026-06-02", end_date="2026-06-04")
    schedule = schedules.create(shop, fields, start)
    ran = travel(start, datetime(2026, 6, 10))
    assert ran == [datetime(2026, 6, d, 6, 15) for d in (2, 3, 4)]  # 08:15 CEST
    assert (Schedule.get_by_id(schedule.id).next_run_at, Batch.select().count()) == (None, 3)


def test_a_run_missed_while_everything_was_down_runs_once_on_recovery(app, shop):
    schedule = schedules.create(shop, plan(), datetime(2026, 6, 1, 0, 0))
    assert schedule.next_run_at == datetime(2026, 6, 1, 7, 0)
    recovery = datetime(2026, 6, 5, 7, 40)  # four slots missed
    assert schedules.run_due(recovery) == 1
    assert schedules.run_due(recovery) == 0
    (run,) = runs_of(schedule)
    assert (run.due_at, run.ran_at) == (datetime(2026, 6, 1, 7, 0), recovery)
    assert Schedule.get_by_id(schedule.id).next_run_at == datetime(2026, 6, 6, 7, 0)


def test_a_claimed_run_is_not_run_again_by_a_second_runner(app, shop):
    schedule = schedules.create(shop, plan(), datetime(2026, 6, 1, 0, 0))
    due = datetime(2026, 6, 1, 7, 0)
    assert schedules.run(schedule.id, due) is not None
    assert schedules.run(schedule.id, due) is None  # its next_run_at moved on in the same transaction
    assert (ScheduleRun.select().count(), Batch.select().count()) == (1, 1)


def test_a_run_whose_group_was_deleted_records_why_and_makes_no_batch(app, shop):
    schedule = schedules.create(shop, plan(), datetime(2026, 6, 1, 0, 0))
    Group.get(Group.name == "VIP").delete_instance()
    assert schedules.run_due(datetime(2026, 6, 1, 7, 0)) == 1
    (run,) = runs_of(schedule)
    assert (run.batch, run.error) == (None, "the group was deleted")
    assert Batch.select().count() == 0


# --- the API --------------------------------------------------------------------------------------


def test_create_read_list_and_its_runs(client, shop):
    answer = client.post("/api/v1/schedules", json=plan(start_date="2030-01-07", count=2), headers=key(shop))
    assert answer.status_code == 201, answer.json
    made = answer.json
    assert answer.headers["Location"] == f"/api/v1/schedules/{made['id']}"
    assert made == {
        **made,
        "group": "VIP",
        "from": "Shop",
        "frequency": "daily",
        "days": [],
        "day_of_month": None,
        "time": "09:00",
        "timezone": STOCKHOLM,
        "start_date": "2030-01-07",
        "end_date": None,
        "count": 2,
        "runs": 0,
        "next_run_at": "2030-01-07T08:00:00.000Z",
        "recent_runs": [],
    }
    viewer = key(shop, "viewer")
    assert client.get(f"/api/v1/schedules/{made['id']}", headers=viewer).json == made
    assert client.get("/api/v1/schedules", headers=viewer).json == {"schedules": [made], "next": None}
    schedules.run_due(datetime(2030, 1, 7, 8, 0))
    shown = client.get(f"/api/v1/schedules/{made['id']}", headers=viewer).json
    batch = Batch.get().id
    run = {"due_at": "2030-01-07T08:00:00.000Z", "ran_at": "2030-01-07T08:00:00.000Z", "batch": batch, "error": ""}
    assert (shown["runs"], shown["next_run_at"], shown["recent_runs"]) == (1, "2030-01-08T08:00:00.000Z", [run])
    runs = client.get(f"/api/v1/schedules/{made['id']}/runs", headers=viewer).json
    assert runs == {"runs": [run], "next": None}
    assert client.get(f"/api/v1/batches/{batch}", headers=viewer).json["recipients"] == 2


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"group": "Nobody"}, 404, "group"),
        ({"time": "9:00"}, 422, "time"),
        ({"time": "24:00"}, 422, "time"),
        ({"frequency": "weekly"}, 422, "days"),
        ({"frequency": "weekly", "days": []}, 422, "days"),
        ({"frequency": "weekly", "days": ["mon", "funday"]}, 422, "days[1]"),
        ({"frequency": "weekly", "days": ["mon", "mon"]}, 422, "days"),
        ({"days": ["mon"]}, 422, "days"),
        ({"frequency": "monthly"}, 422, "day_of_month"),
        ({"frequency": "monthly", "day_of_month": 32}, 422, "day_of_month"),
        ({"frequency": "hourly"}, 422, "frequency"),
        ({"start_date": "2030-02-30"}, 422, "start_date"),
        ({"start_date": "2030-01-10", "end_date": "2030-01-09"}, 422, "end_date"),
        ({"end_date": "2001-01-01"}, 422, "end_date"),
        ({"start_date": "9999-12-31"}, 422, "start_date"),
        ({"count": 0}, 422, "count"),
        ({"text": ""}, 422, "text"),
        ({"text": "   "}, 422, "text"),
        ({"text": "x" * 1531}, 422, "text"),  # 11 segments, at most 10
        ({"text": "x" * 10_001}, 422, "text"),
        ({"from": "+46700000099"}, 422, "from"),  # a numeric sender that is not the account's number
        ({"from": "Too long a sender"}, 422, "from"),
        ({"text": "Win at the Casino tonight"}, 422, "text"),  # a banned word of the account's (below)
        ({"text": "Stop: {unsubscribe_url}"}, 422, "text"),  # the stop service is off (below)
        ({"surprise": 1}, 422, "surprise"),
    ],
)
def test_bad_input_is_4xx_naming_the_field_and_writes_nothing(client, shop, fields, status, field):
    Account.update(stop_service_enabled=False, banned_words=["casino"]).where(Account.id == shop.id).execute()
    answer = client.post("/api/v1/schedules", json=plan(**fields), headers=key(shop))
    assert (answer.status_code, answer.json["error"]["field"]) == (status, field), answer.json
    assert Schedule.select().count() == 0


def test_a_numeric_sender_of_the_accounts_own_number_is_fine(client, shop):
    answer = client.post("/api/v1/schedules", json=plan(**{"from": "0700000001"}), headers=key(shop))
    assert (answer.status_code, answer.json["from"]) == (201, "0700000001")


def test_patch_changing_the_time_or_days_finds_the_next_run_again(client, shop):
    user = key(shop)
    made = client.post("/api/v1/schedules", json=plan(start_date="2030-01-07"), headers=user).json
    path = f"/api/v1/schedules/{made['id']}"
    changed = client.patch(path, json={"time": "10:30"}, headers=user)
    assert (changed.status_code, changed.json["next_run_at"]) == (200, "2030-01-07T09:30:00.000Z")
    weekly = client.patch(path, json={"frequency": "weekly", "days": ["fri"]}, headers=user).json
    assert (weekly["days"], weekly["next_run_at"]) == (["fri"], "2030-01-11T09:30:00.000Z")
    monthly = client.patch(path, json={"frequency": "monthly", "day_of_month": 31}, headers=user).json
    assert (monthly["days"], monthly["next_run_at"]) == ([], "2030-01-31T09:30:00.000Z")
    text_only = client.patch(path, json={"text": "New text"}, headers=user).json
    assert (text_only["text"], text_only["next_run_at"]) == ("New text", "2030-01-31T09:30:00.000Z")
    bad = (({"time": "25:00"}, "time"), ({"days": ["mon"]}, "days"), ({"end_date": "2030-01-01"}, "end_date"))
    for body, field in bad:
        refused = client.patch(path, json=body, headers=user)
        assert (refused.status_code, refused.json["error"]["field"]) == (422, field)
    assert client.get(path, headers=user).json == text_only


def test_the_accounts_time_zone_is_validated_and_moves_the_next_runs(client, shop):
    admin = key(shop, "admin")
    made = client.post("/api/v1/schedules", json=plan(start_date="2030-01-07"), headers=admin).json
    overdue = schedules.create(shop, plan(), datetime(2026, 1, 1))  # due since 2026-01-01 08:00, not yet run
    for bad in ("Mars/Olympus", "../../etc/passwd", "", "utc "):
        refused = client.patch("/api/v1/account", json={"timezone": bad}, headers=admin)
        assert (refused.status_code, refused.json["error"]["field"]) == (422, "timezone"), bad
    assert client.patch("/api/v1/account", json={"timezone": "UTC"}, headers=key(shop, "user")).status_code == 403
    answer = client.patch("/api/v1/account", json={"timezone": "America/New_York"}, headers=admin)
    assert (answer.status_code, answer.json["timezone"]) == (200, "America/New_York")
    moved = client.get(f"/api/v1/schedules/{made['id']}", headers=admin).json
    assert (moved["timezone"], moved["next_run_at"]) == ("America/New_York", "2030-01-07T14:00:00.000Z")
    assert Schedule.get_by_id(overdue.id).next_run_at == datetime(2026, 1, 1, 8, 0)  # a due run keeps its turn


def test_a_new_account_is_in_utc(client, make_account):
    account = make_account()
    assert client.get("/api/v1/account", headers=key(account, "viewer")).json["timezone"] == "UTC"


def test_delete_stops_the_schedule_and_its_batches_stay(client, shop):
    schedule = schedules.create(shop, plan(), datetime(2026, 6, 1, 0, 0))
    assert travel(datetime(2026, 6, 1, 6, 0), datetime(2026, 6, 1, 8, 0)) == [datetime(2026, 6, 1, 7, 0)]
    assert client.delete(f"/api/v1/schedules/{schedule.id}", headers=key(shop, "viewer")).status_code == 403
    assert client.delete(f"/api/v1/schedules/{schedule.id}", headers=key(shop)).status_code == 204
    assert travel(datetime(2026, 6, 1, 8, 0), datetime(2026, 6, 5)) == []
    assert Batch.select().count() == 1
    assert client.get(f"/api/v1/schedules/{schedule.id}", headers=key(shop)).status_code == 404


def test_another_accounts_schedule_is_not_found(client, shop, make_account):
    schedule = schedules.create(shop, plan(), datetime(2026, 6, 1, 0, 0))
    other = key(make_account(name="Other"), "admin")
    path = f"/api/v1/schedules/{schedule.id}"
    for method, body in (("GET", None), ("PATCH", {"text": "x"}), ("DELETE", None)):
        assert client.open(path, method=method, json=body, headers=other).status_code == 404
    assert client.get(f"{path}/runs", headers=other).status_code == 404
    assert client.get("/api/v1/schedules", headers=other).json["schedules"] == []
    assert Schedule.get_by_id(schedule.id).text == "Weekly offer"


# --- end to end -------------------------------------------------------------------------------------


def test_a_due_schedules_batch_reaches_the_carrier(client, shop, httpserver, run_worker):
    made = client.post("/api/v1/schedules", json=plan(text="Fresh bread today"), headers=key(shop)).json
    # As if everything had been down since the run was due: the sweep runs it, with the real clock.
    Schedule.update(next_run_at=datetime(2026, 1, 1, 8, 0)).where(Schedule.id == made["id"]).execute()
    assert sweep()["schedules"] == 1
    run_worker()  # the fan-out, then each message's send job
    sent = [json.loads(request.get_data()) for request, _ in httpserver.log]
    assert sorted((body["to"], body["text"]) for body in sent) == [(phone, "Fresh bread today") for phone in MEMBERS]
    batch = ScheduleRun.get().batch
    messages = OutboundMessage.select().where(OutboundMessage.batch == batch)
    assert {m.status for m in messages} == {Status.DELIVERED_TO_GATEWAY} and messages.count() == 2
    assert sweep()["schedules"] == 0
    assert Schedule.get_by_id(made["id"]).runs == 1


# --- the console ------------------------------------------------------------------------------------


def console_form(csrf: str, **fields: object) -> dict:
    return {"csrf_token": csrf, "group": "VIP", "from": "Shop", "text": "Fresh bread", "time": "07:30", **fields}


def test_the_console_lists_creates_and_deletes_schedules(client, shop):
    make_user(shop, "ann@shop.se", role="user")
    csrf = log_in(client, "ann@shop.se")
    form = console_form(csrf, frequency="weekly", days=["tue", "sat"], start_date="2030-01-01", count="5")
    made = client.post("/console/schedules", data=form, follow_redirects=True)
    page = made.get_data(as_text=True)
    schedule = Schedule.get()
    assert made.status_code == 200
    assert f"Schedule {schedule.id} made: its first run is 2030-01-01 07:30 Europe/Stockholm." in page
    assert "Weekly on Tue, Sat at 07:30" in page and "2030-01-01 06:30:00 UTC" in page and "0 of 5" in page
    assert (schedule.days, schedule.count, schedule.day_of_month) == (["tue", "sat"], 5, None)
    schedules.run_due(datetime(2030, 1, 1, 6, 30))
    batch = ScheduleRun.get().batch
    assert f'href="/console/batches/{batch}"' in client.get("/console/schedules").get_data(as_text=True)

    refused = client.post("/console/schedules", data=console_form(csrf, frequency="weekly"))
    assert refused.status_code == 422 and "a weekly schedule needs days" in refused.get_data(as_text=True)
    refused = client.post("/console/schedules", data=console_form(csrf, frequency="daily", time="7.30"))
    assert refused.status_code == 422 and "time has the wrong format" in refused.get_data(as_text=True)
    refused = client.post("/console/schedules", data=console_form(csrf, frequency="daily", text="a\x00b"))
    assert refused.status_code == 422 and "text holds a NUL" in refused.get_data(as_text=True)
    assert Schedule.select().count() == 1

    deleted = client.post(f"/console/schedules/{schedule.id}/delete", data={"csrf_token": csrf}, follow_redirects=True)
    assert f"Schedule {schedule.id} deleted" in deleted.get_data(as_text=True) and Schedule.select().count() == 0


def test_a_viewer_sees_schedules_but_cannot_change_them(client, shop):
    schedule = schedules.create(shop, plan(), datetime(2026, 6, 1))
    make_user(shop, "vera@shop.se", role="viewer")
    csrf = log_in(client, "vera@shop.se")
    page = client.get("/console/schedules").get_data(as_text=True)
    assert "Daily at 09:00" in page and "New schedule" not in page and "Delete" not in page
    assert client.post("/console/schedules", data=console_form(csrf, frequency="daily")).status_code == 403
    assert client.post(f"/console/schedules/{schedule.id}/delete", data={"csrf_token": csrf}).status_code == 403
    assert Schedule.select().count() == 1
