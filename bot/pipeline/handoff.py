"""Handing a claimed message to its carrier: one attempt of the send job, and what its outcome means.

An attempt ends in one of three ways, each recorded in the message's history:
- **answered**: the upstream id and status are recorded, retried on a fresh database connection when the
  connection is lost, so a cut connection never makes the claim lapse and the message go out again;
  reports that arrived meanwhile are applied after that commit;
- **surely not taken** (the carrier answered an error, the connection was refused, DNS failed): retried;
  after the last try 511 DeliveryToGatewayFailed and a refund (a 4xx is a final rejection at once);
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

from flask import current_app
from peewee import InterfaceError, OperationalError

from bot import carriers, metrics
from bot.carriers import CarrierAdapter, SendError, Submission, Submitted
from bot.db import replace_connection
from bot.pipeline.outbound import advance, record
from bot.pipeline.reports import apply_pending
from bot.pipeline.statuses import Status
from models import Carrier, OutboundMessage, db, utcnow

log = logging.getLogger("smsbot.jobs")
ANSWER_TRIES = 3  # recording the carrier's answer: the first try and two on fresh connections


class RetryLater(Exception):
    """An expected retry of the send job: RQ runs it again; logged as one warning line, no traceback
    (bot/logformat.py drops rq's traceback for an exception marked `expected_retry`)."""

    expected_retry = True


def hand_off(message_id: int, tag: str, retries_left: int) -> str:
    """Run one attempt for a message this job has claimed; raise RetryLater when another try is due."""
    message = OutboundMessage.get_by_id(message_id)
    record(message, Status.SENDING)
    carrier = message.carrier
    adapter = carriers.adapter_for(carrier.kind)
    try:
        submitted = attempt(message, carrier, adapter, submission_for(message, carrier))
    except SendError as exc:
        return failed(message, exc, tag, retries_left)
    except Exception as exc:
        advance(message_id, Status.INTERNAL_ERROR, f"{exc.__class__.__name__}: {exc}")
        log.exception("%s: internal error", tag)
        return "error"
    record_answer(message_id, submitted, tag)
    try:
        apply_pending(OutboundMessage.get_by_id(message_id))
    except (OperationalError, InterfaceError) as exc:
        log.warning("%s: pending reports left for the sweeper: %s", tag, exc)
    log.info("%s: handed to %s as %s", tag, carrier.name, submitted.upstream_id)
    return "sent"


def submission_for(message: OutboundMessage, carrier: Carrier) -> Submission:
    return Submission(
        message_id=message.id,
        sender=message.sender,
        recipient=message.recipient,
        text=message.body,
        encoding=message.encoding,
        validity_minutes=message.validity_minutes,
        status_url=f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/webhooks/{carrier.name}/status",
    )


def attempt(message: OutboundMessage, carrier: Carrier, adapter: CarrierAdapter, submission: Submission) -> Submitted:
    """Look first if an earlier attempt may have reached a carrier without a key; then submit."""
    number = message.attempts
    if message.unconfirmed_since and not adapter.honours_idempotency_key:
        found = look_up(message, carrier, adapter, submission, message.unconfirmed_since)
        if found:
            record(message, Status.SENDING, f"attempt {number}: found at the carrier as {found.upstream_id}")
            return found
        record(message, Status.SENDING, f"attempt {number}: not at the carrier; sending")
        mark_unconfirmed(message.id, None)
        message.unconfirmed_since = None
    earlier_unknown = message.unconfirmed_since is not None
    since = message.unconfirmed_since or utcnow()
    mark_unconfirmed(message.id, since)  # write-ahead: a crash from here on means "maybe sent"
    try:
        return metrics.timed_submit(carrier, submission)
    except SendError as exc:
        if exc.maybe_sent and not adapter.honours_idempotency_key:
            record(message, Status.SENDING, f"attempt {number}: {exc.detail}; reconciling")
            found = look_up(message, carrier, adapter, submission, since)
            if found:
                return found
            raise SendError(exc.code, f"{exc.detail}; not in the carrier's list yet", True, maybe_sent=True) from exc
        if not exc.maybe_sent and (not exc.retryable or not earlier_unknown):
            mark_unconfirmed(message.id, None)  # the carrier's own answer: surely not taken
        raise


def look_up(
    message: OutboundMessage, carrier: Carrier, adapter: CarrierAdapter, submission: Submission, since
) -> Submitted | None:
    """The carrier's message that is this one; skips any already recorded for another of our messages."""
    for candidate in adapter.find_submitted(carrier, submission, since):
        known = OutboundMessage.get_or_none(
            (OutboundMessage.carrier == carrier) & (OutboundMessage.upstream_id == candidate.upstream_id)
        )
        if known is None or known.id == message.id:
            return candidate
    return None


def mark_unconfirmed(message_id: int, since) -> None:  # type: ignore[no-untyped-def]
    OutboundMessage.update(unconfirmed_since=since).where(OutboundMessage.id == message_id).execute()


def failed(message: OutboundMessage, exc: SendError, tag: str, retries_left: int) -> str:
    """Retry, give up (511 + refund, or the carrier's rejection) or leave it handed off when unknown."""
    number = message.attempts
    if exc.retryable and retries_left > 0:
        record(message, Status.SENDING, f"attempt {number} failed: {exc.detail}")
        OutboundMessage.update(lease_until=None).where(OutboundMessage.id == message.id).execute()
        log.warning("%s: attempt %s failed, will retry: %s", tag, number, exc.detail)
        raise RetryLater(f"attempt {number} failed: {exc.detail}") from None
    unknown = OutboundMessage.get_by_id(message.id).unconfirmed_since is not None
    if unknown and (exc.retryable or exc.maybe_sent):
        detail = f"attempt {number}: {exc.detail}; the carrier may have it: not refunded, awaiting its report"
        advance(message.id, Status.QUEUED_AT_GATEWAY, detail)
        log.warning("%s: outcome unknown after %s attempts, left handed off: %s", tag, number, exc.detail)
        return "unknown"
    code = Status.DELIVERY_TO_GATEWAY_FAILED if exc.retryable else exc.code
    advance(message.id, code, f"attempt {number}: {exc.detail}")
    log.warning("%s: failed for good: %s", tag, exc.detail)
    return "failed"


def record_answer(message_id: int, submitted: Submitted, tag: str) -> None:
    """Commit the carrier's answer; on a lost connection, again on a fresh one before giving up."""
    for number in range(1, ANSWER_TRIES + 1):
        try:
            with db.atomic():
                OutboundMessage.update(upstream_id=submitted.upstream_id, unconfirmed_since=None).where(
                    OutboundMessage.id == message_id
                ).execute()
                advance(message_id, submitted.code, f"upstream id {submitted.upstream_id}", source="carrier")
            return
        except (OperationalError, InterfaceError) as exc:
            if number == ANSWER_TRIES:
                raise
            log.warning("%s: recording the answer failed (%s); again on a fresh connection", tag, exc)
            replace_connection()
