"""RQ jobs of the outbound pipeline: send a message (SPEC §5 steps 4–5) and sweep the outbox.

Jobs take ids, load fresh state and are safe to run twice: the send job claims its message with a
conditional UPDATE, so a second job, a second worker or a re-run after a crash finds nothing to do.
They run inside the worker's app context, each with its own database connection.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import current_app
from rq import get_current_job

from bot import concat, flows, reports
from bot.api import idempotency
from bot.handoff import hand_off
from bot.outbound import advance
from bot.queue import enqueue_in, enqueue_send, has_live_job
from bot.statuses import Status
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
def send_message(message_id: int) -> str:
    """Submit one message to its carrier and record the answer (bot/handoff.py); RetryLater for RQ."""
    job = get_current_job()
    tag = f"job={job.id if job else '-'} message={message_id}"
    if not claim(message_id):
        log.info("%s: not claimable (sent, canceled or claimed elsewhere)", tag)
        return "skipped"
    return hand_off(message_id, tag, (job.retries_left or 0) if job else 0)


@with_connection
def sweep() -> dict[str, int]:
    """Enqueue outbox messages that have no live job; mark 599 after validity + grace; reschedule."""
    config = current_app.config
    now = utcnow()
    settled = now - timedelta(seconds=config["OUTBOX_GRACE_SECONDS"])
    # Queued, or between two tries of a send, with no live job: Redis lost it or was down.
    orphaned = (OutboundMessage.status.in_((Status.QUEUED, Status.FUNDED)) & (OutboundMessage.updated_at < settled)) | (
        (OutboundMessage.status == Status.SENDING) & OutboundMessage.lease_until.is_null()
    )
    # Claimed, but the claim lapsed: the worker died mid-send (its job still says "started").
    abandoned = (OutboundMessage.status == Status.SENDING) & (OutboundMessage.lease_until < now)
    requeued = 0
    for message in OutboundMessage.select(OutboundMessage.id, OutboundMessage.send_at).where(orphaned):
        if not has_live_job(message.id) and enqueue_send(message.id, message.send_at):
            requeued += 1
    for message in OutboundMessage.select(OutboundMessage.id).where(abandoned):
        requeued += enqueue_send(message.id)
    overdue = now - timedelta(minutes=config["UNKNOWN_GRACE_MINUTES"])
    unknown = 0
    stale = OutboundMessage.select(OutboundMessage.id).where(
        OutboundMessage.status.in_(HANDED_OFF[1:]) & (OutboundMessage.expires_at < overdue)
    )
    for message in stale:
        unknown += advance(message.id, Status.UNKNOWN, "no final report within the validity period", "sweeper")
    if requeued or unknown:
        log.info("sweep: %s re-enqueued, %s marked 599", requeued, unknown)
    flows.expire_idle()  # idle flow conversations end as "expired" (bot/flows.py)
    concat.expire_parts()  # parts of long inbound SMS that waited too long (bot/concat.py)
    reports.sweep_pending()  # reports parked for ids now known, or never seen (bot/reports.py)
    idempotency.purge()  # Idempotency-Key answers past their 24 hours
    schedule_sweep()
    return {"requeued": requeued, "unknown": unknown}


def schedule_sweep() -> None:
    """Schedule the next sweep; one job id per interval slot, so several workers schedule it once."""
    interval = current_app.config["SWEEP_INTERVAL_SECONDS"]
    slot = int(time.time()) // interval + 1
    enqueue_in(timedelta(seconds=interval), "bot.jobs.sweep", job_id=f"sweep-{slot}")
