"""Nothing lost, nothing twice, when Redis stops or restarts empty and workers die with SIGKILL.

Each test runs its own redis-server and real `smsbot worker` processes, and counts at a loopback carrier,
business bot and SMTP server, and in the database: every accepted message and side effect delivered
exactly once per idempotency key (our message id, the inbound id, the effect's Message-ID).
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

import pytest
from redis import Redis

from bot.apikeys import create_key
from bot.carriers import InboundSms
from bot.pipeline.inbound import receive
from bot.signing import sign
from models import Batch, Contact, Effect, Group, GroupMember, InboundMessage, OutboundMessage, utcnow
from tests.faults.conftest import assert_books_balance, fresh_reads, funded, kill, wait_for

MOBILE, NUMBER = "+46731234567", "+46700000001"


@pytest.fixture
def shop(app, loopback, make_account, make_carrier, make_number, smtp_server):
    """An account on the loopback carrier whose number forwards to the loopback bot and e-mails copies."""
    account = funded(make_account(name="Shop", price_per_segment=10), 10_000)
    carrier = make_carrier("generic", name="gw", url=loopback.url_for("/sms"))
    number = make_number(
        account,
        carrier,
        NUMBER,
        forward_url=loopback.url_for("/bot"),
        email_copy=["ops@shop.example"],
        help_text="Shop help.",
    )
    return account, number


def members(account, n: int) -> list[str]:
    group = Group.create(account=account, name="VIP", name_key="vip")
    phones = [f"+4670111{i:04d}" for i in range(n)]
    for phone in phones:
        GroupMember.create(group=group, contact=Contact.create(account=account, phone=phone))
    return phones


def group_send(client, account) -> dict:
    headers = {"Authorization": f"Bearer {create_key(account, 'user')[1]}"}
    answer = client.post("/api/v1/messages", json={"group": "vip", "from": "Shop", "text": "Sale"}, headers=headers)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    return answer.json["batch"]


def webhook(client, number, n: int) -> int:
    body = json.dumps({"id": f"in-{n}", "from": MOBILE, "to": NUMBER, "text": "HELP"}).encode()
    headers = {"Content-Type": "application/json", "X-Smsbot-Signature": sign(number.carrier.secret, body)}
    return client.post(f"/webhooks/{number.carrier.name}/inbound", data=body, headers=headers).status_code


def sent(count: int):
    def check() -> bool:
        fresh_reads()
        return OutboundMessage.select().where(OutboundMessage.upstream_id.is_null(False)).count() >= count

    return check


def mail_ids(smtp_server) -> list[str]:
    return [mail["Message-ID"] for mail in smtp_server]


def test_redis_restarted_empty_while_workers_idle(app, shop, business, smtp_server, redis_server, workers):
    """Workers outlive Redis; the sweeper runs again on a Redis restarted empty and delivers what was
    accepted while Redis was down, and the retries that Redis forgot, each exactly once."""
    _, number = shop
    business.refuse_first = True  # every forward needs a retry, due 2 s after its first try
    settings = {"SMTP_URL": app.config["SMTP_URL"], "SMSBOT_FORWARD_RETRY_INTERVALS": "[2]"}
    spawned = [workers(**settings), workers(**settings)]
    redis = Redis.from_url(redis_server.url)
    wait_for(lambda: redis.scard("rq:workers") >= 2, 15, "both workers listening")

    redis_server.stop()
    inbound = [receive(number.carrier, InboundSms(f"m{n}", MOBILE, NUMBER, f"note {n}")) for n in range(4)]
    redis_server.start()  # empty: the jobs of these inbounds were never enqueued
    wait_for(lambda: len(business.tries) >= 4, 15, "the first tries of the forwards")
    redis_server.restart_empty()  # the retries RQ had scheduled are gone
    wait_for(all_effects_done, 20, "forwards and copies delivered")

    assert all(process.poll() is None for process in spawned)  # the workers survived both outages
    assert sorted(business.delivered) == sorted(str(message.id) for message in inbound)
    copies = Effect.select().where(Effect.kind == "email_copy")
    assert sorted(mail_ids(smtp_server)) == sorted(f"<effect-{effect.id}@smsbot>" for effect in copies)
    time.sleep(2)  # two more sweeps: nothing is delivered twice
    assert len(business.delivered) == 4 and len(smtp_server) == 4


def all_effects_done() -> bool:
    fresh_reads()
    return Effect.select().count() > 0 and not Effect.select().where(Effect.state != "done").exists()


def test_fan_out_worker_killed_mid_batch_and_redis_restarted_empty(app, client, shop, carrier, redis_server, workers):
    """The batch resumes at its cursor: every member gets exactly one message, sent once."""
    account, _ = shop
    phones = members(account, 35)
    carrier.hold.set()  # the first submission waits: the worker is killed while sending it
    first = workers()
    batch = group_send(client, account)
    assert batch["recipients"] == 35
    assert carrier.held.wait(timeout=20), "the worker never reached the carrier"
    kill(first)
    carrier.release.set()
    fresh_reads()
    assert 0 < OutboundMessage.select().count() < 35  # killed mid-batch
    assert Batch.get_by_id(batch["id"]).state == "pending"

    redis_server.restart_empty()
    workers(), workers()
    wait_for(sent(35), 30, "every member's message sent")

    fresh_reads()
    messages = list(OutboundMessage.select())
    assert sorted(message.recipient for message in messages) == sorted(phones)
    assert {message.batch for message in messages} == {batch["id"]}
    assert set(carrier.accepted) == {str(message.id) for message in messages}
    assert all(message.upstream_id == f"up-{message.id}" for message in messages)
    assert Batch.get_by_id(batch["id"]).state == "done"
    assert_books_balance(account, carrier)


def test_redis_down_during_webhooks_and_a_group_send(
    app, client, shop, carrier, business, smtp_server, redis_server, workers, tmp_path
):
    """With Redis down every request is answered (200, 202) and workers wait for it instead of exiting;
    once it is back, nothing is lost or doubled."""
    account, number = shop
    phones = members(account, 12)
    redis_server.stop()
    spawned = [workers(SMTP_URL=app.config["SMTP_URL"]), workers(SMTP_URL=app.config["SMTP_URL"])]
    assert [webhook(client, number, n) for n in range(5)] == [200] * 5
    batch = group_send(client, account)
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    wait_for(lambda: all("Redis unreachable" in log.read_text() for log in logs), 15, "the workers waiting")
    assert all(process.poll() is None for process in spawned)
    redis_server.start()
    wait_for(sent(5 + 12), 30, "the replies and the group's messages sent")
    wait_for(all_effects_done, 15, "forwards and copies delivered")

    fresh_reads()
    inbound = list(InboundMessage.select())
    replies = OutboundMessage.select().where(OutboundMessage.reply_to.is_null(False))
    assert sorted(r.reply_to_id for r in replies) == sorted(i.id for i in inbound) and len(inbound) == 5
    grouped = OutboundMessage.select().where(OutboundMessage.batch == batch["id"])
    assert sorted(m.recipient for m in grouped) == sorted(phones)
    assert set(carrier.accepted) == {str(m.id) for m in OutboundMessage.select()}
    assert sorted(business.delivered) == sorted(str(i.id) for i in inbound)
    assert len(set(mail_ids(smtp_server))) == len(smtp_server) == 5
    assert_books_balance(account, carrier)
    assert not [log for log in logs if "Traceback" in log.read_text()]


def holder_pid(redis: Redis, holder: str) -> str | None:
    """The pid behind a scheduler lock: a worker (ours) or a scheduler process (RQ's own)."""
    return redis.hget(f"rq:worker:{holder}", "pid") or redis.hget(f"rq:scheduler:{holder}", "pid")


def test_scheduler_taken_over_when_its_worker_is_killed(app, client, shop, carrier, redis_server, workers, schema):
    """A send scheduled for later, and its retry, still go when the worker holding the scheduler dies.

    The sweeper is kept out of it (a long grace), so only the scheduler can move the job."""
    account, _ = shop
    carrier.refuse_first = True  # the first try fails: its retry, a second later (FAST), is scheduled too
    quiet = {"SMSBOT_OUTBOX_GRACE_SECONDS": "600"}
    spawned = {process.pid: process for process in (workers(**quiet), workers(**quiet))}
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    lock = f"rq:scheduler-lock:{schema['QUEUE_NAME']}"
    holder = wait_for(lambda: redis.get(lock), 15, "a worker holding the scheduler lock")
    pid = int(wait_for(lambda: holder_pid(redis, holder), 5, "the holder's pid"))

    headers = {"Authorization": f"Bearer {create_key(account, 'user')[1]}"}
    later = (utcnow() + timedelta(seconds=2)).isoformat() + "Z"
    answer = client.post(
        "/api/v1/messages", json={"to": MOBILE, "from": "Shop", "text": "Later", "send_at": later}, headers=headers
    )
    assert answer.status_code == 202
    kill(spawned[os.getpgid(pid)])  # the worker process group the holder belongs to

    wait_for(sent(1), 20, "the scheduled send, and its retry, sent by the other worker")
    assert redis.get(lock) not in (None, holder)
    [message] = OutboundMessage.select()
    assert carrier.tries == [str(message.id), str(message.id)] and list(carrier.accepted) == [str(message.id)]
    assert_books_balance(account, carrier)
