"""Group fan-out: a Batch row (written when the API accepted the send) becomes one message per member.

Each job claims the batch (a lease), accepts the next FANOUT_CHUNK members after `cursor` (contact id
order) at once (`outbound.accept_many`: a fixed number of statements per chunk) and moves the cursor in
the same transaction, then enqueues the next chunk after commit. A killed
worker leaves the batch with the cursor of its last committed chunk; the sweeper resumes a batch whose
lease lapsed or whose next job never came, and the (batch, recipient) unique index keeps a member from
a second message even when two jobs race (the chunk's INSERT skips members already accepted, and
they cost nothing).
"""

from __future__ import annotations

from flask import current_app

from bot.db import in_subquery
from bot.pipeline import leases
from bot.pipeline.outbound import accept_many, route_for
from bot.pipeline.queue import enqueue_job_after_commit
from bot.pipeline.sending import FAN_OUT_JOB, Send, draft
from models import Batch, Contact, GroupMember, db, utcnow


def fan_out(batch_id: str) -> str:
    """One chunk of a group send (the RQ job); safe to run twice or after the batch is done."""
    with db.connection_context():
        if not leases.claim(Batch, batch_id, Batch.state == "pending"):
            return "skipped"
        batch = Batch.get_by_id(batch_id)
        send = Send(
            batch.account,
            batch.sender,
            batch.text,
            batch.send_at,
            batch.validity_minutes,
            batch.status_callback,
            batch.track_links,
            batch.topic,
        )
        size, route = current_app.config["FANOUT_CHUNK"], route_for(batch.account, batch.sender)
        with db.atomic():
            chunk = (
                GroupMember.select(GroupMember.contact)
                .where((GroupMember.group == batch.group_id) & (GroupMember.contact > batch.cursor))
                .order_by(GroupMember.contact)
                .limit(size)
            )
            members = list(
                Contact.select(Contact.id, Contact.phone)
                .where(in_subquery(Contact.id, chunk))
                .order_by(Contact.id)
                .tuples()
            )
            accept_many([draft(send, route, phone, batch.id) for _, phone in members])
            finished = len(members) < size
            now = utcnow()
            Batch.update(
                cursor=members[-1][0] if members else batch.cursor,
                lease_until=None,
                updated_at=now,
                state="done" if finished else "pending",
                done_at=now if finished else None,
            ).where(Batch.id == batch.id).execute()
            if not finished:
                enqueue_job_after_commit(FAN_OUT_JOB, batch.id)
        return "done" if finished else "chunk"


def resume_stalled() -> int:
    """The sweeper's step: enqueue unfinished batches whose lease lapsed or whose next chunk never started."""
    return leases.resume_stalled(Batch, Batch.state == "pending", FAN_OUT_JOB)
