"""A PostgreSQL transaction's BEGIN goes to the server with its first statement (bot/db.py): one round
trip less for every webhook and job, with the same atomicity."""

from __future__ import annotations

import os

import pytest
from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INERROR, TRANSACTION_STATUS_INTRANS

from models import Account, db

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="how BEGIN reaches PostgreSQL (SQLite's is BEGIN IMMEDIATE on its own); .ci/run runs these on PostgreSQL",
)


def balance(account: Account) -> int:
    return Account.get_by_id(account.id).balance


def add_one(account: Account) -> None:
    Account.update(balance=Account.balance + 1).where(Account.id == account.id).execute()


def test_begin_rides_on_the_first_statement_and_the_hooks_see_each_statement_as_written(make_account) -> None:
    account = make_account(balance=5)
    seen: list[str] = []
    db.obj.query_hooks.append(lambda event: seen.append(event.sql))
    try:
        connection = db.connection()
        with db.atomic():
            assert connection.info.transaction_status == TRANSACTION_STATUS_IDLE  # nothing sent yet
            add_one(account)
            assert connection.info.transaction_status == TRANSACTION_STATUS_INTRANS
            add_one(account)
        assert connection.info.transaction_status == TRANSACTION_STATUS_IDLE
    finally:
        db.obj.query_hooks.pop()
    assert [sql.split()[0] for sql in seen] == ["UPDATE", "UPDATE"]
    assert balance(account) == 7


def test_a_transaction_that_fails_is_rolled_back_whole(make_account) -> None:
    account = make_account(balance=5)
    with pytest.raises(RuntimeError), db.atomic():
        add_one(account)
        add_one(account)
        raise RuntimeError("the handler failed")
    assert balance(account) == 5
    with pytest.raises(Exception, match="duplicate"), db.atomic():  # the first statement fails
        Account.insert(id=account.id, name="twin").execute()
    assert db.connection().info.transaction_status != TRANSACTION_STATUS_INERROR
    assert balance(account) == 5


def test_a_transaction_that_ran_nothing_leaves_no_begin_behind(make_account) -> None:
    account = make_account(balance=5)
    connection = db.connection()
    with db.atomic():
        pass
    with pytest.raises(RuntimeError), db.atomic():
        raise RuntimeError("refused before any statement")
    add_one(account)  # outside a transaction: committed on its own, not the start of a stale one
    assert connection.info.transaction_status == TRANSACTION_STATUS_IDLE
    assert balance(account) == 6


def test_a_statement_refused_before_it_was_sent_leaves_the_begin_for_the_next(make_account) -> None:
    """psycopg2 refuses a value it cannot adapt before sending anything: the transaction has not begun,
    and its next statement still brings the BEGIN, so the rollback undoes it."""
    account = make_account(balance=5)
    with pytest.raises(RuntimeError), db.atomic():
        with pytest.raises(Exception, match="adapt"):
            db.execute_sql("SELECT %s", (object(),))
        add_one(account)
        assert db.connection().info.transaction_status == TRANSACTION_STATUS_INTRANS
        raise RuntimeError("the handler failed")
    assert balance(account) == 5


def test_sql_run_another_way_than_execute_still_begins_the_transaction(make_account) -> None:
    account = make_account(balance=5)
    with pytest.raises(RuntimeError), db.atomic():
        cursor = db.cursor()
        cursor.executemany(
            "UPDATE account SET balance = balance + %s WHERE id = %s", [(1, account.id), (2, account.id)]
        )
        raise RuntimeError("the handler failed")
    assert balance(account) == 5
