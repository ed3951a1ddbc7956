"""The kinds of outbox effect and the job that does one (bot/outbox.py): add a kind here to add a side effect.

Each kind is a handler, the config key of its backoff, and what to record when it is given up.
"""

from __future__ import annotations

from bot import callbacks, forward, mail, outbox
from models import db

KINDS: dict[str, outbox.Kind] = {
    "forward": outbox.Kind(forward.deliver, "FORWARD_RETRY_INTERVALS", forward.gave_up),
    "email_copy": outbox.Kind(mail.deliver_copy, "EMAIL_RETRY_INTERVALS"),
    callbacks.KIND: outbox.Kind(callbacks.deliver, "CALLBACK_RETRY_INTERVALS", callbacks.gave_up),
}


def perform(effect_id: int) -> str:
    """The RQ job of one effect: safe to run twice, late or after the effect is done."""
    with db.connection_context():
        return outbox.perform(effect_id, KINDS)
