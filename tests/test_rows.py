"""Many rows in one go (bot/rows.py): what goes in comes back as it was, on either database and by either
way of writing (COPY on PostgreSQL for many plain rows, INSERT otherwise)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from peewee import IntegrityError, InterfaceError

from bot import cache, rows
from bot.redis_conn import get_redis
from models import Carrier, MessageEvent, OutboundMessage, db

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")
# Every character COPY's text format treats specially, and the text that spells its NULL.
AWKWARD = ["tab\there", "line\nbreak", "carriage\rreturn", "back\\slash", "\\N", "\\\\N", "", "åäö €", "emoji 🎉"]


@pytest.fixture
def message(make_account) -> OutboundMessage:  # type: ignore[no-untyped-def]
    return OutboundMessage.create(account=make_account(), sender="Shop", recipient="+46701234567", body="x", status=102)


@pytest.fixture
def statements() -> Iterator[list[str]]:
    seen: list[str] = []
    db.obj.query_hooks.append(lambda event: seen.append(event.sql.split()[0]))
    yield seen
    db.obj.query_hooks.pop()


def events(message: OutboundMessage, count: int) -> list[dict]:
    at = datetime(2026, 12, 6, 7, 8, 9, 123456)
    return [
        {"message": message.id, "code": 100 + n, "detail": f"{AWKWARD[n % len(AWKWARD)]} {n}", "at": at}
        for n in range(count)
    ]


def stored(message: OutboundMessage) -> list[dict]:
    query = MessageEvent.select().where(MessageEvent.message == message).order_by(MessageEvent.code)
    return [
        {"message": event.message_id, "code": event.code, "detail": event.detail, "at": event.at} for event in query
    ]


@pytest.mark.parametrize("count", [3, rows.COPY_FROM_ROWS, 250])
def test_rows_come_back_as_they_went_in_with_the_fields_defaults(message, statements, count) -> None:
    written = events(message, count)
    with db.atomic():
        assert rows.insert(MessageEvent, written) == []
    sent = list(statements)
    assert stored(message) == written
    assert {event.source for event in MessageEvent.select()} == {"pipeline"}  # the field's default
    copied = ON_POSTGRES and count >= rows.COPY_FROM_ROWS
    assert sent == (["COPY"] if copied else ["INSERT"])


def test_a_copy_that_fails_rolls_back_with_its_transaction(message) -> None:
    written = events(message, 150)
    written[-1]["code"] = written[0]["code"]  # (message, code, detail) is unique
    written[-1]["detail"] = written[0]["detail"]
    with pytest.raises(IntegrityError), db.atomic():
        OutboundMessage.update(body="changed").where(OutboundMessage.id == message.id).execute()
        rows.insert(MessageEvent, written)
    assert stored(message) == []
    assert OutboundMessage.get_by_id(message.id).body == "x"


def test_skipping_conflicts_or_returning_ids_is_an_insert_whatever_the_count(message, statements) -> None:
    written = events(message, 150)
    with db.atomic():
        rows.insert(MessageEvent, written[:10])
        ids = rows.insert(MessageEvent, written, skip_conflicts=True, returning=(MessageEvent.code,))
    assert statements == ["INSERT", "INSERT"]
    assert sorted(code for (code,) in ids) == [event["code"] for event in written[10:]]
    assert stored(message) == written


def test_copy_text_writes_what_it_knows_and_refuses_the_rest() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5)
    assert rows.copy_text([1, "a\tb\\c\nd\re", None, True, at, "", False, 7], 4) == (
        "1\ta\\tb\\\\c\\nd\\re\t\\N\tt\n2026-01-02 03:04:05\t\tf\t7\n"
    )
    assert rows.copy_text([1, 2.5], 2) is None  # a float: the caller INSERTs
    # COPY would drop an offset that an INSERT converts: such a time is INSERTed
    assert rows.copy_text([datetime(2026, 6, 1, 12, tzinfo=timezone(timedelta(hours=2)))], 1) is None


def test_many_rows_outside_a_transaction_are_inserted_and_committed(message, statements) -> None:
    written = events(message, 150)
    assert not db.in_transaction()
    rows.insert(MessageEvent, written)
    assert statements == ["INSERT"]
    assert stored(message) == written


def test_copied_rows_of_a_cached_table_tell_every_process(app, statements) -> None:
    version = get_redis(app).get(cache.VERSION_KEY)
    with db.atomic():
        rows.insert(Carrier, [{"name": f"gw{n}", "kind": "generic"} for n in range(3)])
    assert get_redis(app).get(cache.VERSION_KEY) != version
    version = get_redis(app).get(cache.VERSION_KEY)
    with db.atomic():
        rows.insert(Carrier, [{"name": f"more{n}", "kind": "generic"} for n in range(rows.COPY_FROM_ROWS)])
    assert statements[-1] == ("COPY" if ON_POSTGRES else "INSERT")
    assert get_redis(app).get(cache.VERSION_KEY) != version
    assert Carrier.select().count() == 3 + rows.COPY_FROM_ROWS


@pytest.mark.skipif(not ON_POSTGRES, reason="COPY is PostgreSQL's; .ci/run runs this on PostgreSQL")
def test_copy_in_outside_a_transaction_is_refused(message) -> None:
    with pytest.raises(InterfaceError, match="transaction"):
        db.obj.copy_in('COPY "message_event" ("message_id", "code") FROM STDIN', f"{message.id}\t1\n")
    assert stored(message) == []


@pytest.mark.parametrize("count", [1, rows.COPY_FROM_ROWS])
def test_values_not_of_the_stored_type_go_through_their_fields(message, count) -> None:
    """A related row becomes its key, a number in a string an int: only values of the stored type skip
    the field's db_value."""
    written = [{"message": message, "code": str(200 + n), "detail": f"d{n}"} for n in range(count)]
    with db.atomic():
        rows.insert(MessageEvent, written)
    assert [(event["code"], event["detail"]) for event in stored(message)] == [(200 + n, f"d{n}") for n in range(count)]
