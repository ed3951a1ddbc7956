"""The consent ledger for auditors: a phone's history, and the block list as CSV with its evidence.

`GET /consent?phone=` lists the phone's opt-outs and opt-ins newest first, paged like every list (the
phone in any format the account's region reads; 422 naming `phone`). `GET /blocklist/export` is the
current block list as CSV, one row per opt-out (everything, or a topic) with the event that made it;
text cells a spreadsheet would run as a formula get a leading apostrophe (bot/spreadsheet.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, g, request
from peewee import ModelSelect

from bot import consent, spreadsheet
from bot.api import shapes
from bot.api.contacts import e164
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import iso
from bot.errors import ApiError
from models import BlockEntry, ConsentEvent

EXPORT_COLUMNS = ("phone", "topic", "source", "since", "event_at", "event_source", "event_text", "event_actor")


def event_json(row: ConsentEvent) -> dict:
    return {
        "id": row.id,
        "phone": row.phone,
        "kind": row.kind,
        "topic": row.topic,
        "source": row.source,
        "text": row.text,
        "inbound_id": row.inbound_id,
        "actor": row.actor,
        "created_at": iso(row.created_at),
    }


@route(
    "GET",
    "/consent",
    role="viewer",
    summary="A phone's consent history (opt-outs and opt-ins with their evidence), newest first",
    query={"phone": shapes.PHONE_IN, **shapes.PAGING},
    response=shapes.CONSENT_HISTORY,
)
def history() -> dict:
    if "phone" not in request.args:
        raise ApiError(422, "required", "phone is required", "phone")
    phone = e164(request.args["phone"])
    events = consent.history(g.account.id, phone)
    rows, cursor = page(events, ConsentEvent.id)
    return {"phone": phone, "events": [event_json(row) for row in rows], "next": cursor}


def last_opt_outs(entries: list[BlockEntry]) -> dict[tuple[str, str], ConsentEvent]:
    """The latest opt-out event of each entry's phone and topic, in one query for the chunk."""
    events = (
        ConsentEvent.select()
        .where(
            (ConsentEvent.account == g.account.id)
            & ConsentEvent.phone.in_([entry.phone for entry in entries])
            & (ConsentEvent.kind == "opt_out")
        )
        .order_by(ConsentEvent.id)
    )
    return {(event.phone, event.topic or ""): event for event in events}


@route(
    "GET",
    "/blocklist/export",
    role="viewer",
    summary="The block list as CSV with each opt-out's source, topic, time and evidence (for auditors)",
    content_type="text/csv",
)
def export_blocklist() -> Response:
    entries = BlockEntry.select().where(BlockEntry.account == g.account.id).order_by(BlockEntry.id)
    return spreadsheet.attachment("blocklist.csv", EXPORT_COLUMNS, blocklist_rows(entries))


def blocklist_rows(entries: ModelSelect) -> Iterator[list[str]]:
    for chunk in spreadsheet.in_chunks(entries):
        events = last_opt_outs(chunk)  # one query per chunk
        for entry in chunk:
            event = events.get((entry.phone, entry.topic))
            texts = (event.source, event.text, event.actor) if event else ("", "", "")
            at = iso(event.created_at) if event else ""
            yield [entry.phone, entry.topic, entry.source, iso(entry.created_at), at, *map(spreadsheet.defuse, texts)]
