"""Pacing: a carrier's messages-per-second cap holds across two real worker processes, and nothing waits
on a sleeping worker: each message is re-scheduled for its own moment, kept to the microsecond."""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import UTC, datetime

from pytest_httpserver import HTTPServer
from rq.job import Job
from rq.registry import FinishedJobRegistry
from werkzeug import Request, Response

from bot.pipeline.governor import pace, slot_window, take_slots
from bot.pipeline.handoff import hand_off
from bot.pipeline.jobs import claim
from bot.pipeline.outbound import Draft, accept
from bot.pipeline.queue import enqueue_at, get_queue
from bot.pipeline.statuses import Status
from bot.redis_conn import get_redis
from bot.worker import PreciseScheduler, Worker
from models import MessageEvent, OutboundMessage, db

CAP = 5
MESSAGES = 12


def test_two_workers_keep_to_the_carriers_cap(
    make_account, make_carrier, make_number, httpserver: HTTPServer, spawn_worker
):
    submitted: list[tuple[float, int]] = []
    lock = threading.Lock()

    def carrier_endpoint(request: Request) -> Response:
        message_id = request.get_json()["id"]
        with lock:
            submitted.append((time.monotonic(), message_id))
        return Response(json.dumps({"id": f"up-{message_id}", "status": "accepted"}), content_type="application/json")

    httpserver.expect_request("/sms", method="POST").respond_with_handler(carrier_endpoint)
    carrier = make_carrier("generic", name="gw", url=httpserver.url_for("/sms"), mps=CAP)
    account = make_account(balance=10_000, price_per_segment=1)
    make_number(account, carrier)
    with db.atomic():
        for n in range(MESSAGES):
            accept(Draft(account=account, sender="Shop", recipient=f"+4673123{n:04d}", body="Sale", carrier=carrier))
    spawn_worker()
    spawn_worker()
    deadline = time.monotonic() + 30
    while len(submitted) < MESSAGES and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(message_id for _, message_id in submitted) == sorted(
        m.id for m in OutboundMessage.select(OutboundMessage.id)
    )  # every message once
    times = sorted(at for at, _ in submitted)
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert busiest <= CAP
    assert times[-1] - times[0] >= (MESSAGES - 1) / CAP - 1.0  # spread out, not sent in one burst
    deadline = time.monotonic() + 10  # the last answer is recorded just after the carrier saw its request
    while delivered() < MESSAGES and time.monotonic() < deadline:
        time.sleep(0.1)
    assert delivered() == MESSAGES


def test_a_worker_held_up_past_its_slot_does_not_submit_and_paces_the_message_again(
    app, make_account, make_carrier, make_number, httpserver: HTTPServer, run_worker
):
    """The governor gave the job a slot; the job reached the request only after the slot had aged out
    of the window, which another worker's message had filled meanwhile: the request must not go (the
    carrier would see two in one window). The try does not count, and the message goes later, once."""
    app.config["PACING_WINDOW_SECONDS"] = 0.3
    submitted: list[int] = []

    def carrier_endpoint(request: Request) -> Response:
        submitted.append(request.get_json()["id"])
        return Response(
            json.dumps({"id": f"up-{submitted[-1]}", "status": "accepted"}), content_type="application/json"
        )

    httpserver.expect_request("/sms", method="POST").respond_with_handler(carrier_endpoint)
    carrier = make_carrier("generic", name="gw", url=httpserver.url_for("/sms"), mps=1)
    account = make_account(balance=100, price_per_segment=1)
    make_number(account, carrier)
    message = accept(Draft(account=account, sender="Shop", recipient="+46731230001", body="Sale", carrier=carrier))
    redis = get_redis(app)
    paced = pace(redis, [message.id], reserved=False)
    assert paced.now == [message.id]
    earlier = datetime(2026, 12, 6, 9, 30)  # an earlier attempt went out and its answer was lost
    OutboundMessage.update(unconfirmed_since=earlier).where(OutboundMessage.id == message.id).execute()
    time.sleep(0.35)  # held up; another worker takes the cap's one slot of the window meanwhile
    assert take_slots(redis, carrier.id, 1, 1, slot_window()).granted == 1

    assert hand_off(claim(paced.now), "job=test", paced.slots) == {message.id: "paced"}
    assert submitted == []
    row = OutboundMessage.get_by_id(message.id)
    assert (row.status, row.attempts, row.lease_until, row.unconfirmed_since) == (Status.SENDING, 0, None, earlier)
    last = MessageEvent.select().where(MessageEvent.message == message.id).order_by(MessageEvent.id.desc()).first()
    assert last.detail == "attempt 1: not submitted, no room left under gw's cap of 1/s; paced again"

    time.sleep(0.3)  # the other worker's slot ages out
    run_worker()
    assert submitted == [message.id]
    row = OutboundMessage.get_by_id(message.id)
    assert (row.status, row.attempts) == (Status.DELIVERED_TO_GATEWAY, 1)


def delivered() -> int:
    db.close()
    db.connect()
    return OutboundMessage.select().where(OutboundMessage.status == Status.DELIVERED_TO_GATEWAY).count()


def test_a_scheduled_job_is_moved_at_its_moment_not_when_its_second_begins(app):
    """RQ keeps whole seconds: a job for hh:mm:01.8 went at hh:mm:01.0. A paced group must not go early."""
    queue = get_queue()
    queue.empty()
    second = math.floor(time.time()) + 1
    enqueue_at(queue, datetime.fromtimestamp(second + 0.8, UTC).replace(tzinfo=None), "bench.noop.noop")
    scheduler = PreciseScheduler([queue.name], connection=get_redis(app))
    scheduler.prepare_registries([queue.name])
    time.sleep(max(0.0, second + 0.2 - time.time()))  # its second has begun, its moment has not come
    scheduler.enqueue_scheduled_jobs()
    assert queue.count == 0
    time.sleep(max(0.0, second + 0.85 - time.time()))
    scheduler.enqueue_scheduled_jobs()
    assert queue.count == 1


def test_an_idle_worker_moves_a_scheduled_job_at_its_moment_not_at_its_next_tick(app):
    """The scheduler holder blocks on the queue only until the next scheduled job is due: with a 2 s
    tick, a paced group due in 0.6 s still goes within a few milliseconds of its moment."""
    app.config["WORKER_TICK_SECONDS"] = 2.0
    queue = get_queue()
    queue.empty()
    moment = time.time() + 0.6
    enqueue_at(queue, datetime.fromtimestamp(moment, UTC).replace(tzinfo=None), "bench.noop.noop")
    worker = Worker([queue], connection=get_redis(app), app=app, burst=False, with_scheduler=True)
    worker.work(burst=False, max_jobs=1, logging_level="WARNING")
    (job_id,) = FinishedJobRegistry(queue=queue).get_job_ids()
    started = Job.fetch(job_id, connection=queue.connection).started_at
    late = (started if started.tzinfo else started.replace(tzinfo=UTC)).timestamp() - moment
    assert 0 <= late < 0.3, late
