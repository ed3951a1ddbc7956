"""The send governor: the one place that decides when a message may go (SPEC §12).

- **Pacing**: a carrier's `mps` caps submissions per second across every worker, in two steps kept in
  Redis and taken atomically by Lua scripts. A send first *reserves* its own moment (`reserve`: the
  carrier's next free slot, 1/mps apart, so a queue of messages is spread over time once, not re-tried
  in a herd), and the job is re-scheduled for it; at that moment it *takes* a slot of a sliding
  one-second window (`take_slots`), so any one-second span holds at most `mps` submissions whichever
  workers made them, even when a scheduler tick releases several reserved jobs at once. A job denied a
  slot is re-scheduled for when one frees up. Nothing sleeps. A chunk of messages (`pace`) reserves all
  its moments at once and is split into groups of `mps` consecutive moments (one window each), each
  group re-scheduled as one job for its first moment; a group takes its slots with one script call.
  The window is PACING_WINDOW_SECONDS (1.1): a tenth of a second of margin for the time between taking
  a slot and the carrier seeing the request, so the carrier's own one-second count stays within the cap
  when our requests travel unevenly. Groups are reserved a whole window apart, but a group takes its
  slots from a window LATE_SLACK_SECONDS shorter: a group that ran a few milliseconds late must not
  make the next one, on time, find its slots still taken, be refused and go round the scheduler again,
  which pushed every later group back (44 msg/s at a cap of 50 instead of 45.5).
  A slot taken is not yet a submission: a busy worker may reach the request a while later. So each
  submission *stamps* its slot on its submission thread, just before its request (`stamp`): the slot
  moves to that moment, where later takes count it. A slot that has aged out of the window meanwhile
  (the worker was held up longer than a window) is stamped only if the window at that moment still has
  room, else the message is not submitted and goes back to the governor (bot/pipeline/handoff.py). Any
  one-second window of submissions then holds at most `mps`, however late a worker runs: the window
  ending at a submission's stamp was checked when it was stamped. Slots are numbered by a counter kept
  for a day, so a slot number held by a worker held up for long is never given to another.
- **Quiet hours**: an account's `{"start": "HH:MM", "end": "HH:MM"}` window, judged in the recipient's
  local time from `phonenumbers.timezone`. A number with several zones is held while any of them is
  quiet, until a moment when none is. Where the zones' quiet windows cover the whole day (a country that
  spans half the globe), waiting would never end: the message then goes when its first zone's window ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from flask import current_app
from phonenumbers import timezone as number_timezones
from redis import Redis

from bot.pipeline.statuses import Status
from models import Carrier, OutboundMessage

LATE_SLACK_SECONDS = 0.02

WINDOW_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cap = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
local used = redis.call('ZCARD', KEYS[1])
local granted = math.min(wanted, math.max(0, cap - used))
local first = 0
if granted > 0 then
  first = redis.call('INCRBY', KEYS[2], granted) - granted + 1
  for i = first, first + granted - 1 do
    redis.call('ZADD', KEYS[1], now, i)
  end
end
redis.call('PEXPIRE', KEYS[1], 5000)
redis.call('PEXPIRE', KEYS[2], 86400000)
local wait = 0
if granted < wanted then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  wait = tonumber(oldest[2]) + tonumber(ARGV[3]) - now
end
return {granted, wait, first}
"""

STAMP_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local used = redis.call('ZCARD', KEYS[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  used = used + 1
end
if used > tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], 5000)
return 1
"""


RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[2]) / tonumber(ARGV[1])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local after = slot + interval * tonumber(ARGV[3])
redis.call('SET', KEYS[1], after, 'PX', math.floor((after - now) / 1000) + 1000)
return slot - now
"""


def reserve(redis: Redis, carrier_id: int, mps: int, window: float = 1.0, count: int = 1) -> timedelta:
    """Reserve the carrier's next `count` free moments (window/mps apart); how long until the first (0: now)."""
    script = _script(redis, "reserve", RESERVE_SCRIPT)
    wait_us = script(keys=[f"smsbot:pace:{carrier_id}:next"], args=[mps, int(window * 1_000_000), count])
    return timedelta(microseconds=max(0, int(wait_us)))


@dataclass(frozen=True)
class Slots:
    """What pacing allows now: `granted` submissions (slots `first` .. `first + granted - 1`, to be
    stamped at submission), and when to try again for the rest."""

    granted: int
    retry_after: timedelta
    first: int = 0


def take_slots(redis: Redis, carrier_id: int, mps: int, wanted: int = 1, window: float = 1.0) -> Slots:
    """Take up to `wanted` submission slots of a carrier capped at `mps` per second (0: no cap)."""
    if mps <= 0:
        return Slots(wanted, timedelta(0))
    script = _script(redis, "window", WINDOW_SCRIPT)
    keys = [f"smsbot:pace:{carrier_id}", f"smsbot:pace:{carrier_id}:seq"]
    granted, wait_us, first = script(keys=keys, args=[mps, wanted, int(window * 1_000_000)])
    return Slots(int(granted), timedelta(microseconds=max(0, int(wait_us))), int(first))


def stamp(redis: Redis, carrier_id: int, mps: int, slot: int, window: float) -> bool:
    """Move a taken slot to now, just before its submission; False when it had aged out of the window
    and the window has no room left for it now (the submission must not go)."""
    script = _script(redis, "stamp", STAMP_SCRIPT)
    return bool(script(keys=[f"smsbot:pace:{carrier_id}"], args=[mps, int(window * 1_000_000), slot]))


def slot_window() -> float:
    """The window slots are taken and stamped in: the reservations' spacing less LATE_SLACK_SECONDS."""
    return current_app.config["PACING_WINDOW_SECONDS"] - LATE_SLACK_SECONDS


def _script(redis: Redis, name: str, source: str):  # type: ignore[no-untyped-def]
    """A registered script, once per client (register_script caches the SHA, not the client)."""
    scripts = redis.__dict__.setdefault("_smsbot_scripts", {})
    if name not in scripts:
        scripts[name] = redis.register_script(source)
    return scripts[name]


@dataclass(frozen=True)
class Paced:
    """A chunk after pacing: the ids that may be submitted now (with the slot each must stamp, for a
    carrier with a cap), and groups re-scheduled for later."""

    now: list[int]
    later: list[tuple[timedelta, list[int]]]
    slots: dict[int, int]


def pace(redis: Redis, message_ids: list[int], reserved: bool) -> Paced:
    """Split a chunk of messages by their carriers' caps: what may go now, and when the rest may.

    Messages of a carrier without a cap, or no longer waiting to be sent, are not paced (the claim
    judges them). A first call reserves the messages' moments (`reserved` False); a group re-scheduled
    for its moment comes back with `reserved` True and only takes slots of the window.
    """
    waiting = OutboundMessage.status.in_((Status.QUEUED, Status.FUNDED, Status.SENDING))
    rows = (
        OutboundMessage.select(OutboundMessage.id, OutboundMessage.carrier, Carrier.mps)
        .join(Carrier)
        .where(OutboundMessage.id.in_(message_ids) & waiting & (Carrier.mps > 0))
        .tuples()
    )
    capped: dict[tuple[int, int], list[int]] = {}
    for message_id, carrier_id, mps in rows:
        capped.setdefault((carrier_id, mps), []).append(message_id)
    held = {message_id for ids in capped.values() for message_id in ids}
    now = [message_id for message_id in message_ids if message_id not in held]
    later: list[tuple[timedelta, list[int]]] = []
    slots: dict[int, int] = {}
    window = current_app.config["PACING_WINDOW_SECONDS"]
    for (carrier_id, mps), ids in capped.items():
        ids.sort()
        if not reserved:
            first = reserve(redis, carrier_id, mps, window, count=len(ids))
            groups = [
                (first + timedelta(seconds=window * n), ids[start : start + mps])
                for n, start in enumerate(range(0, len(ids), mps))
            ]
            due = [group for wait, group in groups if wait <= timedelta(milliseconds=10)]
            later.extend((wait, group) for wait, group in groups if wait > timedelta(milliseconds=10))
            ids = due[0] if due else []
        if ids:
            taken = take_slots(redis, carrier_id, mps, len(ids), slot_window())
            now.extend(ids[: taken.granted])
            slots.update(zip(ids[: taken.granted], range(taken.first, taken.first + taken.granted), strict=True))
            if taken.granted < len(ids):
                later.append((taken.retry_after, ids[taken.granted :]))
    return Paced(now, later, slots)


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def parse(cls, value: dict | None) -> QuietHours | None:
        """From the account's stored `{"start": "HH:MM", "end": "HH:MM"}`; None or an empty window: none."""
        if not value:
            return None
        start, end = (time.fromisoformat(value[name]) for name in ("start", "end"))
        return None if start == end else cls(start, end)

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, local: datetime) -> datetime:
        """The first end of the window at or after `local` (a time in that zone)."""
        end = datetime.combine(local.date(), self.end, tzinfo=local.tzinfo)
        return end if end > local else end + timedelta(days=1)


def quiet_until(window: QuietHours | None, recipient: str, now: datetime) -> datetime | None:
    """When a business send to `recipient` may go, as naive UTC, or None when it may go now.

    `now` is naive UTC like every stored time.
    """
    zones = recipient_zones(recipient)
    if window is None or not zones:
        return None
    moment = now.replace(tzinfo=UTC)
    for _ in range(len(zones) * 2 + 1):
        quiet = [zone for zone in zones if window.contains(moment.astimezone(zone).time())]
        if not quiet:
            break
        moment = max(window.ends_after(moment.astimezone(zone)) for zone in quiet).astimezone(UTC)
        if moment - now.replace(tzinfo=UTC) > timedelta(days=1):
            moment = window.ends_after(now.replace(tzinfo=UTC).astimezone(zones[0])).astimezone(UTC)
            break
    else:
        moment = window.ends_after(now.replace(tzinfo=UTC).astimezone(zones[0])).astimezone(UTC)
    return None if moment == now.replace(tzinfo=UTC) else moment.replace(tzinfo=None)


@lru_cache(maxsize=4096)
def recipient_zones(recipient: str) -> tuple[ZoneInfo, ...]:
    """The time zones of an E.164 number that the zone database knows (none for an unknown prefix)."""
    try:
        names = number_timezones.time_zones_for_number(phonenumbers.parse(recipient))
    except phonenumbers.NumberParseException:
        return ()
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue  # phonenumbers' "Etc/Unknown"
    return tuple(zones)
