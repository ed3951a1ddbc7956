"""Bot deliveries: the account's forwards to its business URLs, each with its log of tries, and a replay.

A forward that used up its retries (or was refused) is `failed`: a dead letter the business can read and
send again once its bot is back. Every try of a forward carries `Idempotency-Key: <inbound id>`, the
same on retries and replays, so a bot that got one twice can tell.
"""

from __future__ import annotations

from flask import g, request

from bot import outbox
from bot.api import shapes
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import iso
from bot.errors import ApiError
from models import Effect, InboundMessage, VirtualNumber

TRY = shapes.obj(
    {
        "at": {"type": "string"},
        "outcome": {"type": "string"},
        "http_status": {"type": ["integer", "null"]},
        "answer": {"type": "string"},
    },
    ["at", "outcome"],
)
DELIVERY = shapes.obj(
    {
        "id": {"type": "integer"},
        "inbound_id": {"type": "integer"},
        "url": {"type": "string"},
        "state": {"type": "string", "enum": ["pending", "done", "failed"]},
        "tries": {"type": "array", "items": TRY},
        "last_error": {"type": "string"},
        "created_at": {"type": "string"},
        "done_at": {"type": ["string", "null"]},
    },
    ["id", "inbound_id", "url", "state", "tries", "last_error", "created_at", "done_at"],
)


def forwards():  # type: ignore[no-untyped-def]
    """The account's forwards (an effect belongs to the account of its inbound's number)."""
    return (
        Effect.select(Effect)
        .join(InboundMessage)
        .join(VirtualNumber)
        .where((Effect.kind == "forward") & (VirtualNumber.account == g.account.id))
    )


def delivery(row: Effect) -> dict:
    return {
        "id": row.id,
        "inbound_id": row.inbound_id,
        "url": row.payload.get("url", ""),
        "state": row.state,
        "tries": row.tries,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "done_at": iso(row.done_at),
    }


@route(
    "GET",
    "/deliveries",
    role="viewer",
    summary="Forwards to the business's bot URLs with their tries (state=failed: the dead letters)",
    query={**shapes.PAGING, "state": {"type": "string", "enum": ["pending", "done", "failed"]}},
    response=shapes.listing("deliveries", DELIVERY),
)
def list_deliveries() -> dict:
    query = forwards()
    if "state" in request.args:
        query = query.where(Effect.state == request.args["state"])
    rows, cursor = page(query, Effect.id)
    return {"deliveries": [delivery(row) for row in rows], "next": cursor}


def own_delivery(delivery_id: int) -> Effect:
    row = forwards().where(Effect.id == delivery_id).first()
    if row is None:
        raise ApiError(404, "not_found", f"no delivery {delivery_id}")
    return row


@route("GET", "/deliveries/<int:delivery_id>", role="viewer", summary="A forward with its tries", response=DELIVERY)
def get_delivery(delivery_id: int) -> dict:
    return delivery(own_delivery(delivery_id))


@route(
    "POST",
    "/deliveries/<int:delivery_id>/replay",
    role="user",
    summary="Send a failed forward again (409 unless it failed)",
    response=DELIVERY,
    status=202,
    location="/deliveries/{id}",
    idempotent=True,
)
def replay_delivery(delivery_id: int) -> tuple[dict, int]:
    row = own_delivery(delivery_id)
    if not outbox.replay(row):
        raise ApiError(409, "conflict", f"delivery {delivery_id} is {row.state}: only a failed one is replayed")
    return delivery(Effect.get_by_id(row.id)), 202
