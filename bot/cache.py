"""An in-process cache of the rows every webhook reads: carriers, virtual numbers, keywords and topics.

Kept per app (so per process), filled on first use and dropped as a whole whenever any of those rows
changes in any process. A version counter in Redis (`VERSION_KEY`) says when: every write to the carrier,
virtual_number, keyword or topic table, and every account deletion (it cascades to numbers), is seen by a peewee
query hook (`watch`) and bumps the counter with INCR once its transaction has committed (`changed`). So
every code path is covered, the API, the CLI, the console, the operator API, jobs and raw SQL written
like peewee's (`UPDATE "carrier" …`), without each having to remember it. Bumping after the commit
matters: a process that reads the new version then also reads the committed rows.

A process compares its version with Redis (one GET, on a request's first lookup) at most once per
`CACHE_CHECK_SECONDS` (0.1 s by default; 0 checks on every request) and starts an empty generation on a
mismatch. So a change made in one process is used by every other one within that time, and at once by
the process that made it (`changed` drops its generation); under load the GET, which cost a webhook as
much CPU as its INSERT, is made by one request in hundreds. When Redis does not answer, the request reads
the database and the process drops what it holds, so nothing older than the last check is ever served. A
change made while Redis was unreachable cannot bump the counter; as a safety net a generation is also
dropped after `CACHE_MAX_AGE_SECONDS`.

Rows are kept as plain frozen field tuples and every lookup builds a new model instance from them, so no
peewee state (a loaded `number.account`, a dirty field) is shared between requests or threads. Instances
handed out are for reading: nothing saves them. Outside a request (jobs, CLI) lookups read the database.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, current_app, has_request_context, request
from peewee import Database, QueryEvent
from redis.exceptions import RedisError

from bot.redis_conn import embedded_running, get_redis
from models import Account, BaseModel, Carrier, Keyword, Topic, VirtualNumber, db

log = logging.getLogger("smsbot.cache")
VERSION_KEY = "smsbot:cache:version"
SCOPE_KEY = "smsbot.cache"  # the request's generation, in its WSGI environ
# The writes that change what is cached: any to these tables, and deleting an account (its numbers cascade).
WATCHED_WRITES = {
    Carrier._meta.table_name: ("INSERT INTO", "COPY", "UPDATE", "DELETE FROM"),
    VirtualNumber._meta.table_name: ("INSERT INTO", "COPY", "UPDATE", "DELETE FROM"),
    Keyword._meta.table_name: ("INSERT INTO", "COPY", "UPDATE", "DELETE FROM"),
    Topic._meta.table_name: ("INSERT INTO", "COPY", "UPDATE", "DELETE FROM"),
    Account._meta.table_name: ("DELETE FROM",),
}

M = TypeVar("M", bound=BaseModel)
Row = tuple[tuple[str, Any], ...]


@dataclass
class Generation:
    """What this process read since the version it was checked against."""

    version: bytes | None
    started: float = field(default_factory=time.monotonic)
    checked: float = field(default_factory=time.monotonic)  # when Redis last confirmed `version`
    rows: dict[tuple[str, object], Any] = field(default_factory=dict)


@dataclass
class Cache:
    max_age: float
    check_interval: float
    generation: Generation | None = None

    def current(self, now: float) -> Generation | None:
        """The generation, unless it is older than `max_age`."""
        generation = self.generation
        return generation if generation is not None and now - generation.started <= self.max_age else None


class Json(str):
    """A list or dict field value, kept as JSON text: every thaw parses its own copy (faster than deepcopy)."""


def frozen(instance: BaseModel) -> Row:
    data = instance.__data__
    return tuple((name, Json(json.dumps(v)) if isinstance(v, (list, dict)) else v) for name, v in data.items())


def thawed(model: type[M], row: Row) -> M:
    """A new, clean instance of `model` holding `row` (nothing in it is shared with another instance)."""
    return model.holding({name: json.loads(v) if type(v) is Json else v for name, v in row})


def current() -> Generation | None:
    """This request's generation, checked against Redis on the request's first lookup; None: no cache."""
    if not has_request_context():
        return None
    scope = request.environ  # per request (`g` lives as long as the app context, which a request may share)
    if SCOPE_KEY in scope:
        return scope[SCOPE_KEY]  # type: ignore[no-any-return]
    cache: Cache = current_app.extensions["smsbot.cache"]
    now = time.monotonic()
    generation = cache.current(now)
    if generation is None or now - generation.checked >= cache.check_interval:
        try:
            version = get_redis(current_app).get(VERSION_KEY)
        except RedisError as exc:
            log.warning("cache not used for this request, Redis did not answer: %s", exc)
            cache.generation = scope[SCOPE_KEY] = None
            return None
        if generation is None or generation.version != version:
            generation = cache.generation = Generation(version)
        generation.checked = now
    scope[SCOPE_KEY] = generation
    return generation


def cached(key: tuple[str, object], load: Callable[[], Any]) -> Any:
    """`load()`'s answer for `key`, from this process's generation when it has it. A None is not kept
    (a name nobody configured costs a query, not memory)."""
    generation = current()
    if generation is None:
        return load()
    if key in generation.rows:
        return generation.rows[key]
    value = load()
    if value is not None:
        generation.rows[key] = value
    return value


def carrier_named(name: str) -> Carrier | None:
    row = cached(("carrier", name), lambda: _frozen_or_none(Carrier.get_or_none(Carrier.name == name)))
    return None if row is None else thawed(Carrier, row)


def carrier_by_id(carrier_id: int) -> Carrier | None:
    row = cached(("carrier id", carrier_id), lambda: _frozen_or_none(Carrier.get_or_none(Carrier.id == carrier_id)))
    return None if row is None else thawed(Carrier, row)


def number_for(e164: str) -> VirtualNumber | None:
    """The virtual number `e164`, with its carrier loaded; its account is read when first used."""
    row = cached(("number", e164), lambda: _frozen_or_none(VirtualNumber.get_or_none(VirtualNumber.number == e164)))
    if row is None:
        return None
    number = thawed(VirtualNumber, row)
    carrier = carrier_by_id(number.carrier_id)
    if carrier is not None:
        number.carrier = carrier
        number._dirty.clear()
    return number


def keywords_of(number_id: int) -> list[Keyword]:
    """The number's custom keywords, as the router reads them."""
    rows = cached(
        ("keywords", number_id),
        lambda: tuple(frozen(k) for k in Keyword.select().where(Keyword.number == number_id).order_by(Keyword.id)),
    )
    return [thawed(Keyword, row) for row in rows]


def topics_of(account_id: int) -> list[Topic]:
    """The account's topics (bot/topics.py), which the opt-out handler reads for every inbound."""
    rows = cached(
        ("topics", account_id),
        lambda: tuple(frozen(t) for t in Topic.select().where(Topic.account == account_id).order_by(Topic.name)),
    )
    return [thawed(Topic, row) for row in rows]


def _frozen_or_none(instance: BaseModel | None) -> Row | None:
    return None if instance is None else frozen(instance)


def changed(app: Flask | None = None) -> None:
    """Tell every process that cached rows changed. Call it after the change has committed.

    Never raises: when Redis does not answer, other processes notice at the latest after
    CACHE_MAX_AGE_SECONDS (this one at once).
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cache: Cache | None = app.extensions.get("smsbot.cache")
    if cache is not None:
        cache.generation = None
    if has_request_context():
        request.environ.pop(SCOPE_KEY, None)  # a lookup later in this request checks again
    embedded = not app.config["REDIS_URL"] and "redis" not in app.extensions
    if embedded and not embedded_running(app.instance_path):
        return  # no process can have cached anything; starting the server here would outlive `smsbot run`
    try:
        get_redis(app).incr(VERSION_KEY)
    except RedisError as exc:
        log.warning("cache version not bumped, Redis did not answer: %s", exc)


def watch(app: Flask, database: Database) -> None:
    """Bump the version after every committed write that changes cached rows (see the module docstring)."""
    left, right = database.quote
    prefixes = tuple(f"{verb} {left}{table}{right}" for table, verbs in WATCHED_WRITES.items() for verb in verbs)

    def bump() -> None:
        changed(app)

    def hook(event: QueryEvent) -> None:
        if event.exception is None and event.sql.startswith(prefixes):
            if database.in_transaction() and bump in database._state.commit_callbacks:
                return  # once per transaction
            try:
                database.after_commit(bump)  # at once outside a transaction; dropped if it rolls back
            except ValueError:  # peewee's manual_commit() has no commit hook: bump now, and at the latest
                bump()  # CACHE_MAX_AGE_SECONDS covers a process that reloads before the commit

    database.query_hooks.append(hook)


def init_app(app: Flask) -> None:
    app.extensions["smsbot.cache"] = Cache(
        max_age=float(app.config["CACHE_MAX_AGE_SECONDS"]), check_interval=float(app.config["CACHE_CHECK_SECONDS"])
    )
    watch(app, db.obj)
