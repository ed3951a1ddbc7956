"""Long inbound SMS that arrive in parts (Vonage `concat-*`): keep each part, assemble once all are in.

The parts of one message share the carrier, the sender, the carrier's reference and the total; each part
keeps its own carrier id, which recognises a carrier's retry (also after the message was assembled) and
names the assembled message, so two messages that reuse a reference never share an id. Parts wait at most
CONCAT_TTL_MINUTES: older ones are dropped when a new part with their reference arrives and by the sweeper.
A part whose number is already waiting under the same key starts a new message: the older message's
parts up to that one are dropped (its missing part will not come).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from flask import current_app
from peewee import IntegrityError

from bot import phones
from bot.carriers import InboundSms
from models import Carrier, InboundPart, db, utcnow

log = logging.getLogger("smsbot.concat")
MAX_ID_LENGTH = 255


def reassemble(carrier: Carrier, sms: InboundSms) -> InboundSms | None:
    """Keep one part; once every part is in, return the whole message (else None).

    Runs inside the caller's transaction. The carrier row is locked first (a no-op on SQLite, whose write
    transactions are serial), so two last parts arriving at once cannot both miss each other.
    """
    assert sms.part is not None
    if db.for_update:
        Carrier.select().where(Carrier.id == carrier.id).for_update().get()
    same_reference = (
        (InboundPart.carrier == carrier)
        & (InboundPart.sender == sms.sender)
        & (InboundPart.reference == sms.part.reference)
    )
    InboundPart.delete().where(same_reference & (InboundPart.received_at < cutoff())).execute()
    if InboundPart.get_or_none((InboundPart.carrier == carrier) & (InboundPart.carrier_message_id == sms.message_id)):
        return None  # a carrier's retry of a part we have (or had)
    waiting = same_reference & (InboundPart.total == sms.part.total) & InboundPart.assembled_at.is_null()
    clash = InboundPart.select().where(waiting & (InboundPart.part == sms.part.number)).order_by(InboundPart.id.desc())
    if (older := clash.first()) is not None:
        dropped = InboundPart.delete().where(waiting & (InboundPart.id <= older.id)).execute()
        log.warning(
            "concat %s from %s: a new message reuses it; %s parts dropped",
            sms.part.reference,
            phones.mask(sms.sender),
            dropped,
        )
    try:
        with db.atomic():
            InboundPart.create(
                carrier=carrier,
                sender=sms.sender,
                reference=sms.part.reference,
                part=sms.part.number,
                total=sms.part.total,
                carrier_message_id=sms.message_id,
                body=sms.text,
            )
    except IntegrityError:
        return None  # the same retry, twice at once
    parts = list(InboundPart.select().where(waiting).order_by(InboundPart.part))
    if len(parts) < sms.part.total:
        return None
    InboundPart.update(assembled_at=utcnow()).where(InboundPart.id.in_([part.id for part in parts])).execute()
    return InboundSms(
        message_id=assembled_id([part.carrier_message_id for part in parts]),
        sender=sms.sender,
        recipient=sms.recipient,
        text="".join(part.body for part in parts),
        received_at=sms.received_at,
        carrier_replied=sms.carrier_replied,
    )


def assembled_id(part_ids: list[str]) -> str:
    """The assembled message's carrier id, from its parts' own ids (a digest when they are too long)."""
    joined = "concat:" + ",".join(part_ids)
    if len(joined) <= MAX_ID_LENGTH:
        return joined
    return "concat:sha256:" + hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()


def cutoff() -> datetime:
    return utcnow() - timedelta(minutes=current_app.config["CONCAT_TTL_MINUTES"])


def expire_parts() -> int:
    """Drop parts older than CONCAT_TTL_MINUTES, waiting or assembled (the sweeper calls this)."""
    dropped = InboundPart.delete().where(InboundPart.received_at < cutoff()).execute()
    if dropped:
        log.info("concat: %s expired parts dropped", dropped)
    return dropped
