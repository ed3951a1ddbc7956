"""The database: built from DATABASE_URL, opened per request and per job."""

from __future__ import annotations

import os

from flask import Flask
from peewee import Database
from playhouse.db_url import connect
from playhouse.pool import PooledSqliteDatabase

from models import db


def make_database(url: str) -> Database:
    """Return a pooled peewee database for a URL; SQLite gets WAL and IMMEDIATE write transactions.

    IMMEDIATE matters: a DEFERRED transaction that reads and then writes fails at once with
    "database is locked" under contention instead of waiting out the busy timeout.
    """
    if url.startswith("sqlite"):
        path = url.split("://", 1)[1][1:]  # sqlite:///relative.db, sqlite:////absolute.db
        if path not in ("", ":memory:"):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return PooledSqliteDatabase(
            path or ":memory:",
            max_connections=32,
            stale_timeout=300,
            timeout=10,
            pragmas={"journal_mode": "wal", "busy_timeout": 10000, "foreign_keys": 1, "synchronous": "normal"},
            lock_type="IMMEDIATE",
            check_same_thread=False,  # a pooled connection serves one thread at a time, not always the same one
        )
    # Server databases get a connection pool: a new PostgreSQL connection per request costs more than
    # the whole webhook's own work.
    scheme, rest = url.split("://", 1)
    if "+pool" not in scheme:
        url = f"{scheme}+pool://{rest}"
    return connect(url, max_connections=32, stale_timeout=300, timeout=10)


def database_url(app: Flask) -> str:
    return app.config["DATABASE_URL"] or "sqlite:///" + os.path.join(app.instance_path, "smsbot.db")


def init_app(app: Flask) -> None:
    """Bind the models to the configured database and scope connections to each request."""
    db.initialize(make_database(database_url(app)))

    @app.before_request
    def open_connection() -> None:
        db.connect(reuse_if_open=True)

    @app.teardown_appcontext
    def close_connection(_exc: BaseException | None) -> None:
        if not db.is_closed():
            db.close()
