"""Reading carrier payloads: a JSON object or form, required fields, each failure a 400 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Request

from bot.carriers import WebhookError


def json_object(request: Request) -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise WebhookError(400, "the body must be a JSON object")
    return data


def form_or_json(request: Request) -> dict[str, Any]:
    """Vonage and Twilio may post a form or JSON; take whichever came."""
    if request.is_json:
        return json_object(request)
    return request.form.to_dict()


def text(data: dict[str, Any], name: str, *, allow_empty: bool = False) -> str:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise WebhookError(400, f"{name} is required and must be a string", name)
    return value


def optional_time(data: dict[str, Any], name: str) -> datetime | None:
    """An ISO-8601 time converted to naive UTC, or None when absent."""
    value = data.get(name)
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise WebhookError(400, f"{name} must be an ISO-8601 time", name) from None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
