"""A flaky carrier on a loopback port, counting every submission: for tests/faults/ and bench/ (no faults
by default: a carrier that takes everything).

It speaks two shapes:
- generic (`POST /sms`): keeps one message per idempotency key and answers a repeated key with the
  first upstream id, as a gateway that honours our key does;
- Twilio's Messages API (`POST` and `GET /2010-04-01/Accounts/<sid>/Messages.json`): no key, so every
  submission it takes is a new message; the list answers `To` and `From` filters, newest first.
Faults are drawn per (message, n-th request for it) from a seed, so a run takes the same faults whatever
order the workers' requests arrive in (or from `script`, the faults of each message's first requests):
`error` answers 503 and takes nothing; `timeout` takes the message and answers after `slow_seconds`
(past the client's timeout); `close` takes it and closes the connection without an answer; `lost`
closes it without taking it. `list_error` is the chance that a Twilio list lookup answers 503.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a send job submits its chunk concurrently: the default backlog of 5 resets some

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request_thread(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        with self.connections_lock:
            self.open_connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.open_connections.discard(request)

    def server_close(self) -> None:
        """Stop listening and end the kept-alive connections too: a stopped carrier answers nobody."""
        super().server_close()
        with self.connections_lock:
            for connection in self.open_connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class Faults:
    error: float = 0.0
    timeout: float = 0.0
    close: float = 0.0
    list_error: float = 0.0
    seed: int = 0
    slow_seconds: float = 1.5
    list_seconds: float = 0.0  # how long a Twilio list lookup takes to answer
    script: tuple[str, ...] = ()

    def draw(self, key: str, n: int) -> str:
        if n < len(self.script):
            return self.script[n]
        roll = random.Random(f"{self.seed}:{key}:{n}").random()
        for name in ("error", "timeout", "close"):
            chance = getattr(self, name)
            if roll < chance:
                return name
            roll -= chance
        return "ok"


class LoopbackCarrier:
    """Start with `LoopbackCarrier(faults)`; `url` is its base; `stop()` when done."""

    def __init__(self, faults: Faults = Faults(), reporter: Reporter | None = None) -> None:
        self.faults = faults
        self.reporter = reporter
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()  # every submission request, per key (generic) or body (Twilio)
        self.taken: Counter[str] = Counter()  # messages created, per key or body: more than 1 is a duplicate
        self.upstream: dict[str, str] = {}  # key or body → the first upstream id
        self.repeats: Counter[str] = Counter()  # requests for a key already taken (deduplicated by the key)
        self.submitted_at: list[float] = []  # time.monotonic() of every submission request
        self.lookups = 0
        self.listing = 0  # lookups being answered now
        self.most_listing = 0  # the most lookups answered at once
        self.twilio_messages: list[dict[str, str]] = []
        carrier = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real carrier's API: HTTP/1.0 closes after each answer
            disable_nagle_algorithm = True  # an answer's head and body are two writes: no delayed-ACK stall

            def do_POST(self) -> None:
                carrier.post(self)

            def do_GET(self) -> None:
                carrier.get(self)

            def log_message(self, *args: object) -> None:
                return None

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def post(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if handler.path == "/sms":
            key = handler.headers.get("Idempotency-Key", "")

            def take() -> str:
                if self.reporter is not None:
                    self.reporter.deliver(json.loads(raw)["status_url"], f"up-{key}")
                return f"up-{key}"

            self.submit(handler, key, take, {"status": "accepted"}, dedupe=True)
        else:
            form = {name: values[0] for name, values in parse_qs(raw.decode()).items()}
            body = form.get("Body", "")

            def create() -> str:
                sid = f"SM{len(self.twilio_messages) + 1:032x}"
                self.twilio_messages.insert(0, {
                    "sid": sid, "to": form.get("To", ""), "from": form.get("From", ""), "body": body,
                    "status": "queued", "direction": "outbound-api",
                    "date_created": format_datetime(datetime.now(UTC)),
                })  # fmt: skip
                return sid

            self.submit(handler, body, create, {"status": "queued"}, dedupe=False, status=201)

    def submit(self, handler, key, create, answer, *, dedupe: bool, status: int = 200) -> None:  # type: ignore[no-untyped-def]
        with self.lock:
            self.submitted_at.append(time.monotonic())
            n = self.requests[key]
            self.requests[key] += 1
            fault = self.faults.draw(key, n)
            if fault not in ("error", "lost"):
                if dedupe and key in self.upstream:
                    self.repeats[key] += 1
                else:
                    self.taken[key] += 1
                    self.upstream.setdefault(key, create())
            upstream = self.upstream.get(key, "")
        if fault == "error":
            return self.answer(handler, 503, {"error": "busy"})
        if fault in ("close", "lost"):
            handler.close_connection = True
            return None
        if fault == "timeout":
            time.sleep(self.faults.slow_seconds)
        return self.answer(handler, status, {"id": upstream, "sid": upstream, **answer})

    def get(self, handler: BaseHTTPRequestHandler) -> None:
        query = {name: values[0] for name, values in parse_qs(urlsplit(handler.path).query).items()}
        with self.lock:
            self.lookups += 1
            self.listing += 1
            self.most_listing = max(self.most_listing, self.listing)
            failing = random.Random(f"{self.faults.seed}:list:{self.lookups}").random() < self.faults.list_error
            found = [
                message
                for message in self.twilio_messages  # newest first, as Twilio lists them
                if message["to"] == query.get("To") and message["from"] == query.get("From")
            ]
        time.sleep(self.faults.list_seconds)
        with self.lock:
            self.listing -= 1
        if failing:
            return self.answer(handler, 503, {"error": "busy"})
        return self.answer(handler, 200, {"messages": found, "next_page_uri": None})

    @staticmethod
    def answer(handler: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the client gave up waiting (a timeout fault)


class Reporter:
    """Delivery reports posted back as a carrier posts them: each message it took is reported DELIVRD to
    the message's `status_url`, signed with the carrier's secret, `delay` seconds after it was taken (the
    handset's delivery), by `clients` threads on keep-alive connections. With `batch` above 1 a client
    posts the reports that are due together, up to `batch` in one JSON array, as a gateway that collects
    its receipts does (webhooks/generic.py); with 1, each report alone."""

    def __init__(self, secret: str, clients: int = 8, delay: float = 0.5, batch: int = 1) -> None:
        self.secret, self.delay, self.batch = secret, delay, batch
        self.due: queue.Queue[tuple[float, str, str]] = queue.Queue()
        for _ in range(clients):
            threading.Thread(target=self.post_reports, daemon=True).start()

    def deliver(self, status_url: str, upstream_id: str) -> None:
        self.due.put((time.monotonic() + self.delay, status_url, upstream_id))

    def post_reports(self) -> None:
        connections: dict[str, http.client.HTTPConnection] = {}
        for status_url, upstream_ids in self.due_batches():
            url = urlsplit(status_url)
            for _ in range(3):  # a keep-alive connection the server closed while idle: a new one
                connection = connections.setdefault(url.netloc, http.client.HTTPConnection(url.netloc, timeout=30))
                try:
                    self.post(connection, url.path, upstream_ids)
                    break
                except (OSError, http.client.HTTPException):
                    connections.pop(url.netloc).close()

    def due_batches(self) -> Iterator[tuple[str, list[str]]]:
        """(status URL, upstream ids) as they fall due: a report not yet due waits for the next batch."""
        held = None
        while True:
            at, status_url, upstream_id = held or self.due.get()
            held = None
            time.sleep(max(0.0, at - time.monotonic()))
            upstream_ids = [upstream_id]
            while len(upstream_ids) < self.batch:
                try:
                    item = self.due.get_nowait()
                except queue.Empty:
                    break
                if item[0] > time.monotonic() or item[1] != status_url:
                    held = item
                    break
                upstream_ids.append(item[2])
            yield status_url, upstream_ids

    def post(self, connection: http.client.HTTPConnection, path: str, upstream_ids: list[str]) -> None:
        from bot.signing import json_headers

        reports = [{"id": upstream_id, "stat": "DELIVRD", "err": "000"} for upstream_id in upstream_ids]
        body = json.dumps(reports if self.batch > 1 else reports[0]).encode()
        connection.request("POST", path, body=body, headers=json_headers(self.secret, body))
        response = connection.getresponse()
        answer = response.read()
        if response.status != 200:
            print(f"reports {upstream_ids[:3]}…: HTTP {response.status} {answer[:200]!r}", file=sys.stderr)


@contextmanager
def in_own_process(report_secret: str = "", report_batch: int = 1) -> Iterator[str]:
    """A LoopbackCarrier (no faults) in a process of its own, as a real carrier is: its HTTP parsing then
    takes no time from the process being measured. Yields its base URL. With `report_secret`, it reports
    each message it takes as delivered (`Reporter`, up to `report_batch` reports a request)."""
    command = [sys.executable, __file__, report_secret, str(report_batch)]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield server.stdout.readline().strip()  # type: ignore[union-attr]
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=10)


if __name__ == "__main__":  # serve until stdin closes (`in_own_process`)
    sys.path.insert(0, ROOT)
    reporter = Reporter(sys.argv[1], batch=int(sys.argv[2])) if sys.argv[1:] and sys.argv[1] else None
    carrier = LoopbackCarrier(reporter=reporter)
    print(carrier.url, flush=True)
    sys.stdin.read()
    carrier.stop()
