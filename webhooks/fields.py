"""Reading carrier payloads: a JSON object or form, required fields, each failure a 400 naming the field.

Carriers retry anything but a 2xx for up to a day, so a message text is stored whatever it holds (lone
UTF-16 surrogates become U+FFFD, NUL characters are dropped: PostgreSQL cannot store them), while an
identifier or number that cannot be stored as it came (NUL, longer than its column) is a 400.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Request

from bot.carriers import ConcatPart, WebhookError
from models import utcnow

MAX_LENGTH = 255  # the CharField columns that ids and numbers are stored in
MAX_PARTS = 255  # a concatenated SMS has at most 255 parts (one octet in the UDH)
EARLIEST = datetime(2000, 1, 1)
CLOCK_SKEW = timedelta(days=1)
SURROGATE = re.compile("[\ud800-\udfff]")


def json_body(request: Request) -> Any:
    """The parsed JSON body, or None when there is none or it cannot be read."""
    try:
        return request.get_json(silent=True)
    except RecursionError:  # nested thousands deep: the parser gives up
        return None


def json_object(request: Request) -> dict[str, Any]:
    data = json_body(request)
    if not isinstance(data, dict):
        raise WebhookError(400, "the body must be a JSON object")
    return data


def form_or_json(request: Request) -> dict[str, Any]:
    """Vonage and Twilio may post a form or JSON; take whichever came."""
    if request.is_json:
        return json_object(request)
    return request.form.to_dict()


def _string(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise WebhookError(400, f"{name} is required and must be a string", name)
    return SURROGATE.sub("\ufffd", value)


def text(data: dict[str, Any], name: str, *, max_length: int = MAX_LENGTH) -> str:
    """A required id, number or word, storable as it came."""
    value = _string(data, name)
    if not value.strip():
        raise WebhookError(400, f"{name} is required and must be a string", name)
    if "\x00" in value:
        raise WebhookError(400, f"{name} must not contain NUL characters", name)
    if len(value) > max_length:
        raise WebhookError(400, f"{name} is longer than {max_length} characters", name)
    return value


def optional_text(data: dict[str, Any], name: str) -> str:
    """An optional short field (an error code): "" when absent."""
    return text(data, name) if data.get(name) not in (None, "") else ""


def message_text(data: dict[str, Any], name: str) -> str:
    """The SMS text: may be empty; NUL characters dropped, lone surrogates as U+FFFD."""
    return _string(data, name).replace("\x00", "")


def optional_time(data: dict[str, Any], name: str) -> datetime | None:
    """An ISO-8601 time from 2000 up to a day ahead, converted to naive UTC; None when absent."""
    value = data.get(name)
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        moment = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    except (ValueError, OverflowError):
        raise WebhookError(400, f"{name} must be an ISO-8601 time", name) from None
    if not EARLIEST <= moment <= utcnow() + CLOCK_SKEW:
        raise WebhookError(400, f"{name} must be between {EARLIEST.year} and a day from now", name)
    return moment


def concat_part(data: dict[str, Any], reference: str, number: str, total: str) -> ConcatPart:
    """One part of a long SMS from the carrier's three fields, with 1 <= part <= total <= 255."""
    values = {}
    for name in (number, total):
        try:
            values[name] = int(text(data, name))
        except ValueError:
            raise WebhookError(400, f"{name} must be a whole number", name) from None
    if not 1 <= values[total] <= MAX_PARTS:
        raise WebhookError(400, f"{total} must be from 1 to {MAX_PARTS}", total)
    if not 1 <= values[number] <= values[total]:
        raise WebhookError(400, f"{number} must be from 1 to {total}", number)
    return ConcatPart(text(data, reference), values[number], values[total])
