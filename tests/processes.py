"""Each test process its own database and Redis database, so `pytest -n N` (pytest-xdist) can run the
suite in parallel: tests empty their tables and flush their Redis database, so processes must not share.

Test process gwK uses the PostgreSQL database `<name>_gwK` next to DATABASE_URL's (created when missing)
and the Redis database number K below REDIS_URL's; run alone, the URLs are used as they are. SQLite and
the embedded Redis live in each session's own temporary directory already.
"""

from __future__ import annotations

import contextlib
import os
from urllib.parse import urlsplit, urlunsplit

import pytest

TEST_PROCESS = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", … under `pytest -n N`; "" alone


def own_database_url(url: str) -> str:
    if not TEST_PROCESS or not url.startswith("postgres"):
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"{parts.path}_{TEST_PROCESS}"))


def create_database(url: str) -> str:
    """Create the PostgreSQL database of `url` unless it exists; returns `url`."""
    if not TEST_PROCESS:
        return url
    import psycopg2
    from psycopg2 import errors, sql

    parts = urlsplit(url)
    connection = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor, contextlib.suppress(errors.DuplicateDatabase):
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(parts.path.lstrip("/"))))
    finally:
        connection.close()
    return url


def own_redis_url(url: str) -> str:
    if not TEST_PROCESS:
        return url
    parts = urlsplit(url)
    number = int(parts.path.lstrip("/") or 0) - int(TEST_PROCESS.removeprefix("gw"))
    if number < 0:
        raise pytest.UsageError(f"REDIS_URL {url}: no Redis database left below it for test process {TEST_PROCESS}")
    return urlunsplit(parts._replace(path=f"/{number}"))
