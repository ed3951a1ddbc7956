"""The send governor: pacing across workers through Redis, quiet hours in the recipient's time zones."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from flask import Flask
from redis import Redis

from bot.pipeline.governor import QuietHours, quiet_until, stamp, take_slots
from bot.redis_conn import get_redis, redis_url

EVENING = QuietHours.parse({"start": "21:00", "end": "08:00"})


def test_slots_are_granted_up_to_the_cap_and_the_rest_waits_for_the_oldest_to_age(app: Flask) -> None:
    redis = get_redis(app)
    first = take_slots(redis, 1, mps=5, wanted=3)
    second = take_slots(redis, 1, mps=5, wanted=5)
    assert (first.granted, first.retry_after) == (3, timedelta(0))
    assert second.granted == 2
    assert timedelta(0) < second.retry_after <= timedelta(seconds=1)
    assert take_slots(redis, 2, mps=5, wanted=5).granted == 5  # another carrier has its own window


def test_no_cap_grants_everything(app: Flask) -> None:
    assert take_slots(get_redis(app), 1, mps=0, wanted=10_000).granted == 10_000


def test_a_stamped_slot_counts_from_its_submission_not_from_when_it_was_taken(app: Flask) -> None:
    redis, window = get_redis(app), 0.3
    taken = take_slots(redis, 3, mps=2, wanted=2, window=window)
    time.sleep(0.2)  # the worker is held up before its submissions
    assert stamp(redis, 3, 2, taken.first, window) and stamp(redis, 3, 2, taken.first + 1, window)
    time.sleep(0.15)  # the takes have aged out of the window, the submissions have not
    after = take_slots(redis, 3, mps=2, wanted=1, window=window)
    assert after.granted == 0
    assert timedelta(milliseconds=50) < after.retry_after <= timedelta(milliseconds=160)


def test_a_slot_that_aged_out_is_stamped_only_where_the_window_has_room(app: Flask) -> None:
    redis, window = get_redis(app), 0.3
    held_up = take_slots(redis, 4, mps=2, wanted=2, window=window)
    time.sleep(0.35)  # longer than the window: another worker takes the cap's slots meanwhile
    other = take_slots(redis, 4, mps=2, wanted=1, window=window)
    assert other.granted == 1
    assert stamp(redis, 4, 2, held_up.first, window)  # one place left: it goes
    assert not stamp(redis, 4, 2, held_up.first + 1, window)  # none left: it must not
    assert stamp(redis, 4, 2, other.first, window)  # a slot still in the window always has its place


def test_two_workers_never_pass_the_cap_in_any_one_second_window(app: Flask) -> None:
    """Two threads with their own Redis clients take slots as fast as they can for 1.6 s."""
    cap, granted_at, lock = 20, [], threading.Lock()

    def worker() -> None:
        redis = Redis.from_url(redis_url(app))  # each worker its own connection
        until = time.monotonic() + 1.6
        while time.monotonic() < until:
            if take_slots(redis, 7, mps=cap).granted:
                with lock:
                    granted_at.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    granted_at.sort()
    busiest = max(sum(1 for t in granted_at if start <= t < start + 0.98) for start in granted_at)
    assert busiest <= cap
    assert len(granted_at) >= 2 * cap  # both windows of the run were used


@pytest.mark.parametrize(
    ("recipient", "now", "held_until"),
    [
        # Stockholm (UTC+1 in November): 22:30 local is quiet until 08:00 local.
        ("+46701234567", "2026-11-25T21:30", "2026-11-26T07:00"),
        ("+46701234567", "2026-11-25T12:00", None),
        ("+46701234567", "2026-11-25T07:00", None),  # 08:00 local: the window has ended
        # Los Angeles (UTC-8): noon in Stockholm is 04:00 there.
        ("+14155552671", "2026-11-25T12:00", "2026-11-25T16:00"),
        ("+14155552671", "2026-11-25T20:00", None),
        # Boise and Los Angeles share +1 208: held while either zone is quiet.
        ("+12085551234", "2026-11-25T15:30", "2026-11-25T16:00"),  # Boise 08:30 free, LA 07:30 quiet
        ("+12085551234", "2026-11-25T04:30", "2026-11-25T16:00"),  # Boise 21:30 quiet, then LA at 07:00
        ("+12085551234", "2026-11-25T17:00", None),
        # Summer time: Stockholm is UTC+2 in July.
        ("+46701234567", "2026-07-01T19:30", "2026-07-02T06:00"),
    ],
)
def test_quiet_hours_are_judged_in_the_recipients_time_zones(recipient: str, now: str, held_until: str | None) -> None:
    expected = datetime.fromisoformat(held_until) if held_until else None
    assert quiet_until(EVENING, recipient, datetime.fromisoformat(now)) == expected


def test_a_daytime_window_and_an_empty_one() -> None:
    lunch = QuietHours.parse({"start": "12:00", "end": "13:00"})
    assert quiet_until(lunch, "+46701234567", datetime(2026, 11, 25, 11, 30)) == datetime(2026, 11, 25, 12, 0)
    assert quiet_until(lunch, "+46701234567", datetime(2026, 11, 25, 12, 0)) is None
    assert QuietHours.parse({"start": "09:00", "end": "09:00"}) is None
    assert QuietHours.parse(None) is None


def test_zones_that_cover_the_whole_day_fall_back_to_the_first_zone() -> None:
    """Russian mobiles span UTC+2 to UTC+12: some zone is always inside 21:00-08:00."""
    now = datetime(2026, 11, 25, 12, 0)
    until = quiet_until(EVENING, "+79161234567", now)
    assert until is not None and now < until <= now + timedelta(days=1)
