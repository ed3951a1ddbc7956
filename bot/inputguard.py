"""Input that would break a parser or the database, refused as a clear 4xx instead of a 500.

- JSON nested deeper than MAX_JSON_DEPTH (64) is refused with 400 before any view parses it (Python's
  JSON parser recurses, so thousands of `[` end in a RecursionError). The hook runs for every request
  with a JSON-looking body, so the API and the carrier webhooks both get it.
- Text that no database column can hold: NUL (PostgreSQL refuses it in text and JSON) and lone UTF-16
  surrogates (`"\\ud800"` in JSON; not encodable as UTF-8). The API refuses them as 422 naming the
  field (`first_unstorable`); a message text is instead stored with U+FFFD and rejected by the pipeline
  with 408, so the sender sees it in the message's history (`scrub`).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, Response, current_app, request

from bot.errors import error_response

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
BRACKET = re.compile(rb"[\[\]{}]")
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in BRACKET.findall(JSON_STRING.sub(b'""', raw)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def refuse_deep_json() -> tuple[Response, int] | None:
    if not request.content_length or request.mimetype in FORMS:
        return None
    raw = request.get_data(cache=True)
    looks_json = request.is_json or raw.lstrip()[:1] in (b"{", b"[")
    limit = current_app.config["MAX_JSON_DEPTH"]
    if looks_json and raw.count(b"[") + raw.count(b"{") > limit and json_depth(raw) > limit:
        return error_response(400, "bad_request", f"the JSON body is nested deeper than {limit} levels")
    return None


def has_unstorable(text: str) -> bool:
    return UNSTORABLE.search(text) is not None


def scrub(text: str) -> str:
    """The text with NUL and lone surrogates replaced by U+FFFD, so that any database can store it."""
    return UNSTORABLE.sub("\ufffd", text)


def first_unstorable(value: Any, where: str = "", lenient: frozenset[str] = frozenset()) -> str | None:
    """The path of the first string (or object key) in a JSON value holding NUL or a lone surrogate.

    Paths in `lenient` are skipped: their text is checked later, where it is stored.
    """
    if where in lenient:
        return None
    if isinstance(value, str):
        return (where or "body") if has_unstorable(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if has_unstorable(str(key)):
                return scrub(path)
            found = first_unstorable(item, path, lenient)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = first_unstorable(item, f"{where}[{index}]", lenient)
            if found:
                return found
    return None


def init_app(app: Flask) -> None:
    app.before_request(refuse_deep_json)
