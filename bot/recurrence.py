"""When a recurring send is due: the slots of a daily, weekly or monthly rule in a time zone, in UTC.

Pure functions of a rule and a moment (no clock, no database), shared by the schedule runner and its
tests. A slot is a local date and time of day in the rule's zone, turned into a UTC instant:
- a time that does not exist that day (the clocks spring forward over it) is due at the first valid
  minute after it: 02:30 in a 02:00 → 03:00 gap runs at 03:00;
- a time that exists twice (the clocks fall back) is due once, at its first occurrence (the earlier
  UTC instant);
- monthly on a day past a month's end (the 31st in April, the 29th–31st in February) is due on that
  month's last day.
"""

from __future__ import annotations

import functools
import zoneinfo
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class UnknownZone(ValueError):
    pass


@functools.cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone of that name (as zoneinfo knows it), else UnknownZone."""
    if name not in known_zones():
        raise UnknownZone(f"{name!r} is not an IANA time zone name (e.g. Europe/Stockholm)")
    return zoneinfo.ZoneInfo(name)


@dataclass(frozen=True)
class Rule:
    frequency: str  # a key of MATCHES
    time_of_day: time
    zone: zoneinfo.ZoneInfo
    start: date
    end: date | None = None  # included
    days: tuple[str, ...] = ()  # weekly: names of WEEKDAYS
    day_of_month: int = 1  # monthly

    def __post_init__(self) -> None:
        if self.frequency == "weekly" and not self.days:
            raise ValueError("a weekly rule needs at least one day")  # else no date would ever match


def daily(rule: Rule, day: date) -> bool:
    return True


def weekly(rule: Rule, day: date) -> bool:
    return WEEKDAYS[day.weekday()] in rule.days


def monthly(rule: Rule, day: date) -> bool:
    return day.day == min(rule.day_of_month, monthrange(day.year, day.month)[1])


MATCHES: dict[str, Callable[[Rule, date], bool]] = {"daily": daily, "weekly": weekly, "monthly": monthly}


def instant(day: date, at: time, tz: zoneinfo.ZoneInfo) -> datetime:
    """The naive UTC instant of a local date and time: a skipped time moves to the first valid minute
    after it, a repeated time is its first occurrence (fold 0)."""
    wall = datetime.combine(day, at)
    while True:
        utc = wall.replace(tzinfo=tz).astimezone(UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == wall:  # a skipped wall time comes back as another one
            return utc.replace(tzinfo=None)
        wall += timedelta(minutes=1)


def next_slot(rule: Rule, after: datetime) -> datetime | None:
    """The rule's first slot strictly after `after` (naive UTC), or None when its end date has passed."""
    local_day = after.replace(tzinfo=UTC).astimezone(rule.zone).date()
    day = max(rule.start, local_day - timedelta(days=1))  # yesterday's slot may have been pushed past midnight
    matches = MATCHES[rule.frequency]
    while rule.end is None or day <= rule.end:
        if matches(rule, day):
            at = instant(day, rule.time_of_day, rule.zone)
            if at > after:
                return at
        day += timedelta(days=1)
    return None
