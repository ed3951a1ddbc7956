"""Chunked send jobs: one job hands off many messages, and each message still ends as if sent on its own.

A loopback carrier answers per message (by its text): some take it, some fail once, some keep failing,
some reject it. Each ends right, only the failed ones are retried, each refund happens once; a worker
killed mid-chunk loses nothing and sends nothing twice; pacing holds across two workers; a clean chunk
costs the same few statements whatever its size.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bench.loopback import Faults, LoopbackCarrier
from bot.metrics import flush_all, histogram_key
from bot.pipeline.jobs import send_messages, sweep
from bot.pipeline.outbound import Draft, accept
from bot.pipeline.queue import enqueue_sends, get_queue
from bot.pipeline.statuses import Status
from bot.redis_conn import get_redis
from models import Account, LedgerEntry, MessageEvent, OutboundMessage, db, utcnow

PRICE = 10


class Carrier:
    """A generic carrier that keeps one message per Idempotency-Key; its answer depends on the text.

    ok: taken; flaky: 503 on the first try, then taken; down: 502 always; bad: 400 (a final rejection).
    `hold` makes the submission of that text wait for `release` (a worker is killed meanwhile).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tries: Counter[str] = Counter()
        self.kept: dict[str, str] = {}
        self.hold = ""
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: Request) -> Response:
        key, text = request.headers["Idempotency-Key"], request.get_json()["text"]
        with self.lock:
            self.tries[key] += 1
            tries = self.tries[key]
        if text == self.hold and not self.held.is_set():
            self.held.set()
            self.release.wait(timeout=10)
        if text == "down" or (text == "flaky" and tries == 1):
            return Response("busy", status=503 if text == "flaky" else 502)
        if text == "bad":
            return Response("no such route", status=400)
        with self.lock:
            upstream = self.kept.setdefault(key, f"up-{key}")
        return Response(json.dumps({"id": upstream, "status": "accepted"}), content_type="application/json")


@pytest.fixture
def carrier_server() -> Iterator[tuple[HTTPServer, Carrier]]:
    """A threaded loopback server: a held answer does not hold the others of the chunk."""
    server = HTTPServer(threaded=True)
    server.start()
    carrier = Carrier()
    server.expect_request("/sms").respond_with_handler(carrier)
    yield server, carrier
    carrier.release.set()
    server.clear()
    server.stop()


@pytest.fixture
def shop(carrier_server, make_account, make_carrier, make_number):
    server, _ = carrier_server
    account = make_account(balance=10_000, price_per_segment=PRICE)
    gateway = make_carrier("generic", name="gw", url=server.url_for("/sms"))
    make_number(account, gateway)
    return account, gateway


def accepted(account: Account, gateway, texts: list[str]) -> list[int]:
    """Accept messages, leaving no send job for them (the test enqueues chunks)."""
    with db.atomic():
        ids = [
            accept(Draft(account=account, sender="Shop", recipient=f"+4673123{n:04d}", body=text, carrier=gateway)).id
            for n, text in enumerate(texts)
        ]
    get_queue().empty()
    return ids


def queue_chunk(account: Account, gateway, texts: list[str]) -> list[int]:
    """Accept messages and enqueue their send jobs in chunks, as a group send does."""
    ids = accepted(account, gateway, texts)
    assert enqueue_sends(ids)
    return ids


def codes(message_id: int) -> list[int]:
    return [e.code for e in MessageEvent.select().where(MessageEvent.message == message_id).order_by(MessageEvent.id)]


def refunds(message_id: int) -> int:
    return LedgerEntry.select().where((LedgerEntry.message == message_id) & (LedgerEntry.kind == "refund")).count()


def test_a_chunk_of_mixed_answers_ends_each_message_right(app, shop, carrier_server, run_worker):
    account, _ = shop
    _, carrier = carrier_server
    texts = ["ok", "down", "flaky", "ok", "bad", "down"]
    ids = queue_chunk(account, shop[1], texts)
    assert get_queue().count == 1  # one job for the chunk
    run_worker()

    by_text = dict(zip(ids, texts, strict=True))
    for message_id, text in by_text.items():
        message = OutboundMessage.get_by_id(message_id)
        key = str(message_id)
        if text == "ok":
            assert (message.status, message.upstream_id) == (Status.DELIVERED_TO_GATEWAY, f"up-{key}")
            assert codes(message_id) == [101, 103, 102, 110, 111]
            assert carrier.tries[key] == 1  # not retried with the failed ones
        elif text == "flaky":
            assert message.status == Status.DELIVERED_TO_GATEWAY
            assert codes(message_id) == [101, 103, 102, 110, 110, 111]
            assert carrier.tries[key] == 2
        elif text == "down":
            assert message.status == Status.DELIVERY_TO_GATEWAY_FAILED
            assert codes(message_id) == [101, 103, 102, 110, 110, 110, 110, 511, 104]
            details = [e.detail for e in message.events.order_by(MessageEvent.id)][4:8]
            assert details == [
                "attempt 1 failed: HTTP 502: busy",
                "attempt 2 failed: HTTP 502: busy",
                "attempt 3 failed: HTTP 502: busy",
                "attempt 4: HTTP 502: busy",
            ]
            assert carrier.tries[key] == 4  # the first try and three retries (SEND_RETRY_INTERVALS)
        else:
            assert message.status == Status.GENERIC_REJECTED
            assert codes(message_id) == [101, 103, 102, 110, 406, 104]
            assert carrier.tries[key] == 1
        assert message.unconfirmed_since is None
        assert refunds(message_id) == (1 if text in ("down", "bad") else 0)
    assert Account.get_by_id(account.id).balance == 10_000 - PRICE * 3  # the three taken ones are paid
    flush_all()  # the worker's observations reach Redis within a second (bot/metrics.py); now, for the test
    histogram = get_redis(app).hgetall(histogram_key("send"))
    taken = sum(int(v) for k, v in histogram.items() if k.startswith(b"gw\x1faccepted\x1e") and not k.endswith(b"sum"))
    assert taken == 3


def test_a_worker_killed_mid_chunk_loses_nothing_and_sends_nothing_twice(
    shop, carrier_server, spawn_worker, run_worker
):
    account, gateway = shop
    _, carrier = carrier_server
    carrier.hold = "wait"
    ids = queue_chunk(account, gateway, ["ok", "ok", "wait", "ok", "ok"])
    worker = spawn_worker(SMSBOT_SEND_LEASE_SECONDS="1")
    try:
        assert carrier.held.wait(timeout=30), "the worker never reached the carrier"
        time.sleep(0.5)  # the chunk's other submissions are answered meanwhile, not yet recorded
        os.killpg(worker.pid, signal.SIGKILL)
    finally:
        worker.wait(timeout=10)
    carrier.release.set()
    db.close()
    db.connect()
    waiting = OutboundMessage.select().where(OutboundMessage.status == Status.SENDING).count()
    assert waiting == len(ids)  # claimed together, none recorded

    time.sleep(1.2)  # the claims lapse
    assert sweep()["requeued"] == len(ids)
    run_worker()

    for message_id in ids:
        message = OutboundMessage.get_by_id(message_id)
        assert (message.status, message.upstream_id) == (Status.DELIVERED_TO_GATEWAY, f"up-{message_id}")
        assert codes(message_id) == [101, 103, 102, 110, 111]
    assert sorted(carrier.kept) == sorted(str(i) for i in ids)  # the carrier kept one message per key
    assert all(carrier.tries[str(i)] == 2 for i in ids)  # each tried again under its own key, none lost
    assert Account.get_by_id(account.id).balance == 10_000 - PRICE * len(ids)  # debited once each
    assert LedgerEntry.select().where(LedgerEntry.kind == "refund").count() == 0


CAP = 5


def test_two_workers_keep_a_capped_carrier_to_its_rate_with_chunks(
    make_account, make_carrier, make_number, spawn_worker
):
    submitted: list[tuple[float, int]] = []
    lock = threading.Lock()

    def endpoint(request: Request) -> Response:
        message_id = request.get_json()["id"]
        with lock:
            submitted.append((time.monotonic(), message_id))
        return Response(json.dumps({"id": f"up-{message_id}", "status": "accepted"}), content_type="application/json")

    server = HTTPServer(threaded=True)
    server.start()
    try:
        server.expect_request("/sms", method="POST").respond_with_handler(endpoint)
        gateway = make_carrier("generic", name="gw", url=server.url_for("/sms"), mps=CAP)
        account = make_account(balance=10_000, price_per_segment=1)
        make_number(account, gateway)
        ids = accepted(account, gateway, ["Sale"] * 14)
        assert enqueue_sends(ids[:7]) and enqueue_sends(ids[7:])  # two chunks, one for each worker
        assert get_queue().count == 2
        spawn_worker()
        spawn_worker()
        deadline = time.monotonic() + 30
        while len(submitted) < 14 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.clear()
        server.stop()
    assert sorted(message_id for _, message_id in submitted) == sorted(ids)  # every message once
    times = sorted(at for at, _ in submitted)
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= CAP
    assert times[-1] - times[0] >= 14 / CAP - 1.5  # spread over the windows, not sent in one burst
    db.close()
    db.connect()
    assert OutboundMessage.select().where(OutboundMessage.status == Status.DELIVERED_TO_GATEWAY).count() == 14


def statements_to_send(account: Account, gateway, count: int) -> int:
    """How many SQL statements one send job issues for a clean chunk of `count` messages."""
    ids = queue_chunk(account, gateway, ["ok"] * count)
    queries: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, tuple):  # peewee logs each statement as (sql, params)
                queries.append(record.msg[0])

    logger, handler = logging.getLogger("peewee"), Collect()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        assert send_messages(ids) == {"sent": count}
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert all(OutboundMessage.get_by_id(i).status == Status.DELIVERED_TO_GATEWAY for i in ids)
    return len(queries)


def test_a_clean_chunk_costs_a_few_statements_whatever_its_size(shop):
    account, gateway = shop
    ten = statements_to_send(account, gateway, 10)
    fifty = statements_to_send(account, gateway, 50)
    assert fifty == ten
    assert fifty <= 10


def test_enqueueing_and_the_sweeper_make_chunks_of_send_chunk(app, shop):
    account, gateway = shop
    app.config["SEND_CHUNK"] = 4
    ids = queue_chunk(account, gateway, ["ok"] * 10)
    assert [len(job.args[0]) for job in get_queue().jobs] == [4, 4, 2]

    get_queue().empty()
    OutboundMessage.update(updated_at=utcnow() - timedelta(minutes=5)).execute()
    assert sweep()["requeued"] == 10
    assert sorted(i for job in get_queue().jobs for i in job.args[0]) == ids
    assert [len(job.args[0]) for job in get_queue().jobs] == [4, 4, 2]


@pytest.fixture
def twilio_chunk(app, make_account, make_carrier, make_number, run_worker):  # type: ignore[no-untyped-def]
    """Send `count` messages ("Hi 0", "Hi 1", …) as one chunk through a Twilio-shaped loopback carrier with
    `faults` (a 1 s send timeout); returns the carrier (stopped) and the message ids."""
    app.config["SEND_TIMEOUT_SECONDS"] = 1

    def send(faults: Faults, count: int) -> tuple[LoopbackCarrier, list[int]]:
        server = LoopbackCarrier(faults)
        try:
            account = make_account(name="Shop", balance=1000, price_per_segment=PRICE)
            gateway = make_carrier("twilio", name="tw", url=server.url, username="AC1", secret="token")
            make_number(account, gateway, "+46700000001")
            with db.atomic():
                drafts = [
                    Draft(account, "+46700000001", f"+4673123{n:04d}", f"Hi {n}", carrier=gateway) for n in range(count)
                ]
                ids = [accept(draft).id for draft in drafts]
            get_queue().empty()
            assert enqueue_sends(ids)
            run_worker()
        finally:
            server.stop()
        return server, ids

    return send


@pytest.mark.parametrize(
    ("fault", "requests", "lookups", "detail"),
    [
        ("timeout", 1, 1, "attempt 1: timeout, maybe sent; reconciling"),  # taken: found at the first look
        ("lost", 2, 2, "attempt 2: not at the carrier; sending"),  # not taken: looked up again, then sent
    ],
)
def test_a_twilio_chunk_with_unknown_answers_reconciles_each_message(twilio_chunk, fault, requests, lookups, detail):
    server, ids = twilio_chunk(Faults(script=(fault,), slow_seconds=1.5), 3)
    for n, message_id in enumerate(ids):
        message = OutboundMessage.get_by_id(message_id)
        body = f"Hi {n}"
        assert (server.requests[body], server.taken[body]) == (requests, 1)  # one SMS each, never two
        assert (message.status, message.upstream_id) == (Status.QUEUED_AT_GATEWAY, server.upstream[body])
        assert detail in [e.detail for e in message.events]
        assert refunds(message_id) == 0
    assert server.lookups == lookups * len(ids)
    assert Account.get(Account.name == "Shop").balance == 1000 - PRICE * len(ids)


def test_a_chunks_lookups_at_twilio_are_made_together_not_one_after_another(twilio_chunk):
    """Eight answers lost at once: eight look-ups of half a second each at the same time (one after another,
    a chunk of fifty with a carrier slow to list could outlast the send lease and be sent again)."""
    server, ids = twilio_chunk(Faults(script=("timeout",), slow_seconds=1.5, list_seconds=0.5), 8)
    assert server.lookups == 8 and server.most_listing == 8
    for n, message_id in enumerate(ids):
        assert (server.requests[f"Hi {n}"], server.taken[f"Hi {n}"]) == (1, 1)
        message = OutboundMessage.get_by_id(message_id)
        assert (message.status, message.upstream_id) == (Status.QUEUED_AT_GATEWAY, server.upstream[f"Hi {n}"])


def test_single_sends_accepted_in_one_transaction_go_in_chunk_jobs_and_a_rollback_enqueues_nothing(app, shop):
    account, gateway = shop
    app.config["SEND_CHUNK"] = 4
    get_queue().empty()
    with db.atomic():
        ids = [
            accept(Draft(account=account, sender="Shop", recipient=f"+4673123{n:04d}", body="Hi", carrier=gateway)).id
            for n in range(6)
        ]
        assert get_queue().count == 0  # nothing before the commit
    assert [job.args[0] for job in get_queue().jobs] == [ids[:4], ids[4:]]

    get_queue().empty()
    with pytest.raises(RuntimeError), db.atomic():
        accept(Draft(account=account, sender="Shop", recipient="+46731239999", body="Hi", carrier=gateway))
        raise RuntimeError("the request failed after accepting")
    with db.atomic():
        kept = accept(Draft(account=account, sender="Shop", recipient="+46731238888", body="Hi", carrier=gateway)).id
    assert [job.args[0] for job in get_queue().jobs] == [[kept]]  # the rolled-back message is not in it
