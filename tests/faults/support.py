"""Helpers of the fault tests: waiting for workers, cutting PostgreSQL connections."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

from tests import processes

DATABASE_URL = processes.own_database_url(os.environ.get("DATABASE_URL", ""))
postgres_only = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgres"),
    reason="pg_terminate_backend needs PostgreSQL (DATABASE_URL); .ci/run runs these on PostgreSQL",
)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def cut_connections(pid: int | None = None) -> int:
    """Terminate the app's PostgreSQL connections (all but this one), or only backend `pid`, waiting for each to end."""
    import psycopg2

    killer = psycopg2.connect(DATABASE_URL)
    killer.autocommit = True
    try:
        cursor = killer.cursor()
        if pid is None:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        else:
            cursor.execute("SELECT count(pg_terminate_backend(%s, 5000))", (pid,))
        return cursor.fetchone()[0]
    finally:
        killer.close()
