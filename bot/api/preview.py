"""`POST /messages/preview`: what a send would cost, without sending (bot/preview.py)."""

from __future__ import annotations

from flask import g

from bot.api import shapes
from bot.api.schema import route
from bot.contacts import group_named
from bot.errors import ApiError
from bot.preview import group_size, preview


@route(
    "POST",
    "/messages/preview",
    role="user",
    summary="Encoding, segments, price and balance after, for a text to phones or a group (nothing is sent)",
    body=shapes.PREVIEW_IN,
    response=shapes.PREVIEW,
)
def preview_message(body: dict) -> dict:
    if "to" in body and "group" in body:
        raise ApiError(422, "invalid", "give to (a phone or a list) or group, not both", "to")
    recipients = 1
    if "to" in body:
        recipients = len(body["to"]) if isinstance(body["to"], list) else 1
    elif "group" in body:
        group = group_named(g.account, body["group"], create=False)
        if group is None:
            raise ApiError(404, "not_found", f"no group named {body['group']!r}", "group")
        recipients = group_size(group.id)
    return preview(g.account, body["text"], recipients, body.get("track_links", False)).as_json()
