"""The database: built from DATABASE_URL, opened per request and per job; lost connections replaced.

A PostgreSQL connection dies under us when the server restarts or someone runs pg_terminate_backend:
- a job gets a connection that peewee's pool has checked (`SELECT 1`) when handing it out, a dead one
  replaced;
- a web request runs again, once, on a fresh connection, when it failed on a lost connection before
  anything was committed (a COMMIT, or a write outside a transaction). Retrying only the failed
  statement would be wrong: its transaction went with the connection. After a commit the request is not
  run again (a second run could act twice) and fails as before. That covers a connection that died
  while pooled too, so a request's check-out skips the `SELECT 1` round trip (one in six of a webhook's);
- in a send job, recording the carrier's answer is retried on a fresh connection (bot/pipeline/handoff.py).
SQLite needs none of this: its connections do not die.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TypeVar

from flask import Flask, Response, request
from peewee import (
    SQL,
    Database,
    Expression,
    Field,
    InterfaceError,
    ModelSelect,
    NodeList,
    OperationalError,
    Select,
    __exception_wrapper__,
    _savepoint,
    fn,
)
from playhouse.db_url import connect, parse
from playhouse.pool import PooledDatabase, PooledPostgresqlDatabase, PooledSqliteDatabase
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from models import db

log = logging.getLogger("smsbot.db")
AtCommit = TypeVar("AtCommit", bound=Callable[[], None])
_commits = threading.local()
_request_checkout = threading.local()  # set while a web request takes its connection (PooledPostgres._is_closed)


def commits() -> int:
    """How many units of work this thread has committed on PostgreSQL so far."""
    return getattr(_commits, "count", 0)


def _count_commit() -> None:
    _commits.count = commits() + 1


class BeginFirst:
    """A cursor of a transaction whose BEGIN has not reached the server yet: its `execute` sends the BEGIN
    with its statement, in one round trip (psycopg2 sends a query and its interpolated parameters as one
    simple-protocol message, which may hold several statements; the results are the last one's).

    The BEGIN counts as sent once the server has a transaction open: a statement psycopg2 refused before
    sending it (a value it cannot adapt) leaves it waiting for the next one. Any other way of running SQL
    on the cursor sends the BEGIN on its own first.
    """

    def __init__(self, cursor, database: PooledPostgres) -> None:  # type: ignore[no-untyped-def]
        self._cursor, self._database = cursor, database

    def execute(self, sql: str, params: object = None) -> None:
        begin = self._database.deferred_begin()
        if begin is ENDED:
            raise InterfaceError("the transaction ended with its last statement (last_statement): nothing may follow")
        if begin is ALONE:
            self._cursor.execute(sql, params)  # committed by the server on its own
            self._database.ended()
            _count_commit()
            return
        if begin is WITH_COMMIT:
            if returns_rows(sql):
                raise InterfaceError("a last_statement without results returns no rows: not a SELECT nor RETURNING")
            try:
                self._cursor.execute(f"{sql}; COMMIT", params)
            except BaseException:
                if self._cursor.connection.info.transaction_status == TRANSACTION_STATUS_IDLE:
                    self._database.ended()  # the server refused the COMMIT and rolled back: nothing to undo
                else:  # the statement failed: the transaction is still open, for the caller's ROLLBACK
                    self._database.begun()
                raise
            self._database.ended()
            _count_commit()
            return
        try:
            self._cursor.execute(f"{begin}; {sql}" if begin else sql, params)
        finally:
            if begin and self._cursor.connection.info.transaction_status != TRANSACTION_STATUS_IDLE:
                self._database.begun()

    def _begin_first(self, method: Callable[..., object]) -> Callable[..., object]:
        def run(*args: object, **kwargs: object) -> object:
            if self._database.deferred_begin() in (ALONE, WITH_COMMIT):
                raise InterfaceError(f"a last_statement is one execute, not {method.__name__}")
            if self._database.deferred_begin() is not None:
                self.execute("SELECT 1")  # the BEGIN, then what was asked
            return method(*args, **kwargs)

        return run

    def __getattr__(self, name: str) -> object:
        found = getattr(self._cursor, name)
        return self._begin_first(found) if name in SQL_RUNNING_METHODS else found

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._cursor)

    def __next__(self):  # type: ignore[no-untyped-def]
        return next(self._cursor)

    def __enter__(self) -> BeginFirst:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()


QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")  # a literal or a quoted identifier


@lru_cache(maxsize=256)  # the few statements that end transactions, each scanned once (a report's is 1,000 characters)
def returns_rows(sql: str) -> bool:
    """Whether a statement's own result is rows: a SELECT, or a RETURNING outside parentheses (one inside
    a WITH's data-modifying query feeds the statement, not the caller)."""
    depth, outside = 0, []
    for char in QUOTED.sub(" ", sql):
        depth += (char == "(") - (char == ")")
        outside.append(char if depth == 0 else " ")
    text = "".join(outside).upper()
    return text.lstrip().startswith("SELECT") or " RETURNING " in f" {text} "


SQL_RUNNING_METHODS = frozenset({"executemany", "callproc", "copy_from", "copy_to", "copy_expert"})
# What a transaction's deferred BEGIN may be besides its SQL (waiting) and None (sent): its next statement
# goes alone or carries the COMMIT (`last_statement`), or that statement went and the transaction has
# nothing more to send.
ALONE, WITH_COMMIT, ENDED = "-- alone", "-- with commit", "-- ended"


class CountedSavepoint(_savepoint):
    """A savepoint that the database counts while it is open: peewee keeps no stack of them, and a
    savepoint's last statement is not its transaction's (`last_statement`)."""

    def __enter__(self) -> CountedSavepoint:
        entered = super().__enter__()
        self.db._state.savepoints = getattr(self.db._state, "savepoints", 0) + 1
        return entered

    def __exit__(self, *exc: object) -> None:
        self.db._state.savepoints -= 1
        super().__exit__(*exc)


class PooledPostgres(PooledPostgresqlDatabase):
    """The PostgreSQL pool, counting per thread what the server has committed (see `commits`).

    A transaction's BEGIN is not a round trip of its own: it goes to the server with the transaction's
    first statement (`BeginFirst`), and a transaction that ran no statement sends neither BEGIN nor
    COMMIT. The query hooks (bot/cache.py watches them) see each statement as written.
    """

    def begin(self, isolation_level: str | None = None) -> None:
        """Note the transaction's BEGIN, to go with its first statement (`BeginFirst`)."""
        if self.is_closed():  # connect now, as sending BEGIN would: connecting later resets the transactions
            if not self.autoconnect:
                raise InterfaceError("Error, database connection not opened.")
            self.connect()
        level = isolation_level or self._isolation_level
        begin = f"BEGIN TRANSACTION ISOLATION LEVEL {self._adapter.isolation_level_str(level)}" if level else "BEGIN"
        self._state.deferred_begin = begin

    def cursor(self, named_cursor: object = None):  # type: ignore[no-untyped-def]
        cursor = super().cursor(named_cursor)
        return cursor if self.deferred_begin() is None else BeginFirst(cursor, self)

    def deferred_begin(self) -> str | None:
        """The BEGIN of this thread's transaction while it has not reached the server, else None."""
        return getattr(self._state, "deferred_begin", None)

    def begun(self) -> None:
        self._state.deferred_begin = None

    def ended(self) -> None:
        self._state.deferred_begin = ENDED

    def finish_with_next(self, results: bool) -> bool:
        """Let the next statement end the transaction (see `last_statement`): without BEGIN when nothing of
        it has reached the server, or, when it has begun and `results` are not wanted, carrying the
        COMMIT. False when neither applies (a savepoint's transaction, an isolation level asked for,
        results wanted of a begun one)."""
        begin = self.deferred_begin()
        if self.transaction_depth() != 1 or getattr(self._state, "savepoints", 0):
            return False
        if begin == "BEGIN":
            self._state.deferred_begin = ALONE
            return True
        if begin is None and not results and self.in_transaction():
            self._state.deferred_begin = WITH_COMMIT
            return True
        return False

    def savepoint(self, sid: str | None = None) -> CountedSavepoint:
        return CountedSavepoint(self, sid)

    def stay_together(self) -> None:
        """Undo `finish_with_next` if no statement went meanwhile: ALONE stood for a plain BEGIN not yet
        sent, WITH_COMMIT for a transaction already begun."""
        replaced = {ALONE: "BEGIN", WITH_COMMIT: None}
        if self.deferred_begin() in replaced:
            self._state.deferred_begin = replaced[self.deferred_begin()]

    def _skip_unbegun(self) -> bool:
        """Whether the transaction being ended never reached the server (nothing to commit or roll back)."""
        if self.deferred_begin() is None:
            return False
        self.begun()
        return True

    def rollback(self) -> None:
        if not self._skip_unbegun():
            super().rollback()

    def _close(self, conn, close_conn: bool = False) -> None:  # type: ignore[no-untyped-def]
        if conn is self._state.conn:
            self.begun()  # a BEGIN never sent must not ride on the next user's statement
        super()._close(conn, close_conn)

    def _is_closed(self, conn) -> bool:  # type: ignore[no-untyped-def]
        """At check-out: peewee's test (`SELECT 1` on an idle connection), or for a web request, which runs
        again on a lost connection, only what the driver knows without a round trip."""
        if not getattr(_request_checkout, "active", False):
            return bool(super()._is_closed(conn))
        return bool(conn.closed) or not self._adapter.is_connection_reusable(conn)

    def commit(self) -> None:
        if not self._skip_unbegun():
            super().commit()
            _count_commit()

    def copy_in(self, sql: str, data: str) -> None:
        """Run `COPY … FROM STDIN` with `data` (text format) in this thread's transaction; the query hooks
        see it as they see any statement."""
        if not self.in_transaction():
            raise InterfaceError("copy_in runs in a transaction (its commit is counted there)")
        self._log_query(sql, None)
        start = time.perf_counter()
        try:
            with __exception_wrapper__, self.cursor() as cursor:
                cursor.copy_expert(sql, io.StringIO(data))
        except Exception as exc:
            self._notify_hooks(sql, None, start, exc)
            raise
        self._notify_hooks(sql, None, start, None)

    def execute_sql(self, sql: str, params: object = None):  # type: ignore[no-untyped-def]
        cursor = super().execute_sql(sql, params)
        if not self.in_transaction() and sql.lstrip()[:6].upper() != "SELECT":
            _count_commit()  # autocommit: a write outside a transaction is committed at once
        return cursor


class PooledSqlite(PooledSqliteDatabase):
    """The SQLite pool, its write transactions taking turns on a lock file (`<database>-writers`) before
    BEGIN IMMEDIATE, in every process that opens the database.

    Without it, writers wait in SQLite's busy handler, which sleeps 1, 2, 5, 10 … up to 100 ms between
    tries: a webhook that lost a few rounds to its neighbours waited over 100 ms (the p99 of inbound
    webhooks with 8 clients) for a lock held 2 ms at a time. Here a waiter looks every
    WRITER_POLL_SECONDS at most, and gives up after the busy timeout as SQLite would ("database is
    locked"). The lock is flock(2): per open file, so each thread opens its own, and the kernel releases
    it when a process dies.
    """

    WRITER_POLL_SECONDS = 0.002

    def __init__(self, database: str, *args: object, **kwargs: object) -> None:
        super().__init__(database, *args, **kwargs)
        self._writer = threading.local()
        self._writers_path = None if database in ("", ":memory:") else f"{database}-writers"

    def begin(self, lock_type: str | None = None) -> None:
        self._take_turn()
        try:
            super().begin(lock_type)
        except BaseException:
            self._end_turn()
            raise

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._end_turn()

    def _close(self, conn, close_conn: bool = False) -> None:  # type: ignore[no-untyped-def]
        if conn is self._state.conn:
            self._end_turn()  # this thread's connection handed back mid-transaction must not keep the turn
        super()._close(conn, close_conn)

    def _take_turn(self) -> None:
        if self._writers_path is None:
            return
        if getattr(self._writer, "file", None) is None:  # closed with the thread's (or the pool's) end
            self._writer.file = open(self._writers_path, "ab")  # noqa: SIM115
        deadline, pause = time.monotonic() + self._busy_seconds(), 0.0005
        while True:
            try:
                fcntl.flock(self._writer.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OperationalError("database is locked") from None
                time.sleep(pause)
                pause = min(pause * 2, self.WRITER_POLL_SECONDS)

    def _end_turn(self) -> None:
        file = getattr(self._writer, "file", None)
        if file is not None:
            fcntl.flock(file, fcntl.LOCK_UN)

    def _busy_seconds(self) -> float:
        return dict(self._pragmas).get("busy_timeout", 5000) / 1000


def make_database(url: str) -> Database:
    """Return a pooled peewee database for a URL; SQLite gets WAL and IMMEDIATE write transactions.

    IMMEDIATE matters: a DEFERRED transaction that reads and then writes fails at once with
    "database is locked" under contention instead of waiting out the busy timeout.
    """
    if url.startswith("sqlite"):
        path = url.split("://", 1)[1][1:]  # sqlite:///relative.db, sqlite:////absolute.db
        if path not in ("", ":memory:"):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return PooledSqlite(
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
    if scheme.split("+")[0] in ("postgres", "postgresql"):
        return PooledPostgres(**parse(f"postgresql://{rest}"), max_connections=32, stale_timeout=300, timeout=10)
    if "+pool" not in scheme:
        url = f"{scheme}+pool://{rest}"
    return connect(url, max_connections=32, stale_timeout=300, timeout=10)


def database_url(app: Flask) -> str:
    return app.config["DATABASE_URL"] or "sqlite:///" + os.path.join(app.instance_path, "smsbot.db")


def connection_lost() -> bool:
    """Whether this thread's open connection was found dead by the driver."""
    database = db.obj
    return not database.is_closed() and bool(getattr(database.connection(), "closed", 0))


def replace_connection() -> None:
    """Drop this thread's connection without returning it to the pool, and open a fresh one."""
    database = db.obj
    if not database.is_closed():
        if isinstance(database, PooledDatabase):
            database.manual_close()
        else:
            database.close()
    database.connect()


def retry_lost_connection(app: Flask) -> None:
    """Run a request once more when its connection was lost before anything was committed."""
    dispatch = app.full_dispatch_request

    def dispatch_again_on_lost_connection() -> Response:
        committed = commits()
        try:
            return dispatch()
        except (OperationalError, InterfaceError) as exc:
            if not connection_lost() or commits() != committed:
                raise
            log.warning(
                "%s %s: database connection lost (%s); running the request again",
                request.method,
                request.path,
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            )
            replace_connection()
            return dispatch()

    app.full_dispatch_request = dispatch_again_on_lost_connection  # type: ignore[method-assign]


@contextmanager
def last_statement(when: bool = True, *, results: bool = True) -> Iterator[None]:
    """Run the statement inside as its transaction's last one (`when` the caller knows it is).

    On PostgreSQL, one round trip instead of two (statement, COMMIT):
    - a transaction whose last statement is also its first (nothing of it has reached the server) sends
      that statement alone, without BEGIN: the server commits it on its own;
    - with `results=False` (the caller reads nothing of what the statement returns: no rows, no row
      count, which would be the COMMIT's), a transaction that has begun sends it with its COMMIT after
      it, in one message; a SELECT or a RETURNING is refused before anything is sent. Should the
      statement fail, the COMMIT is not run and the transaction is rolled back as any other; should the
      COMMIT fail (a deferred constraint), the server has rolled back and no commit is counted.
    Either way the transaction's own COMMIT is then skipped as an empty one's, and after it the
    transaction sends nothing: a statement that tried would run outside it, and raises instead.
    Otherwise, and on SQLite, it is an ordinary statement of the transaction.
    """
    database = db.obj
    finishing = when and isinstance(database, PooledPostgres) and database.finish_with_next(results)
    try:
        yield
    finally:
        if finishing:
            database.stay_together()


def writes_in_with() -> bool:
    """Whether a `WITH` may hold an INSERT or UPDATE (PostgreSQL's data-modifying CTEs; not SQLite)."""
    return isinstance(db.obj, PooledPostgres)


def in_subquery(column: Field, query: Select) -> Expression:
    """`column IN (query)`. On PostgreSQL `column = ANY(ARRAY(query))`: the query runs first on its own,
    and the rows it names are read by `column`'s index. For `IN`, the planner of a table it has no
    statistics of yet (a group imported a minute ago) hashed the whole table: a group send read all its
    members again for each chunk (15 ms a chunk at 10,000 members, against 3)."""
    if isinstance(db.obj, PooledPostgres):
        return column == fn.ANY(NodeList((SQL("ARRAY"), query)))
    return column.in_(query)


def for_update(query: ModelSelect, lock: str = "FOR UPDATE") -> ModelSelect:
    """`query` locking its rows until the commit on PostgreSQL; SQLite has no row locks (its write
    transactions are serial) and peewee refuses FOR UPDATE there."""
    return query.for_update(lock) if db.for_update else query


def init_app(app: Flask) -> None:
    """Bind the models to the configured database and scope connections to each request."""
    db.initialize(make_database(database_url(app)))
    retry_lost_connection(app)

    @app.before_request
    def open_connection() -> None:
        _request_checkout.active = True  # `retry_lost_connection`: the check-out need not ping
        try:
            db.connect(reuse_if_open=True)
        finally:
            _request_checkout.active = False

    @app.teardown_appcontext
    def close_connection(_exc: BaseException | None) -> None:
        if not db.is_closed():
            db.close()


def at_commit(kind: type[AtCommit]) -> AtCommit | None:
    """The current transaction's commit callback of `kind`, registered on first use; None outside a
    transaction. What it holds lives exactly as long as the transaction: it runs at the commit, and a
    rollback drops it with peewee's other commit callbacks (so nothing is carried into the next one)."""
    if not db.in_transaction():
        return None
    waiting = db.obj._state.commit_callbacks  # this connection's, as peewee keeps them
    found = next((callback for callback in waiting if isinstance(callback, kind)), None)
    if found is None:
        found = kind()
        db.after_commit(found)
    return found
