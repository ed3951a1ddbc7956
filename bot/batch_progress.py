"""How far a batch (a group or multi-recipient send) has come: one GROUP BY over its messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peewee import fn

from bot.pipeline import statuses
from models import Account, Batch, OutboundMessage, TrackedLink


@dataclass(frozen=True)
class Progress:
    batch: Batch
    accepted: int  # messages created for the batch so far
    by_status_group: dict[str, int]  # by the group of each message's current status
    done: bool
    clicks: int  # on the tracked links of the batch's messages

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.batch.id,
            "recipients": self.batch.recipients,
            "accepted": self.accepted,
            "by_status_group": self.by_status_group,
            "done": self.done,
            "clicks": self.clicks,
        }


def own_batch(account: Account, batch_id: str) -> Batch | None:
    """The account's batch with that id; another account's batch is None, as an unknown one."""
    return Batch.get_or_none((Batch.id == batch_id) & (Batch.account == account.id))


def progress(batch: Batch) -> Progress:
    """Counts by status group, from one query grouped by status.

    `done` means the fan-out has finished (the batch's state is done: every member it will send to has
    its message; a multi-recipient batch is done when written) and every message has a final status
    (2xx, 4xx or 5xx other than 503 SubscriberOffline, which the network still retries; 599 Unknown is
    final). A scheduled or quiet-hours-held message is Info, so its batch is not done until it is sent.
    """
    counts = (
        OutboundMessage.select(OutboundMessage.status, fn.COUNT(OutboundMessage.id))
        .where((OutboundMessage.batch == batch.id) & (OutboundMessage.account == batch.account_id))
        .group_by(OutboundMessage.status)
        .tuples()
    )
    by_group = dict.fromkeys(statuses.GROUPS.values(), 0)
    accepted = open_messages = 0
    for code, count in counts:
        by_group[statuses.group(code)] += count
        accepted += count
        if not statuses.is_final(code):
            open_messages += count
    clicks = (
        TrackedLink.select(fn.COALESCE(fn.SUM(TrackedLink.clicks), 0))
        .where((TrackedLink.batch == batch.id) & (TrackedLink.account == batch.account_id))
        .scalar()
    )
    return Progress(batch, accepted, by_group, batch.state == "done" and open_messages == 0, int(clicks or 0))
