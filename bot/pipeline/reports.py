"""Delivery reports: move a message on by its upstream id, or keep the report until the id is known.

A report may arrive before the send job has committed the carrier's answer (the carrier reports at
once). It is then kept as a PendingReport and applied by whichever comes last: the report's webhook
looks for the message again after storing it, the send job applies pending reports after committing
the answer (bot/pipeline/handoff.py), and the sweeper applies any that still match (`sweep_pending`). Each of
those reads what the other committed, so no interleaving leaves a report parked; applying one twice is
harmless (a repeated event is stored once). Reports for ids never seen expire after the validity period.

A report may also say that the recipient opted out at the carrier (Twilio 21610): the phone then goes on
the account's block list with source `carrier`, in the same transaction as the status change.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from flask import current_app
from peewee import IntegrityError

from bot.blocklist import block
from bot.carriers import StatusReport
from bot.consent import Evidence
from bot.db import for_update
from bot.pipeline.outbound import LOCKED_COLUMNS, advance_last, advance_locked, advance_many, locked
from bot.prepared import Prepared
from models import Carrier, OutboundMessage, PendingReport, db, utcnow


def apply_reports(carrier: Carrier, reports: list[StatusReport]) -> int:
    """Apply the reports of one request (a carrier may post many at once); returns how many matched a
    known message.

    The reports of distinct known messages go in one transaction: one locked read of the messages (in
    id order, as any other locker of several), one INSERT of their events, one guarded UPDATE for each
    status. The others, in their order and one by one (`apply_report`): a message reported twice in
    the request, a report that says the recipient opted out, one whose message is not known yet.
    """
    if len(reports) == 1:
        return int(apply_report(carrier, reports[0]))
    seen = Counter(report.upstream_id for report in reports)
    alone = {report.upstream_id: report for report in reports if seen[report.upstream_id] == 1 and not report.opt_out}
    applied: set[str] = set()
    if alone:
        with db.atomic():
            messages = for_update(
                OutboundMessage.select(*LOCKED_COLUMNS)
                .where((OutboundMessage.carrier == carrier.id) & OutboundMessage.upstream_id.in_(list(alone)))
                .order_by(OutboundMessage.id)
            )
            changes = [(m, alone[m.upstream_id].code, alone[m.upstream_id].detail) for m in messages]
            advance_many(changes, "carrier")
        applied = {message.upstream_id for message, _, _ in changes}
    rest = [report for report in reports if report.upstream_id not in applied]
    return len(applied) + sum(apply_report(carrier, report) for report in rest)


def apply_report(carrier: Carrier, report: StatusReport) -> bool:
    """Apply one report; returns whether it matched a known message (else it is kept for later).

    A matched report costs one transaction: the message found by its upstream id and locked, then its
    event and its guarded status change, which on PostgreSQL go as one statement carrying the COMMIT
    (`advance_last`): two round trips.
    """
    with db.atomic():
        message = find_message(carrier, report)
        if message is not None:
            if report.opt_out:
                _apply(message, report.code, report.detail, opt_out=True)
            else:  # nothing follows the status change: it may carry the COMMIT
                advance_last(message, report.code, report.detail, source="carrier")
            return True
    try:
        with db.atomic():
            PendingReport.create(
                carrier=carrier,
                upstream_id=report.upstream_id,
                code=report.code,
                detail=report.detail[:250],
                opt_out=report.opt_out,
            )
    except IntegrityError:
        pass  # the same early report twice
    # The send job may have committed the upstream id since we looked, and read the pending list
    # before our row was committed: look again, now that the row is there.
    message = find_message(carrier, report)
    return message is not None and apply_pending(message) > 0


BY_UPSTREAM_ID = Prepared(
    lambda carrier_id, upstream_id: for_update(
        OutboundMessage.select(*LOCKED_COLUMNS).where(
            (OutboundMessage.carrier == carrier_id) & (OutboundMessage.upstream_id == upstream_id)
        )
    ),
    [OutboundMessage.carrier, OutboundMessage.upstream_id],
)


def find_message(carrier: Carrier, report: StatusReport) -> OutboundMessage | None:
    """The message a report is about, locked in the caller's transaction (LOCKED_COLUMNS): by upstream
    id, else by our own id when the carrier echoes it.

    Our id only matches a message of this carrier whose upstream id is unknown (a hand-off whose answer
    was lost) or the same; the report's upstream id is then recorded.
    """
    message = BY_UPSTREAM_ID.first(OutboundMessage, carrier.id, report.upstream_id)
    if message is not None or report.message_id is None:
        return message
    message = OutboundMessage.get_or_none(
        (OutboundMessage.id == report.message_id) & (OutboundMessage.carrier == carrier)
    )
    if message is None or message.upstream_id not in (None, report.upstream_id):
        return None
    if message.upstream_id is None:
        try:
            with db.atomic():
                OutboundMessage.update(upstream_id=report.upstream_id).where(
                    (OutboundMessage.id == message.id) & OutboundMessage.upstream_id.is_null()
                ).execute()
        except IntegrityError:
            return None  # another message of this carrier has that upstream id
    return BY_UPSTREAM_ID.first(OutboundMessage, carrier.id, report.upstream_id)


def apply_pending(message: OutboundMessage) -> int:
    """Apply reports that arrived before the message's upstream id was known; returns how many.

    Call it after the upstream id is committed, in its own transaction, never inside the one that
    records the id: a report stored meanwhile would be invisible to it.
    """
    pending = list(
        PendingReport.select()
        .where((PendingReport.carrier == message.carrier_id) & (PendingReport.upstream_id == message.upstream_id))
        .order_by(PendingReport.received_at, PendingReport.id)
    )
    for report in pending:
        with db.atomic():
            _apply(locked(message.id), report.code, report.detail, report.opt_out)
            PendingReport.delete().where(PendingReport.id == report.id).execute()
    return len(pending)


def _apply(message: OutboundMessage, code: int, detail: str, opt_out: bool) -> None:
    """A carrier's report for a message locked in the caller's transaction, and its opt-out if it says so."""
    advance_locked(message, code, detail, source="carrier")
    if opt_out:
        block(message.account, message.recipient, "carrier", evidence=Evidence(text=f"{code} {detail}".strip()))


def sweep_pending() -> dict[str, int]:
    """Apply pending reports whose upstream id now matches a message; drop those of ids never seen
    within the validity period (VALIDITY_MINUTES)."""
    matched = (
        OutboundMessage.select(OutboundMessage.id, OutboundMessage.carrier, OutboundMessage.upstream_id)
        .join(
            PendingReport,
            on=(PendingReport.carrier == OutboundMessage.carrier)
            & (PendingReport.upstream_id == OutboundMessage.upstream_id),
        )
        .distinct()
    )
    applied = sum(apply_pending(message) for message in list(matched))
    too_old = utcnow() - timedelta(minutes=current_app.config["VALIDITY_MINUTES"])
    expired = PendingReport.delete().where(PendingReport.received_at < too_old).execute()
    return {"pending_applied": applied, "pending_expired": expired}
