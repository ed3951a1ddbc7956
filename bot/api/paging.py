"""Cursor paging: newest first; `next` is the id to continue below, or null."""

from __future__ import annotations

from typing import Any

from flask import request
from peewee import ModelSelect

from bot.errors import ApiError

DEFAULT_LIMIT, MAX_LIMIT = 50, 500


def int_arg(name: str, default: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(422, "invalid", f"{name} must be an integer", name) from None


def page(query: ModelSelect, id_field: Any) -> tuple[list[Any], str | None]:
    """One page of `query` ordered by id descending, after the `cursor` argument."""
    limit = min(max(int_arg("limit", DEFAULT_LIMIT) or DEFAULT_LIMIT, 1), MAX_LIMIT)
    cursor = int_arg("cursor")
    if cursor is not None:
        query = query.where(id_field < cursor)
    rows = list(query.order_by(id_field.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (str(rows[-1].id) if more and rows else None)
