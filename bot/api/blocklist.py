"""The block list (shared by every service of the account) and the GDPR erase of one phone."""

from __future__ import annotations

from flask import g, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from bot import blocklist, consent, privacy
from bot.api import bp, shapes
from bot.api.contacts import e164
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import block_entry
from bot.api.topics import known_topic
from bot.consent import Evidence
from bot.errors import ApiError
from keywords.text import fold
from models import BlockEntry


class PhonePart(BaseConverter):
    """A path part that may be a phone (it holds a digit): `/blocklist/export` is not a phone to unblock."""

    regex = r"[^/]*[0-9][^/]*"


def add_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("phone", PhonePart)


bp.record_once(add_converter)  # before the rules below are bound to the app's map


def by_key() -> Evidence:
    """The consent ledger's proof of an API change: the key that made it."""
    return Evidence(actor=f"key:{g.api_key.prefix}")


@route(
    "GET",
    "/blocklist",
    role="viewer",
    summary="Blocked phones",
    query=shapes.PAGING,
    response=shapes.listing("blocklist", shapes.BLOCK_ENTRY),
)
def list_blocklist() -> dict:
    rows, cursor = page(BlockEntry.select().where(BlockEntry.account == g.account.id), BlockEntry.id)
    return {"blocklist": [block_entry(row) for row in rows], "next": cursor}


@route(
    "POST",
    "/blocklist",
    role="user",
    summary="Block a phone",
    body=shapes.BLOCK_IN,
    response=shapes.BLOCK_ENTRY,
    status=201,
    idempotent=True,
    location="/blocklist/{phone}",
)
def add_block(body: dict) -> tuple[dict, int]:
    """`topic`: block the phone for that topic only (bot/consent.py); without it, for everything."""
    phone = e164(body["phone"])
    topic = known_topic(body["topic"]) if "topic" in body else ""
    blocklist.block(g.account, phone, "api", topic, by_key())
    entry = BlockEntry.get(
        (BlockEntry.account == g.account.id) & (BlockEntry.phone == phone) & (BlockEntry.topic == topic)
    )
    return block_entry(entry), 201


@route(
    "DELETE",
    "/blocklist/<phone:e164_phone>",
    role="user",
    summary="Unblock a phone the business blocked, for everything or ?topic= (a phone's own opt-out: 409)",
    query={"topic": shapes.TOPIC_NAME},
    status=204,
)
def remove_block(e164_phone: str) -> tuple[str, int]:
    phone = e164(e164_phone, "e164_phone")
    topic = fold(request.args["topic"].strip()) if "topic" in request.args else ""
    entry = BlockEntry.get_or_none(
        (BlockEntry.account == g.account.id) & (BlockEntry.phone == phone) & (BlockEntry.topic == topic)
    )
    if entry is None:
        raise ApiError(404, "not_found", f"{e164_phone} is not blocked{f' for {topic}' if topic else ''}")
    if consent.lifted_only_by_phone(entry):
        raise ApiError(
            409,
            "opted_out",
            f"{phone} opted out itself (source {entry.source}); only the phone can lift it by texting START",
            "e164_phone",
        )
    blocklist.unblock_topic(g.account, phone, topic, "api", by_key())
    return "", 204


@route(
    "DELETE",
    "/privacy/<e164_phone>",
    role="admin",
    summary="Erase a phone's personal data (GDPR)",
    response=shapes.ERASED,
)
def erase(e164_phone: str) -> dict:
    return privacy.erase(g.account, e164(e164_phone, "e164_phone"))
