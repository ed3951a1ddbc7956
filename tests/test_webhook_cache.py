"""The webhook cache (bot/cache.py): every change is seen by the very next webhook, in this process and in
another one sharing Redis; Redis down never breaks a webhook; and what a webhook costs in SQL."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from peewee import Database
from redis import Redis

from bot import cache, create_app
from bot.apikeys import create_key
from bot.metrics import histogram_key
from bot.pipeline.outbound import Draft, accept
from bot.pipeline.statuses import Status
from bot.redis_conn import get_redis
from bot.signing import HEADER, sign
from models import (
    Account,
    Carrier,
    Contact,
    Effect,
    InboundMessage,
    Keyword,
    MessageEvent,
    OutboundMessage,
    VirtualNumber,
    db,
)

NUMBER, PHONE = "+46700000001", "+46731234567"
NOBODY_LISTENS = "redis://127.0.0.1:1/0"  # a real client to a port where no Redis answers
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
sent = iter(range(1, 10**6))


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    carrier = make_carrier("generic", name="gw", secret="first-secret")
    account = make_account(name="Shop", balance=10_000, price_per_segment=1)
    number = make_number(account, carrier, NUMBER)
    return account, carrier, number


@pytest.fixture
def other_process(app: Flask, schema) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    """A second app, as another gunicorn worker would be: its own cache, the same database and Redis. It
    checks the version on every request (CACHE_CHECK_SECONDS 0): these tests are about what bumps it."""
    yield another_process(schema, check_seconds=0)


def another_process(schema, check_seconds: float) -> Flask:  # type: ignore[no-untyped-def]
    database = db.obj
    second = create_app({**schema, "CACHE_CHECK_SECONDS": check_seconds})
    db.initialize(database)  # one database server for both "processes"
    return second


def inbound(app: Flask, text: str, secret: str = "first-secret", carrier: str = "gw", to: str = NUMBER):  # type: ignore[no-untyped-def]
    body = json.dumps({"id": f"gw-{next(sent)}", "from": PHONE, "to": to, "text": text}).encode()
    headers = {"Content-Type": "application/json", HEADER: sign(secret, body)}
    return app.test_client().post(f"/webhooks/{carrier}/inbound", data=body, headers=headers)


def answered(app: Flask, text: str, **options: str) -> tuple[str, list[str]]:
    """The outcome stored for an inbound and the replies it got."""
    response = inbound(app, text, **options)
    assert response.status_code == 200, response.get_data(as_text=True)
    message = InboundMessage.select().order_by(InboundMessage.id.desc()).get()
    replies = OutboundMessage.select().where(OutboundMessage.reply_to == message).order_by(OutboundMessage.id)
    return message.outcome, [reply.body for reply in replies]


def api(app: Flask, account, method: str, path: str, **body: object):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {create_key(account, 'admin')[1]}"}
    response = app.test_client().open(f"/api/v1{path}", method=method, json=body or None, headers=headers)
    assert response.status_code < 300, response.get_data(as_text=True)
    return response


@pytest.mark.parametrize("where", ["same process", "other process"])
def test_a_keyword_added_changed_or_removed_through_the_api_is_used_by_the_next_inbound(
    app, other_process, shop, where
):
    account = shop[0]
    webhook_app = app if where == "same process" else other_process
    assert answered(webhook_app, "join") == ("no action", [])  # the number's keywords are cached now

    api(app, account, "POST", f"/numbers/{NUMBER}/keywords", word="join", action="reply", reply="Welcome!")
    assert answered(webhook_app, "join") == ("replied", ["Welcome!"])

    api(app, account, "PATCH", f"/numbers/{NUMBER}/keywords/join", reply="Welcome back!", aliases=["hello"])
    assert answered(webhook_app, "join") == ("replied", ["Welcome back!"])
    assert answered(webhook_app, "hello") == ("replied", ["Welcome back!"])

    api(app, account, "DELETE", f"/numbers/{NUMBER}/keywords/join")
    assert answered(webhook_app, "join") == ("no action", [])


def test_a_topic_created_or_deleted_through_the_api_is_used_by_the_next_inbound(app, other_process, shop):
    account = shop[0]
    assert answered(other_process, "nooffers")[0] == "no action"
    api(app, account, "POST", "/topics", name="offers", words=["nooffers"])
    outcome, replies = answered(other_process, "nooffers")
    assert outcome == "blocked from offers" and replies and "offers" in replies[0].lower()
    api(app, account, "DELETE", "/topics/offers")
    assert answered(other_process, "nooffers")[0] == "no action"


def test_a_keyword_added_with_the_cli_and_number_settings_changed_through_the_api(app, other_process, runner, shop):
    account = shop[0]
    assert answered(other_process, "menu") == ("no action", [])
    added = runner.invoke(args=["keyword", "add", NUMBER, "menu", "--reply", "Pizza or pasta?"])
    assert added.exit_code == 0, added.output
    assert answered(other_process, "menu") == ("replied", ["Pizza or pasta?"])

    assert answered(other_process, "what") == ("no action", [])
    api(app, account, "PATCH", f"/numbers/{NUMBER}", default_reply="We answer on Mondays.")
    assert answered(other_process, "what") == ("answered", ["We answer on Mondays."])


def test_a_number_moved_to_another_account_or_carrier_or_removed(app, other_process, shop, make_account, make_carrier):
    number = shop[2]
    help_text = "Shop. Text SAVE First Last Group to be saved as a contact. Reply STOP to opt out."
    assert answered(other_process, "help")[1] == [help_text]

    elsewhere = make_account(name="Elsewhere", balance=10_000)
    VirtualNumber.update(account=elsewhere).where(VirtualNumber.id == number.id).execute()
    assert answered(other_process, "help")[1][0].startswith("Elsewhere.")

    make_carrier("generic", name="gw2", secret="second-secret")
    number.carrier = Carrier.get(Carrier.name == "gw2")
    number.save()
    assert answered(other_process, "help") == (f"unrouted: {NUMBER} is served by another carrier", [])
    assert answered(other_process, "help", carrier="gw2", secret="second-secret")[1][0].startswith("Elsewhere.")

    VirtualNumber.get_by_id(number.id).delete_instance()
    assert answered(other_process, "help", carrier="gw2", secret="second-secret") == ("unrouted", [])


def test_an_account_deleted_takes_its_numbers_out_of_the_cache(app, other_process, shop):
    account = shop[0]
    assert answered(other_process, "help")[0] == "answered"
    account.delete_instance(recursive=True)
    assert answered(other_process, "help") == ("unrouted", [])


def test_a_changed_carrier_secret_is_checked_by_the_next_webhook(app, other_process, shop):
    for served in (app, other_process):
        assert inbound(served, "hi").status_code == 200
    Carrier.update(secret="second-secret").where(Carrier.name == "gw").execute()
    for served in (app, other_process):
        assert inbound(served, "hi").status_code == 403  # the old secret no longer signs
        assert inbound(served, "hi", secret="second-secret").status_code == 200


def test_webhooks_answer_right_while_redis_is_down(app, shop):
    assert answered(app, "help")[0] == "answered"  # the cache is warm
    app.extensions["redis"] = Redis.from_url(NOBODY_LISTENS, socket_connect_timeout=1)
    Keyword.create(number=shop[2], word="join", action="reply", reply="Welcome!")  # no version bump gets through
    assert answered(app, "join") == ("replied", ["Welcome!"])  # read from the database
    Carrier.update(secret="second-secret").where(Carrier.name == "gw").execute()
    assert inbound(app, "hi").status_code == 403
    assert answered(app, "help", secret="second-secret")[0] == "answered"


def test_a_change_made_while_redis_was_down_is_not_served_stale_once_it_is_back(app, other_process, shop):
    assert answered(other_process, "join") == ("no action", [])  # warm while Redis answers
    working = app.extensions["redis"]
    app.extensions["redis"] = Redis.from_url(NOBODY_LISTENS, socket_connect_timeout=1)
    other_process.extensions["redis"] = app.extensions["redis"]
    Keyword.create(number=shop[2], word="join", action="reply", reply="Welcome!")  # the bump is lost
    assert answered(other_process, "join") == ("replied", ["Welcome!"])  # Redis down: the database
    app.extensions["redis"] = other_process.extensions["redis"] = working
    assert answered(other_process, "join") == ("replied", ["Welcome!"])  # back: the old generation was dropped


def test_cached_rows_are_new_instances_every_time(app, shop):
    with app.test_request_context():
        first = cache.number_for(NUMBER)
        assert first is not None
        first.help_text = "changed in one request"
        first.account  # noqa: B018  (loads the account into this instance only)
        again = cache.number_for(NUMBER)
        assert again is not first and again.help_text == "" and "account" not in again.__rel__
        assert again.carrier.name == "gw" and not again._dirty
    Keyword.create(number=shop[2], word="join", action="reply", reply="Hi", aliases=["hello"])
    with app.test_request_context():
        keyword = cache.keywords_of(shop[2].id)[0]
        keyword.aliases.append("leaked")
        assert cache.keywords_of(shop[2].id)[0].aliases == ["hello"]


# What each webhook costs in SQL once the cache is warm (README "Benchmarks" lists the same numbers).
@contextmanager
def statements(control: bool = False) -> Iterator[list[str]]:
    """The SQL run meanwhile; BEGIN, COMMIT, savepoints and rollbacks only with `control`."""
    seen: list[str] = []

    def count(event) -> None:  # type: ignore[no-untyped-def]
        if control or not event.sql.lstrip().upper().startswith(TRANSACTION_CONTROL):
            seen.append(event.sql)

    db.obj.query_hooks.append(count)
    try:
        yield seen
    finally:
        db.obj.query_hooks.remove(count)


@contextmanager
def sent_to_postgresql() -> Iterator[list[str]]:
    """What psycopg2 sends meanwhile, one entry a round trip (a BEGIN riding on its statement, COMMIT)."""
    sent: list[str] = []
    make_cursor = Database.cursor  # under bot/db.py's BeginFirst: the driver's cursor

    class Recorded:
        def __init__(self, cursor) -> None:  # type: ignore[no-untyped-def]
            self._cursor = cursor

        def execute(self, sql: str, params: object = None) -> object:
            sent.append(sql)
            return self._cursor.execute(sql, params)

        def __getattr__(self, name: str) -> object:
            return getattr(self._cursor, name)

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(self._cursor)

    Database.cursor = lambda self, named_cursor=None: Recorded(make_cursor(self, named_cursor))  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        Database.cursor = make_cursor  # type: ignore[method-assign]


def test_a_plain_inbound_costs_one_statement(app, shop):
    assert answered(app, "hello there")[0] == "no action"  # warms the cache
    with statements() as seen:
        assert answered(app, "hello there")[0] == "no action"
        del seen[-2:]  # answered()'s own two reads
    # the routed row (INSERT … ON CONFLICT DO NOTHING RETURNING); no conversation to look for (no flows)
    assert [sql.split()[0].upper() for sql in seen] == ["INSERT"], seen
    assert not any(f'FROM "{table}"' in sql for sql in seen for table in ("carrier", "virtual_number", "keyword"))


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="round trips to PostgreSQL; .ci/run runs it there",
)
def test_on_postgresql_a_plain_inbound_is_one_round_trip_and_a_reply_is_one_a_statement(app, shop):
    Keyword.create(number=shop[2], word="join", action="reply", reply="Welcome!")
    assert answered(app, "hello there")[0] == "no action"
    with sent_to_postgresql() as sent:
        assert inbound(app, "hello there").status_code == 200
    assert len(sent) == 1 and sent[0].startswith("INSERT INTO"), sent  # committed by itself: no BEGIN, no COMMIT
    assert InboundMessage.select().order_by(InboundMessage.id.desc()).get().outcome == "no action"
    with sent_to_postgresql() as sent:
        assert inbound(app, "join").status_code == 200
    # the BEGIN rides on the first statement, the COMMIT on the last (the inbound's outcome): the
    # account's row, locked by the debit, is held one round trip less
    assert sent[0].startswith("BEGIN; ") and len(sent) == 9, sent
    assert sent[-1].startswith('UPDATE "inbound_message"') and sent[-1].endswith("; COMMIT"), sent
    assert answered(app, "join")[1] == ["Welcome!"]


def test_a_keyword_reply_costs_nine_statements(app, shop):
    Keyword.create(number=shop[2], word="join", action="reply", reply="Welcome, {phone}!")
    assert answered(app, "join")[0] == "replied"
    version = get_redis(app).get(cache.VERSION_KEY)
    with statements() as seen:
        assert answered(app, "join") == ("replied", [f"Welcome, {PHONE}!"])
        del seen[-2:]
    assert get_redis(app).get(cache.VERSION_KEY) == version  # a webhook changes nothing cached
    # the account, the hourly reply limit, the inbound row (the reply refers to it), the block list, the
    # message, the debit (a balance that covers it needs no locked read first), its three events in one
    # INSERT, its ledger row, and the inbound's outcome
    assert len(seen) == 9, seen
    assert not any('FROM "contact"' in sql for sql in seen)  # the template names no field of the contact


def test_a_reply_naming_the_contact_reads_it(app, shop):
    Keyword.create(number=shop[2], word="join", action="reply", reply="Welcome, {first_name}!")
    Contact.create(account=shop[0], phone=PHONE, first_name="Anna")
    assert answered(app, "join")[0] == "replied"
    with statements() as seen:
        assert answered(app, "join") == ("replied", ["Welcome, Anna!"])
        del seen[-2:]
    assert len(seen) == 10 and sum('FROM "contact"' in sql for sql in seen) == 1, seen


@pytest.fixture
def handed_off(app, shop) -> list[OutboundMessage]:
    """Three messages at 111 DeliveredToGateway, their upstream ids up-1, up-2 and up-3."""
    account, carrier, _ = shop
    messages = []
    for upstream in ("up-1", "up-2", "up-3"):
        message = accept(Draft(account=account, sender=NUMBER, recipient=PHONE, body="hi", carrier=carrier))
        OutboundMessage.update(upstream_id=upstream, status=Status.DELIVERED_TO_GATEWAY).where(
            OutboundMessage.id == message.id
        ).execute()
        messages.append(message)
    return messages


def report(app, upstream: str, stat: str = "DELIVRD") -> None:
    body = json.dumps({"id": upstream, "stat": stat, "err": "000"}).encode()
    headers = {"Content-Type": "application/json", HEADER: sign("first-secret", body)}
    assert app.test_client().post("/webhooks/gw/status", data=body, headers=headers).status_code == 200


def history(message: OutboundMessage) -> list[int]:
    return [
        event.code for event in MessageEvent.select().where(MessageEvent.message == message).order_by(MessageEvent.id)
    ]


def test_a_delivery_report_costs_two_statements_on_postgresql_and_three_on_sqlite(app, handed_off):
    report(app, "up-1")
    with statements(control=True) as seen:
        report(app, "up-2")
    # the message found by upstream id and locked; then its event and the guarded status change, one
    # statement on PostgreSQL (which also carries the COMMIT), two on SQLite; no savepoints
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        assert [sql.split()[0].upper() for sql in seen] == ["SELECT", "WITH"], seen
    else:
        assert [sql.split()[0].upper() for sql in seen] == ["SELECT", "INSERT", "UPDATE"], seen
    assert OutboundMessage.get_by_id(handed_off[1].id).status == Status.DELIVERED_TO_HANDSET
    assert history(handed_off[1])[-1] == Status.DELIVERED_TO_HANDSET


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="round trips to PostgreSQL; .ci/run runs it there",
)
def test_on_postgresql_a_delivery_report_is_two_round_trips(app, handed_off):
    report(app, "up-1")
    with sent_to_postgresql() as sent:
        report(app, "up-2")
    assert len(sent) == 2 and sent[0].startswith("BEGIN; SELECT") and sent[1].endswith("; COMMIT"), sent
    assert OutboundMessage.get_by_id(handed_off[1].id).status == Status.DELIVERED_TO_HANDSET


def test_a_repeated_or_late_report_adds_no_event_and_moves_nothing(app, handed_off):
    message = handed_off[0]
    report(app, "up-1")
    delivered = OutboundMessage.get_by_id(message.id)
    report(app, "up-1")  # the same report again: stored once
    report(app, "up-1", "ACCEPTD")  # a late report of an earlier state: history only
    again = OutboundMessage.get_by_id(message.id)
    assert (again.status, again.updated_at) == (Status.DELIVERED_TO_HANDSET, delivered.updated_at)
    assert history(message)[-2:] == [Status.DELIVERED_TO_HANDSET, Status.DELIVERED_TO_CARRIER], history(message)


def test_a_report_that_refunds_or_calls_back_is_applied_in_full(app, shop, handed_off):
    account = shop[0]
    funded = Account.get_by_id(account.id).balance
    refundable = handed_off[2]
    OutboundMessage.update(status=Status.QUEUED).where(OutboundMessage.id == refundable.id).execute()
    report(app, "up-3", "REJECTD")  # rejected before the hand-off was recorded: the price comes back
    assert OutboundMessage.get_by_id(refundable.id).status == Status.GENERIC_REJECTED
    assert Account.get_by_id(account.id).balance == funded + refundable.price
    called_back = handed_off[1]
    OutboundMessage.update(status_callback="http://127.0.0.1:9/status").where(
        OutboundMessage.id == called_back.id
    ).execute()
    report(app, "up-2")
    assert OutboundMessage.get_by_id(called_back.id).status == Status.DELIVERED_TO_HANDSET
    assert Effect.select().where((Effect.message == called_back.id) & (Effect.kind == "status_callback")).count() == 1


def test_webhook_timings_reach_redis_within_about_a_second_without_a_scrape(app, shop):
    redis = get_redis(app)
    assert inbound(app, "hello").status_code == 200
    deadline = time.monotonic() + 5
    while not redis.hgetall(histogram_key("webhook")) and time.monotonic() < deadline:
        time.sleep(0.1)
    counts = {k.decode(): v for k, v in redis.hgetall(histogram_key("webhook")).items()}
    buckets = [int(v) for k, v in counts.items() if k.startswith("gw\x1finbound\x1e") and not k.endswith("sum")]
    assert sum(buckets) == 1, counts


def test_webhooks_and_the_api_open_no_cookie_session_and_the_console_does(app):
    from flask import session
    from flask.sessions import NullSession

    for path, null in (("/webhooks/gw/inbound", True), ("/api/v1/messages", True), ("/console/login", False)):
        with app.test_request_context(path):
            assert isinstance(session._get_current_object(), NullSession) is null, path


def test_another_process_uses_a_change_within_cache_check_seconds(app, schema, shop):
    slow = another_process(schema, check_seconds=0.4)
    assert answered(slow, "menu") == ("no action", [])  # cached, and the version checked, now
    checked = time.monotonic()
    api(app, shop[0], "POST", f"/numbers/{NUMBER}/keywords", word="menu", action="reply", reply="Pizza!")
    assert answered(app, "menu") == ("replied", ["Pizza!"])  # the process that made the change: at once
    assert answered(slow, "menu") == ("no action", [])  # the other one has not asked Redis again yet
    time.sleep(max(0.0, checked + 0.4 - time.monotonic()))
    assert answered(slow, "menu") == ("replied", ["Pizza!"])


def test_a_process_asks_redis_for_the_version_once_per_cache_check_seconds(app, shop, monkeypatch):
    redis, asked = get_redis(app), []
    real_get = redis.get
    monkeypatch.setattr(redis, "get", lambda key: asked.append(key) or real_get(key))  # counts, then asks Redis
    checks = app.extensions["smsbot.cache"]
    for interval, expected in ((30.0, 0), (0.0, 10)):
        checks.check_interval = interval
        assert inbound(app, "hello").status_code == 200  # warm, and checked
        asked.clear()
        for _ in range(10):
            assert inbound(app, "hello").status_code == 200
        assert asked.count(cache.VERSION_KEY) == expected
