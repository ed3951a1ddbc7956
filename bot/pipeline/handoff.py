"""Handing claimed messages to their carriers: one attempt each, a chunk at a time, and what each outcome means.

A send job hands off a chunk of messages it has claimed together (bot/pipeline/jobs.py). The clean path is
written in bulk: one insert of the SENDING events, one write-ahead update, the submissions made concurrently
by a small pool of threads doing only the HTTP (each with its keep-alive connections, bot/carriers.py; the
look-ups at a carrier without an idempotency key go on the same threads, a chunk's all at once), then,
for the messages the carrier took, their upstream ids, statuses and events in one transaction of a few
statements. Every other outcome goes through the per-message steps below, on the job's thread.

A message of a carrier with a cap carries the slot the send governor took for it; its submission
thread stamps the slot just before the request (bot/pipeline/governor.py). When the slot has aged out and
the cap has no room left (the worker was held up), the message is not submitted: the try does not count,
and it goes back to the governor for a new moment (`pace_again`).

An attempt that is submitted ends in one of three ways, each recorded in the message's history:
- **answered**: the upstream id and status are recorded, retried on a fresh database connection when the
  connection is lost, so a cut connection never makes the claim lapse and the message go out again;
  reports that arrived meanwhile are applied after that commit;
- **surely not taken** (the carrier answered an error, the connection was refused, DNS failed): retried
  after SEND_RETRY_INTERVALS[attempt - 1] seconds by a job for that moment (the try number is the message's
  `attempts`, so each message of a chunk keeps its own count); after the last try 511
  DeliveryToGatewayFailed and a refund (a 4xx is a final rejection at once);
- **maybe taken** (a timeout, a connection reset or closed after the request went out): unknown is not
  failed. A carrier that keeps one message per idempotency key (generic) gets the same key again. A
  carrier without one (Twilio) is asked first, before anything else: its message list, matched on
  recipient, sender, text and time. Found: recorded as submitted. Surely absent (asked again before the
  next try, as a list may lag): sent again. The carrier cannot say: nothing is sent.
When the tries run out with the outcome still unknown, the message is left handed off (114
QueuedAtGateway with the reason in its history) and **not refunded**: a report settles it, else the
sweeper marks it 599 Unknown after its validity period. Refunding it would give the money back for a
message the carrier may deliver; resending it could deliver it twice.

`unconfirmed_since` is the write-ahead mark: set before a submission goes out and cleared when the
outcome is known, so a worker killed mid-request leaves the next attempt knowing it must look first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from flask import current_app
from peewee import Case, InterfaceError, OperationalError
from redis.exceptions import RedisError

from bot import carriers, metrics
from bot.blocklist import block
from bot.carriers import CarrierAdapter, SendError, Submission, Submitted
from bot.consent import Evidence
from bot.db import replace_connection
from bot.pipeline.governor import slot_window, stamp
from bot.pipeline.outbound import advance, record, record_events
from bot.pipeline.queue import enqueue_sends
from bot.pipeline.reports import apply_pending
from bot.pipeline.statuses import Status, predecessors
from bot.redis_conn import get_redis
from models import Carrier, OutboundMessage, PendingReport, db, utcnow

log = logging.getLogger("smsbot.jobs")
T = TypeVar("T")
ANSWER_TRIES = 3  # recording the carrier's answer: the first try and two on fresh connections


@dataclass
class Attempt:
    """One claimed message's attempt: what is submitted, and what its write-ahead mark said before."""

    message: OutboundMessage
    carrier: Carrier
    adapter: CarrierAdapter
    submission: Submission
    since: datetime | None = None  # the first submission whose answer we have not had
    earlier_unknown: bool = False  # an earlier attempt's outcome was unknown
    slot: int | None = None  # the send governor's slot for it, under its carrier's cap
    mark_before: datetime | None = None  # its write-ahead mark when the attempt began (before any look-up)


class NoRoom(Exception):
    """The carrier's cap had no room when the submission's turn came: it was not made."""


def hand_off(message_ids: list[int], tag: str, slots: dict[int, int] | None = None) -> dict[int, str]:
    """Run one attempt for each message this job has claimed; schedule the retries that are due.

    `slots` are the send governor's, for the messages of carriers with a cap. Returns each message's
    outcome: sent, retry, failed, unknown, error, or paced (not submitted: no room under the cap).
    """
    messages = list(
        OutboundMessage.select(OutboundMessage, Carrier)
        .join(Carrier)
        .where(OutboundMessage.id.in_(message_ids))
        .order_by(OutboundMessage.id)
    )
    record_all(messages, Status.SENDING)
    outcomes: dict[int, str] = {}
    attempts: list[Attempt] = []
    for message in messages:
        try:
            adapter = carriers.adapter_for(message.carrier.kind)
            slot = (slots or {}).get(message.id)
            attempt = Attempt(message, message.carrier, adapter, submission_for(message), slot=slot)
            attempt.mark_before = message.unconfirmed_since
            attempts.append(attempt)
        except Exception as exc:
            outcomes[message.id] = internal_error(message, exc, tag)
    earlier = [a for a in attempts if a.message.unconfirmed_since and not a.adapter.honours_idempotency_key]
    listed = lists_of(earlier, lambda a: a.message.unconfirmed_since)
    ready: list[Attempt] = []
    for attempt in attempts:
        message = attempt.message
        try:
            found = look_first(attempt, listed.get(message.id))
        except SendError as exc:
            outcomes[message.id] = failed(message, exc, tag)
            continue
        except Exception as exc:
            outcomes[message.id] = internal_error(message, exc, tag)
            continue
        if found:
            outcomes[message.id] = answered(message, found, tag)
        else:
            ready.append(attempt)
    write_ahead(ready)
    submitted = list(zip(ready, submit_all(ready), strict=True))
    outcomes.update(answered_all([(a, outcome) for a, outcome in submitted if isinstance(outcome, Submitted)], tag))
    outcomes.update(pace_again([(a, outcome) for a, outcome in submitted if isinstance(outcome, NoRoom)], tag))
    submitted = [(a, outcome) for a, outcome in submitted if not isinstance(outcome, NoRoom)]
    unsure = [a for a, o in submitted if isinstance(o, SendError) and must_reconcile(a, o)]
    listed = lists_of(unsure, lambda a: a.since)
    for attempt, outcome in submitted:  # the answers taken are recorded first, whatever happens next
        if not isinstance(outcome, Submitted):
            listing = listed.get(attempt.message.id)
            settling = lambda a=attempt, o=outcome, found=listing: settle(a, o, tag, found)  # noqa: E731
            outcomes[attempt.message.id] = alone(attempt.message, settling, tag)
    schedule_retries([message for message in messages if outcomes.get(message.id) == "retry"])
    return outcomes


def submission_for(message: OutboundMessage) -> Submission:
    return Submission(
        message_id=message.id,
        sender=message.sender,
        recipient=message.recipient,
        text=message.body,
        encoding=message.encoding,
        validity_minutes=message.validity_minutes,
        status_url=f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/webhooks/{message.carrier.name}/status",
    )


def record_all(messages: list[OutboundMessage], code: int, detail: str = "", source: str = "pipeline") -> None:
    """`record` for many messages in one statement."""
    if not messages:
        return
    now = utcnow()
    events = [
        {"message": message.id, "code": code, "detail": detail[:250], "source": source, "at": now}
        for message in messages
    ]
    record_events(events, messages)


def look_first(attempt: Attempt, listing: Listing | None) -> Submitted | None:
    """A carrier without an idempotency key is asked first whether an earlier, unanswered attempt reached
    it: `listing` is its answer (`lists_of`)."""
    message, number = attempt.message, attempt.message.attempts
    if listing is None:
        return None
    found = look_up(attempt, listing)
    if found:
        record(message, Status.SENDING, f"attempt {number}: found at the carrier as {found.upstream_id}")
        return found
    record(message, Status.SENDING, f"attempt {number}: not at the carrier; sending")
    mark_unconfirmed([message.id], None)
    message.unconfirmed_since = None
    return None


def write_ahead(attempts: list[Attempt]) -> None:
    """Mark every message about to be submitted "maybe sent" (one statement): a crash from here on means
    the next attempt must look first. A mark left by an earlier unanswered attempt is kept."""
    now = utcnow()
    for attempt in attempts:
        attempt.earlier_unknown = attempt.message.unconfirmed_since is not None
        attempt.since = attempt.message.unconfirmed_since or now
    mark_unconfirmed([attempt.message.id for attempt in attempts if not attempt.earlier_unknown], now)


def mark_unconfirmed(message_ids: list[int], since: datetime | None) -> None:
    if message_ids:
        OutboundMessage.update(unconfirmed_since=since).where(OutboundMessage.id.in_(message_ids)).execute()


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def pool() -> ThreadPoolExecutor:
    """The process's submission threads, started on first use (after any fork), each keeping its connections."""
    global _pool
    with _pool_lock:
        if _pool is None:
            workers = max(1, current_app.config["SEND_CONCURRENCY"])
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smsbot-send")
        return _pool


def on_threads(work: Callable[[Attempt], T], attempts: list[Attempt]) -> list[tuple[T | Exception, float]]:
    """`work` for each attempt on the submission threads, all at once, in an app context (for the
    adapters' settings): what it returned or the exception it raised, and the seconds it took. The
    threads do only HTTP: what the answers mean is decided on the job's thread."""
    if not attempts:
        return []
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def run(attempt: Attempt) -> tuple[T | Exception, float]:
        started = time.perf_counter()
        with app.app_context():
            try:
                result: T | Exception = work(attempt)
            except Exception as exc:
                result = exc
        return result, time.perf_counter() - started

    return list(pool().map(run, attempts))


def submit_all(attempts: list[Attempt]) -> list[Submitted | Exception]:
    """Submit concurrently; each outcome is the carrier's answer, the exception the submission raised,
    or NoRoom. The send latency metric is observed afterwards, in one Redis round trip."""
    timed = on_threads(submit, attempts)
    metrics.observe_many(
        "send",
        [
            ((attempt.carrier.name, metrics.send_result(outcome)), seconds)
            for attempt, (outcome, seconds) in zip(attempts, timed, strict=True)
            if not isinstance(outcome, NoRoom)
        ],
    )
    return [outcome for outcome, _ in timed]


def submit(attempt: Attempt) -> Submitted:
    """One submission, on a submission thread; a paced one first stamps its slot (raises NoRoom when the
    cap has no room for it now, or Redis cannot say)."""
    if attempt.slot is not None:
        carrier = attempt.carrier
        try:
            room = stamp(get_redis(current_app), carrier.id, carrier.mps, attempt.slot, slot_window())
        except RedisError as exc:
            raise NoRoom(f"the send governor could not be asked: {exc}") from exc
        if not room:
            raise NoRoom(f"no room left under {carrier.name}'s cap of {carrier.mps}/s")
    return attempt.adapter.submit(attempt.carrier, attempt.submission)


def pace_again(refused: list[tuple[Attempt, NoRoom]], tag: str) -> dict[int, str]:
    """Messages not submitted for want of room under their carrier's cap: the try does not count (its
    claim is undone), and they go back to the governor for a new moment. Should Redis not take the job,
    they wait between tries and the sweeper enqueues them; should the database fail, they stay claimed
    until the claim lapses, for the sweeper, and the chunk's other messages go on."""
    if not refused:
        return {}
    try:
        undone = durably(lambda: undo_claims(refused), tag)
    except Exception:
        log.exception("%s: %s messages with no room under their cap left for the sweeper", tag, len(refused))
        return {attempt.message.id: "error" for attempt, _ in refused}
    enqueue_sends(sorted(undone), again=True)
    log.info("%s: %s messages found no room under their carrier's cap; paced again", tag, len(undone))
    return {attempt.message.id: "paced" if attempt.message.id in undone else "skipped" for attempt, _ in refused}


def undo_claims(refused: list[tuple[Attempt, NoRoom]]) -> set[int]:
    """Each message as it was before this job claimed it (its try count, no lease, its write-ahead mark
    as the attempt found it), where the claim is still this job's; an event says why. Returns those undone."""
    now = utcnow()
    by_claim: dict[tuple[datetime | None, datetime | None], list[int]] = {}
    for attempt, _ in refused:
        by_claim.setdefault((attempt.message.lease_until, attempt.mark_before), []).append(attempt.message.id)
    undone: set[int] = set()
    for (lease, mark), ids in by_claim.items():
        returned = (
            OutboundMessage.update(
                attempts=OutboundMessage.attempts - 1, lease_until=None, unconfirmed_since=mark, updated_at=now
            )
            .where(OutboundMessage.id.in_(ids) & (OutboundMessage.lease_until == lease))
            .returning(OutboundMessage.id)
            .execute()
        )
        undone.update(row.id for row in returned)
    events = [
        {
            "message": attempt.message.id,
            "code": Status.SENDING,
            "detail": f"attempt {attempt.message.attempts}: not submitted, {reason}; paced again"[:250],
            "source": "pipeline",
            "at": now,
        }
        for attempt, reason in refused
        if attempt.message.id in undone
    ]
    record_events(events, [attempt.message for attempt, _ in refused if attempt.message.id in undone])
    return undone


def settle(attempt: Attempt, error: Exception, tag: str, listing: Listing | None) -> str:
    """A submission that did not simply succeed: reconcile (with the carrier's `listing`, when it must),
    retry, give up or record."""
    message = attempt.message
    try:
        if not isinstance(error, SendError):
            raise error
        found = reconcile(attempt, error, listing)
    except SendError as exc:
        return failed(message, exc, tag)
    except Exception as exc:
        return internal_error(message, exc, tag)
    return answered(message, found, tag)


def internal_error(message: OutboundMessage, exc: Exception, tag: str) -> str:
    advance(message.id, Status.INTERNAL_ERROR, f"{exc.__class__.__name__}: {exc}")
    log.exception("%s message=%s: internal error", tag, message.id, exc_info=exc)
    return "error"


def must_reconcile(attempt: Attempt, exc: SendError) -> bool:
    """A "maybe sent" submission to a carrier without an idempotency key: its list must say."""
    return exc.maybe_sent and not attempt.adapter.honours_idempotency_key


def reconcile(attempt: Attempt, exc: SendError, listing: Listing | None) -> Submitted:
    """After a failed submission: look a "maybe sent" one up in the carrier's `listing` (there is one
    exactly when it `must_reconcile`); else raise."""
    message, number = attempt.message, attempt.message.attempts
    if listing is not None:
        record(message, Status.SENDING, f"attempt {number}: {exc.detail}; reconciling")
        found = look_up(attempt, listing)
        if found:
            return found
        raise SendError(exc.code, f"{exc.detail}; not in the carrier's list yet", True, maybe_sent=True) from exc
    if not exc.maybe_sent and (not exc.retryable or not attempt.earlier_unknown):
        mark_unconfirmed([message.id], None)  # the carrier's own answer: surely not taken
    raise exc


Listing = list[Submitted] | Exception  # a carrier's messages like one of ours, or why it could not say


def lists_of(wanted: list[Attempt], since: Callable[[Attempt], datetime | None]) -> dict[int, Listing]:
    """Each attempt's look-up at its carrier (`find_submitted`, the messages like it since `since`), all
    at once on the submission threads: a chunk of look-ups takes as long as a chunk of submissions, well
    inside the send lease, instead of one carrier timeout per message in turn."""
    listings = on_threads(lambda a: a.adapter.find_submitted(a.carrier, a.submission, since(a)), wanted)
    return {attempt.message.id: listing for attempt, (listing, _) in zip(wanted, listings, strict=True)}


def look_up(attempt: Attempt, listing: Listing) -> Submitted | None:
    """The carrier's message that is this one; skips any already recorded for another of our messages.
    Raises the look-up's error when the carrier could not say."""
    if isinstance(listing, Exception):
        raise listing
    message, carrier = attempt.message, attempt.carrier
    for candidate in listing:
        known = OutboundMessage.get_or_none(
            (OutboundMessage.carrier == carrier) & (OutboundMessage.upstream_id == candidate.upstream_id)
        )
        if known is None or known.id == message.id:
            return candidate
    return None


def tries() -> int:
    return len(current_app.config["SEND_RETRY_INTERVALS"]) + 1


def failed(message: OutboundMessage, exc: SendError, tag: str) -> str:
    """Retry (returns "retry"), give up (511 + refund, or the carrier's rejection) or leave it handed off
    when its outcome is unknown."""
    number = message.attempts
    if exc.retryable and number < tries():
        record(message, Status.SENDING, f"attempt {number} failed: {exc.detail}")
        OutboundMessage.update(lease_until=None).where(OutboundMessage.id == message.id).execute()
        log.warning("%s message=%s: attempt %s failed, will retry: %s", tag, message.id, number, exc.detail)
        return "retry"
    unknown = OutboundMessage.get_by_id(message.id).unconfirmed_since is not None
    if unknown and (exc.retryable or exc.maybe_sent):
        detail = f"attempt {number}: {exc.detail}; the carrier may have it: not refunded, awaiting its report"
        advance(message.id, Status.QUEUED_AT_GATEWAY, detail)
        log.warning("%s message=%s: outcome unknown after %s attempts, left handed off", tag, message.id, number)
        return "unknown"
    code = Status.DELIVERY_TO_GATEWAY_FAILED if exc.retryable else exc.code
    with db.atomic():
        advance(message.id, code, f"attempt {number}: {exc.detail}")
        if exc.opt_out:  # as a delivery report saying so would (bot/pipeline/reports.py)
            block(message.account, message.recipient, "carrier", evidence=Evidence(text=f"{code} {exc.detail}"))
    log.warning("%s message=%s: failed for good: %s", tag, message.id, exc.detail)
    return "failed"


def schedule_retries(messages: list[OutboundMessage]) -> None:
    """A job per backoff time for the messages whose attempt failed, after SEND_RETRY_INTERVALS[attempts - 1].

    If Redis cannot take it, the message waits between tries and the sweeper enqueues it once overdue.
    """
    intervals = current_app.config["SEND_RETRY_INTERVALS"]
    due: dict[int, list[int]] = {}
    for message in messages:
        due.setdefault(intervals[min(message.attempts, len(intervals)) - 1], []).append(message.id)
    for wait, ids in due.items():
        enqueue_sends(ids, utcnow() + timedelta(seconds=wait), again=True)


def durably(write: Callable[[], T], tag: str) -> T:
    """Commit `write` (one transaction) and return what it returned; on a lost connection, again on a
    fresh one before giving up."""
    for _ in range(ANSWER_TRIES - 1):
        try:
            with db.atomic():
                return write()
        except (OperationalError, InterfaceError) as exc:
            log.warning("%s: recording the answer failed (%s); again on a fresh connection", tag, exc)
            replace_connection()
    with db.atomic():
        return write()


def answered(message: OutboundMessage, submitted: Submitted, tag: str) -> str:
    """Record one carrier's answer, then apply the reports that came before it."""
    record_answer(message.id, submitted, tag)
    message.upstream_id = submitted.upstream_id
    apply_reports([message], tag)
    log.info("%s message=%s: handed to %s as %s", tag, message.id, message.carrier.name, submitted.upstream_id)
    return "sent"


def record_answer(message_id: int, submitted: Submitted, tag: str) -> None:
    def write() -> None:
        OutboundMessage.update(upstream_id=submitted.upstream_id, unconfirmed_since=None).where(
            OutboundMessage.id == message_id
        ).execute()
        advance(message_id, submitted.code, f"upstream id {submitted.upstream_id}", source="carrier")

    durably(write, tag)


def answered_all(taken: list[tuple[Attempt, Submitted]], tag: str) -> dict[int, str]:
    """Record the answers of the messages the carriers took, in one transaction of a few statements.

    Per answer code, one UPDATE sets the upstream ids (a CASE on the id) and moves the status where the
    rank rule allows; one insert adds every event. Should that fail for another reason than a lost
    connection (an upstream id the carrier gave twice), each answer is recorded on its own; a message
    whose answer cannot be recorded is left claimed, for the sweeper once its claim lapses.
    """
    if not taken:
        return {}
    try:
        durably(lambda: write_answers(taken), tag)
    except Exception as exc:
        log.warning("%s: recording %s answers together failed (%s); one by one", tag, len(taken), exc)
        return {
            attempt.message.id: alone(attempt.message, lambda m=attempt.message, s=submitted: answered(m, s, tag), tag)
            for attempt, submitted in taken
        }
    for attempt, submitted in taken:
        attempt.message.upstream_id = submitted.upstream_id
    apply_reports([attempt.message for attempt, _ in taken], tag)
    log.info("%s: %s messages handed to their carriers", tag, len(taken))
    return {attempt.message.id: "sent" for attempt, _ in taken}


def alone(message: OutboundMessage, step: Callable[[], str], tag: str) -> str:
    """One message's step of a chunk; should it fail (the database), the message is left claimed for the
    sweeper once its claim lapses, and the chunk's other messages go on."""
    try:
        return step()
    except Exception:
        log.exception("%s message=%s: left for the sweeper", tag, message.id)
        return "error"


def write_answers(taken: list[tuple[Attempt, Submitted]]) -> None:
    now = utcnow()
    by_code: dict[int, list[tuple[Attempt, Submitted]]] = {}
    for attempt, submitted in taken:
        by_code.setdefault(submitted.code, []).append((attempt, submitted))
    for code, group in by_code.items():
        movable = OutboundMessage.status.in_(predecessors(code))
        OutboundMessage.update(
            upstream_id=Case(OutboundMessage.id, [(a.message.id, s.upstream_id) for a, s in group]),
            unconfirmed_since=None,
            status=Case(None, [(movable, code)], OutboundMessage.status),
            updated_at=Case(None, [(movable, now)], OutboundMessage.updated_at),
            lease_until=None,
        ).where(OutboundMessage.id.in_([a.message.id for a, _ in group])).execute()
    events = [
        {
            "message": a.message.id,
            "code": s.code,
            "detail": f"upstream id {s.upstream_id}",
            "source": "carrier",
            "at": now,
        }
        for a, s in taken
    ]
    record_events(events, [a.message for a, _ in taken])


def apply_reports(messages: list[OutboundMessage], tag: str) -> None:
    """Apply the reports that arrived before these messages' upstream ids were committed (one look for all)."""
    wanted = {(message.carrier_id, message.upstream_id): message for message in messages if message.upstream_id}
    if not wanted:
        return
    try:
        parked = (
            PendingReport.select(PendingReport.carrier, PendingReport.upstream_id)
            .where(
                PendingReport.carrier.in_(list({carrier for carrier, _ in wanted}))
                & PendingReport.upstream_id.in_([upstream for _, upstream in wanted])
            )
            .distinct()
            .tuples()
        )
        for key in list(parked):
            if key in wanted:
                apply_pending(wanted[key])  # it reads and locks the message itself
    except (OperationalError, InterfaceError) as exc:
        log.warning("%s: pending reports left for the sweeper: %s", tag, exc)
