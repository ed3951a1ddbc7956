"""RQ jobs of the outbound pipeline: send a message (SPEC §5 steps 4–5); the outbox sweep.

Jobs take ids, load fresh state and are safe to run twice: the send job claims its message with a
conditional UPDATE, so a second job, a second worker or a re-run after a crash finds nothing to do.
They run inside the worker's app context, each with its own database connection.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask import current_app
from rq import get_current_job

from bot import flows, imports, outbox, schedules
from bot.api import idempotency
from bot.pipeline import batches, concat, reports
from bot.pipeline.governor import pacing_delay
from bot.pipeline.handoff import hand_off
from bot.pipeline.outbound import advance
from bot.pipeline.queue import enqueue_send
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


def claim(message_id: int) -> bool:
    """Take the message for sending: from 102/103, or from 110 when the previous claim has lapsed."""
    now = utcnow()
    lease = now + timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
    free_sending = (OutboundMessage.status == Status.SENDING) & (
        OutboundMessage.lease_until.is_null() | (OutboundMessage.lease_until < now)
    )
    claimable = OutboundMessage.status.in_((Status.QUEUED, Status.FUNDED)) | free_sending
    return bool(
        OutboundMessage.update(
            status=Status.SENDING, lease_until=lease, attempts=OutboundMessage.attempts + 1, updated_at=now
        )
        .where((OutboundMessage.id == message_id) & claimable)
        .execute()
    )


@with_connection
def send_message(message_id: int, reserved: bool = False) -> str:
    """Submit one message to its carrier and record the answer (bot/pipeline/handoff.py); RetryLater for RQ.

    A carrier with a cap (`mps`) may first have the job re-scheduled for the message's moment (the send
    governor, bot/pipeline/governor.py): the message waits at its status, unclaimed.
    """
    job = get_current_job()
    tag = f"job={job.id if job else '-'} message={message_id}"
    wait = pacing_delay(get_redis(current_app), message_id, reserved)
    if wait is not None:
        enqueue_send(message_id, utcnow() + wait, reserved=True)
        log.info("%s: paced for its carrier's cap, due in %.2f s", tag, wait.total_seconds())
        return "paced"
    if not claim(message_id):
        log.info("%s: not claimable (sent, canceled or claimed elsewhere)", tag)
        return "skipped"
    return hand_off(message_id, tag, (job.retries_left or 0) if job else 0)


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
    requeued = 0
    for message in list(candidates):  # read to the end first: SQLite refuses a write while the SELECT is open
        if message.status == Status.SENDING and message.lease_until is None and not retry_overdue(message, settled):
            continue
        if enqueue_send(message.id):
            OutboundMessage.update(updated_at=now).where(
                (OutboundMessage.id == message.id) & (OutboundMessage.status == message.status)
            ).execute()
            requeued += 1
    return requeued


def retry_overdue(message: OutboundMessage, settled: datetime) -> bool:
    """Whether the retry RQ scheduled after the message's last failed try should have run by `settled`."""
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
