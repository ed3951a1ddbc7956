"""Delivery reports: move a message on by its upstream id, or keep the report until the id is known.

A report may also say that the recipient opted out at the carrier (Twilio 21610): the phone then goes on
the account's block list with source `carrier`, in the same transaction as the status change.
"""

from __future__ import annotations

from peewee import IntegrityError

from bot.blocklist import block
from bot.carriers import StatusReport
from bot.outbound import advance
from models import Carrier, OutboundMessage, PendingReport, db


def apply_report(carrier: Carrier, report: StatusReport) -> bool:
    """Apply one report; returns whether it matched a known message (else it is kept for later)."""
    message = OutboundMessage.get_or_none(
        (OutboundMessage.carrier == carrier) & (OutboundMessage.upstream_id == report.upstream_id)
    )
    if message is None:
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
        return False
    _apply(message, report.code, report.detail, report.opt_out)
    return True


def apply_pending(message: OutboundMessage) -> int:
    """Apply reports that arrived before the message's upstream id was known; returns how many."""
    pending = list(
        PendingReport.select()
        .where((PendingReport.carrier == message.carrier_id) & (PendingReport.upstream_id == message.upstream_id))
        .order_by(PendingReport.received_at, PendingReport.id)
    )
    for report in pending:
        _apply(message, report.code, report.detail, report.opt_out)
        report.delete_instance()
    return len(pending)


def _apply(message: OutboundMessage, code: int, detail: str, opt_out: bool) -> None:
    with db.atomic():
        advance(message.id, code, detail, source="carrier")
        if opt_out:
            block(message.account, message.recipient, "carrier")
