"""RQ jobs of the outbound pipeline: send a chunk of messages (SPEC §5 steps 4–5); the outbox sweep.

Jobs take ids, load fresh state and are safe to run twice: the send job claims its messages with one
conditional UPDATE, so a second job, a second worker or a re-run after a crash finds nothing to do.
They run inside the worker's app context, each with its own database connection.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask import current_app
from rq import get_current_job

from bot import flows, imports, outbox, schedules
from bot.api import idempotency
from bot.pipeline import batches, concat, reports
from bot.pipeline.governor import pace
from bot.pipeline.handoff import hand_off
from bot.pipeline.outbound import advance
from bot.pipeline.queue import enqueue_sends
from bot.pipeline.statuses import Status
from bot.redis_conn import get_redis
from models import OutboundMessage, db, utcnow

log = logging.getLogger("smsbot.jobs")
F = TypeVar("F", bound=Callable[..., Any])

HANDED_OFF = (
    Status.SENDING,
    Status.QUEUED_AT_GATEWAY,
    Status.DELIVERED_TO_GATEWAY,
    Status.DELIVERED_TO_CARRIER,
    Status.DELIVERED_TO_GSM,
    Status.SUBSCRIBER_OFFLINE,
)


def with_connection(func: F) -> F:
    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        with db.connection_context():
            return func(*args, **kwargs)

    return run  # type: ignore[return-value]


def claim(message_ids: list[int]) -> list[int]:
    """Take messages for sending in one statement: from 102/103, or from 110 when an earlier claim has
    lapsed (or a try failed and its retry is due). Returns the ids taken; the others are not claimable."""
    if not message_ids:
        return []
    now = utcnow()
    lease = now + timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
    free_sending = (OutboundMessage.status == Status.SENDING) & (
        OutboundMessage.lease_until.is_null() | (OutboundMessage.lease_until < now)
    )
    claimable = OutboundMessage.status.in_((Status.QUEUED, Status.FUNDED)) | free_sending
    taken = (
        OutboundMessage.update(
            status=Status.SENDING, lease_until=lease, attempts=OutboundMessage.attempts + 1, updated_at=now
        )
        .where(OutboundMessage.id.in_(message_ids) & claimable)
        .returning(OutboundMessage.id)
        .execute()
    )
    return [row.id for row in taken]


@with_connection
def send_messages(message_ids: list[int], reserved: bool = False) -> dict[str, int]:
    """Submit a chunk of messages to their carriers and record the answers (bot/pipeline/handoff.py).

    Messages of a carrier with a cap (`mps`) may first be re-scheduled for their moment by the send
    governor (bot/pipeline/governor.py): they wait at their status, unclaimed. Returns how many messages
    ended the job in each way (paced, skipped: not claimable, sent, retry, failed, unknown, error).
    """
    job = get_current_job()
    tag = f"job={job.id if job else '-'}"
    paced = pace(get_redis(current_app), message_ids, reserved)
    for wait, ids in paced.later:
        enqueue_sends(ids, utcnow() + wait, reserved=True)
        log.info("%s: %s messages paced for their carrier's cap, due in %.2f s", tag, len(ids), wait.total_seconds())
    claimed = claim(paced.now)
    counts = Counter(hand_off(claimed, tag, paced.slots).values())
    counts["paced"] += sum(len(ids) for _, ids in paced.later)
    counts["skipped"] = len(paced.now) - len(claimed)
    if counts["skipped"]:
        log.info("%s: %s messages not claimable (sent, canceled or claimed elsewhere)", tag, counts["skipped"])
    return {outcome: count for outcome, count in counts.items() if count}


@with_connection
def sweep() -> dict[str, int]:
    """The outbox sweep, run once per SWEEP_INTERVAL_SECONDS by one worker (bot/worker.py).

    Each step judges its own rows (status, due time, lease), never RQ's memory, and is safe to repeat.
    """
    counts = {
        "schedules": schedules.run_due(utcnow()),  # recurring sends whose run is due: a batch each (bot/schedules.py)
        "requeued": requeue_messages(),
        "unknown": mark_unknown(),
        "effects": outbox.requeue_due(),
        "batches": batches.resume_stalled(),
        "imports": imports.resume_stalled(),  # contact imports whose job was lost or whose worker died
        "expired_flows": flows.expire_idle(),
        "cancelled_flows": flows.cancel_conversations(),  # their keyword stopped being a flow meanwhile
        "expired_parts": concat.expire_parts(),  # parts of long inbound SMS that waited too long
        "pending_reports": sum(reports.sweep_pending().values()),  # parked for ids now known, or never seen
        "idempotency_purged": idempotency.purge(),  # Idempotency-Key answers past their 24 hours
    }
    if any(counts.values()):
        log.info("sweep: %s", ", ".join(f"{count} {step}" for step, count in counts.items() if count))
    return counts


def requeue_messages() -> int:
    """Enqueue messages due and not being sent: waiting (their job lost, or Redis down when accepted),
    between two tries whose retry is overdue, or claimed by a worker that died (the claim lapsed).

    `updated_at` moves to now for each one enqueued, so the next sweep leaves it to that job for a grace period.
    """
    config = current_app.config
    now = utcnow()
    settled = now - timedelta(seconds=config["OUTBOX_GRACE_SECONDS"])
    waiting = (
        OutboundMessage.status.in_((Status.QUEUED, Status.FUNDED))
        & (OutboundMessage.updated_at < settled)
        & (OutboundMessage.send_at.is_null() | (OutboundMessage.send_at < settled))
    )
    between_tries = (
        (OutboundMessage.status == Status.SENDING)
        & OutboundMessage.lease_until.is_null()
        & (OutboundMessage.updated_at < settled)
    )
    abandoned = (OutboundMessage.status == Status.SENDING) & (OutboundMessage.lease_until < now)
    candidates = OutboundMessage.select(
        OutboundMessage.id,
        OutboundMessage.status,
        OutboundMessage.lease_until,
        OutboundMessage.attempts,
        OutboundMessage.updated_at,
    ).where(waiting | between_tries | abandoned)
    due = [  # read to the end first: SQLite refuses a write while the SELECT is open
        message
        for message in list(candidates)
        if not (message.status == Status.SENDING and message.lease_until is None) or retry_overdue(message, settled)
    ]
    requeued = 0
    size = max(1, config["SEND_CHUNK"])
    for chunk in (due[start : start + size] for start in range(0, len(due), size)):
        if not enqueue_sends([message.id for message in chunk]):
            break
        for status in {message.status for message in chunk}:
            OutboundMessage.update(updated_at=now).where(
                OutboundMessage.id.in_([message.id for message in chunk if message.status == status])
                & (OutboundMessage.status == status)
            ).execute()
        requeued += len(chunk)
    return requeued


def retry_overdue(message: OutboundMessage, settled: datetime) -> bool:
    """Whether the retry job scheduled after the message's last failed try should have run by `settled`."""
    intervals = current_app.config["SEND_RETRY_INTERVALS"] or [0]
    wait = intervals[min(max(message.attempts, 1), len(intervals)) - 1] + current_app.config["SEND_TIMEOUT_SECONDS"]
    return message.updated_at + timedelta(seconds=wait) < settled


def mark_unknown() -> int:
    """Handed-off messages with no final report by validity + UNKNOWN_GRACE_MINUTES end as 599."""
    overdue = utcnow() - timedelta(minutes=current_app.config["UNKNOWN_GRACE_MINUTES"])
    stale = OutboundMessage.select(OutboundMessage.id).where(
        OutboundMessage.status.in_(HANDED_OFF[1:]) & (OutboundMessage.expires_at < overdue)
    )
    return sum(
        advance(message.id, Status.UNKNOWN, "no final report within the validity period", "sweeper")
        for message in list(stale)
    )
