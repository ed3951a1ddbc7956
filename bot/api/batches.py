"""A batch's progress: `GET /api/v1/batches/<id>` (a group or multi-recipient send, SPEC §12)."""

from __future__ import annotations

from flask import g

from bot.api import shapes
from bot.api.schema import route
from bot.batch_progress import own_batch, progress
from bot.errors import ApiError


@route(
    "GET",
    "/batches/<batch_id>",
    role="viewer",
    summary="A batch's progress: messages accepted so far, counts by status group, done",
    response=shapes.BATCH,
)
def get_batch(batch_id: str) -> dict:
    """`done`: the fan-out finished and every message of the batch has a final status (bot/batch_progress.py)."""
    batch = own_batch(g.account, batch_id)
    if batch is None:
        raise ApiError(404, "not_found", f"no batch {batch_id}")
    return progress(batch).as_json()
