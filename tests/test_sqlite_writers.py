"""SQLite writers take turns on a lock file instead of in SQLite's busy handler (bot/db.py PooledSqlite):
a writer waits for the one before it however long that takes, up to the busy timeout, and only then
is told the database is locked."""

from __future__ import annotations

import threading
import time

from peewee import OperationalError

from bot.db import make_database


def two_writers(database, hold: float) -> list[object]:  # type: ignore[no-untyped-def]
    """The first writer holds its transaction `hold` seconds; what the second one's INSERT came to."""
    database.execute_sql("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
    held, outcome = threading.Event(), []

    def first() -> None:
        with database.atomic():
            database.execute_sql("INSERT INTO t VALUES (1)")
            held.set()
            time.sleep(hold)
        database.close()

    def second() -> None:
        held.wait(5)
        database.execute_sql("PRAGMA busy_timeout = 0")  # SQLite on its own would refuse at once
        started = time.monotonic()
        try:
            with database.atomic():
                database.execute_sql("INSERT INTO t VALUES (2)")
            outcome.append(time.monotonic() - started)
        except OperationalError as exc:
            outcome.append(exc)
        database.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return outcome


def test_a_writer_waits_its_turn_rather_than_being_refused(tmp_path):
    database = make_database(f"sqlite:///{tmp_path}/turns.db")
    (waited,) = two_writers(database, hold=0.3)
    assert isinstance(waited, float) and 0.2 < waited < 0.3 + 0.1  # waited for the first, then went at once
    assert [n for (n,) in database.execute_sql("SELECT n FROM t ORDER BY n").fetchall()] == [1, 2]


def test_a_writer_gives_up_after_the_busy_timeout(tmp_path):
    database = make_database(f"sqlite:///{tmp_path}/turns.db")
    database._pragmas = [(name, 100 if name == "busy_timeout" else value) for name, value in database._pragmas]
    (refused,) = two_writers(database, hold=0.5)
    assert isinstance(refused, OperationalError) and "locked" in str(refused)
    assert [n for (n,) in database.execute_sql("SELECT n FROM t").fetchall()] == [1]


def test_an_in_memory_database_has_no_lock_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    database = make_database("sqlite:///:memory:")
    with database.atomic():
        database.execute_sql("CREATE TABLE t (n INTEGER)")
    assert list(tmp_path.iterdir()) == []
