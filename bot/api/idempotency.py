"""`Idempotency-Key` on the POSTs that create something (SPEC §11): a retry gets the first answer.

The key is kept 24 hours per account (per operator key on the operator routes). The request runs in one
database transaction that first claims the key by inserting its IdempotentRequest row; a concurrent
request with the same key waits on that row's unique index (PostgreSQL) or on the write lock (SQLite)
until the first commits, then replays its answer. Only a 2xx answer is kept: an error rolls the claim
back with everything else, so the key can be used again (as Stripe does for failed validation).
A secret in an answer (a new API key) is never stored, so its replay leaves it out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from flask import Response, g, request
from peewee import IntegrityError

from bot.errors import ApiError
from models import IdempotentRequest, db, utcnow

HEADER = "Idempotency-Key"
HEADER_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255}
LIFETIME = timedelta(hours=24)


def requested_key() -> str | None:
    """The request's Idempotency-Key, None without one; 422 naming the header when it is empty or too long."""
    key = request.headers.get(HEADER)
    if key is not None and not HEADER_SCHEMA["minLength"] <= len(key) <= HEADER_SCHEMA["maxLength"]:
        raise ApiError(422, "invalid", f"{HEADER} must be 1 to {HEADER_SCHEMA['maxLength']} characters", HEADER)
    return key


def fingerprint(body: Any) -> str:
    """What makes two requests the same: method, path, query and body (JSON compared by value)."""
    digest = hashlib.sha256()
    for part in (request.method, request.path, json.dumps(sorted(request.args.items(multi=True)))):
        digest.update(part.encode() + b"\0")
    if body is None:
        digest.update(request.get_data())
    else:
        digest.update(json.dumps(body, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()


def scope() -> str:
    return f"account:{g.account.id}" if g.account is not None else f"operator:{g.api_key.id}"


def once(key: str, body: Any, act: Callable[[], Response], secret_fields: Iterable[str] = ()) -> Response:
    """Answer with `act()` the first time (scope, key) is seen; later, the stored answer or a 409."""
    digest = fingerprint(body)
    with db.atomic() as transaction:
        row, fresh = claim(scope(), key, digest)
        if not fresh:
            if row.fingerprint != digest:
                raise ApiError(
                    409, "idempotency_conflict", f"this {HEADER} was used with another request in the last 24 h", HEADER
                )
            return replay(row)
        response = act()
        if 200 <= response.status_code < 300:
            row.status = response.status_code
            row.response = stored_body(response, secret_fields)
            row.location = response.headers.get("Location", "")
            row.save()
        else:
            transaction.rollback()
    return response


def claim(scope_name: str, key: str, digest: str) -> tuple[IdempotentRequest, bool]:
    """Insert the key's row in the current transaction (True), or return the one already committed (False)."""
    IdempotentRequest.delete().where(
        (IdempotentRequest.scope == scope_name)
        & (IdempotentRequest.key == key)
        & (IdempotentRequest.created_at < utcnow() - LIFETIME)
    ).execute()
    try:
        with db.atomic():
            return IdempotentRequest.create(scope=scope_name, key=key, fingerprint=digest), True
    except IntegrityError:
        pass
    return IdempotentRequest.get((IdempotentRequest.scope == scope_name) & (IdempotentRequest.key == key)), False


def stored_body(response: Response, secret_fields: Iterable[str]) -> str:
    text = response.get_data(as_text=True)
    secret_fields = list(secret_fields)
    if not secret_fields:
        return text
    answer = json.loads(text)
    return json.dumps({name: value for name, value in answer.items() if name not in secret_fields})


def replay(row: IdempotentRequest) -> Response:
    response = Response(row.response, status=row.status, mimetype="application/json")
    if row.location:
        response.headers["Location"] = row.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def purge() -> int:
    """Delete the rows past their 24 hours (they are ignored already); returns how many."""
    return IdempotentRequest.delete().where(IdempotentRequest.created_at < utcnow() - LIFETIME).execute()
