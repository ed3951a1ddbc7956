"""A PostgreSQL transaction's BEGIN goes to the server with its first statement (bot/db.py): one round
trip less for every webhook and job, with the same atomicity."""

from __future__ import annotations

import os
from contextlib import nullcontext

import psycopg2
import pytest
from peewee import IntegrityError, InterfaceError
from psycopg2.extensions import TRANSACTION_STATUS_IDLE, TRANSACTION_STATUS_INERROR, TRANSACTION_STATUS_INTRANS

from bot.db import commits, last_statement
from models import Account, db

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="how BEGIN reaches PostgreSQL (SQLite's is BEGIN IMMEDIATE on its own); .ci/run runs these on PostgreSQL",
)


def balance(account: Account) -> int:
    return Account.get_by_id(account.id).balance


def balance_elsewhere(account: Account, database_url: str) -> int:
    """The balance as another connection sees it: what is committed."""
    with psycopg2.connect(database_url) as other, other.cursor() as cursor:
        cursor.execute("SELECT balance FROM account WHERE id = %s", (account.id,))
        return cursor.fetchone()[0]


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


@pytest.mark.parametrize("wrap", [nullcontext, last_statement], ids=["ordinary", "last_statement"])
def test_a_statement_refused_before_it_was_sent_leaves_the_begin_for_the_next(make_account, wrap) -> None:
    """psycopg2 refuses a value it cannot adapt before sending anything: the transaction has not begun,
    and its next statement still brings the BEGIN, so the rollback undoes it (also when the refused one
    was to go alone as the transaction's last)."""
    account = make_account(balance=5)
    with pytest.raises(RuntimeError), db.atomic():
        with pytest.raises(Exception, match="adapt"), wrap():
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


def test_a_last_statement_that_is_also_the_first_commits_itself(make_account, database_url) -> None:
    account = make_account(balance=5)
    connection = db.connection()
    committed: list[str] = []
    with db.atomic():
        db.after_commit(lambda: committed.append("after"))
        with last_statement():
            add_one(account)
        assert connection.info.transaction_status == TRANSACTION_STATUS_IDLE  # no transaction was opened
        assert balance_elsewhere(account, database_url) == 6  # committed already: another connection sees it
    assert committed == ["after"] and balance(account) == 6


def test_nothing_may_follow_a_last_statement_that_went_alone(make_account) -> None:
    account = make_account(balance=5)
    with pytest.raises(InterfaceError, match="nothing may follow"), db.atomic():
        with last_statement():
            add_one(account)
        add_one(account)  # would run outside the transaction
    assert balance(account) == 6
    add_one(account)  # the next transaction is an ordinary one
    assert balance(account) == 7


def test_a_last_statement_after_others_is_part_of_the_transaction(make_account) -> None:
    account = make_account(balance=5)
    with pytest.raises(RuntimeError), db.atomic():
        add_one(account)
        with last_statement():
            add_one(account)
        assert db.connection().info.transaction_status == TRANSACTION_STATUS_INTRANS
        raise RuntimeError("the handler failed after all")
    assert balance(account) == 5


def test_a_last_statement_that_ran_nothing_leaves_the_transaction_as_it_was(make_account) -> None:
    account = make_account(balance=5)
    with pytest.raises(RuntimeError), db.atomic():
        with last_statement():
            pass
        add_one(account)
        add_one(account)
        raise RuntimeError("the handler failed")
    assert balance(account) == 5


def test_a_last_statement_that_fails_commits_nothing_and_leaves_the_connection_usable(make_account) -> None:
    account = make_account(balance=5)
    with pytest.raises(IntegrityError), db.atomic(), last_statement():
        Account.insert(id=account.id, name="twin").execute()
    assert db.connection().info.transaction_status == TRANSACTION_STATUS_IDLE
    add_one(account)
    assert balance(account) == 6


def test_a_last_statement_without_results_carries_the_commit(make_account, database_url) -> None:
    account = make_account(balance=5)
    connection = db.connection()
    committed: list[str] = []
    seen: list[str] = []
    db.obj.query_hooks.append(lambda event: seen.append(event.sql))
    try:
        with db.atomic():
            db.after_commit(lambda: committed.append("after"))
            add_one(account)
            with last_statement(results=False):
                add_one(account)
            assert connection.info.transaction_status == TRANSACTION_STATUS_IDLE  # the COMMIT went with it
            assert balance_elsewhere(account, database_url) == 7
    finally:
        db.obj.query_hooks.pop()
    assert [sql.split()[0] for sql in seen] == ["UPDATE", "UPDATE"]  # the hooks see the statement as written
    assert committed == ["after"] and balance(account) == 7
    with pytest.raises(InterfaceError, match="nothing may follow"), db.atomic():
        add_one(account)
        with last_statement(results=False):
            add_one(account)
        add_one(account)  # would run outside the transaction
    assert balance(account) == 9


def test_a_last_statement_with_the_commit_that_fails_rolls_back_the_whole_transaction(make_account) -> None:
    account = make_account(balance=5)
    with pytest.raises(IntegrityError), db.atomic():
        add_one(account)
        with last_statement(results=False):
            db.execute_sql("UPDATE account SET name = NULL WHERE id = %s", (account.id,))  # NOT NULL
    assert db.connection().info.transaction_status == TRANSACTION_STATUS_IDLE
    assert balance(account) == 5  # the first statement's change went with the rollback
    with pytest.raises(RuntimeError), db.atomic():  # refused before it was sent: the transaction goes on
        add_one(account)
        with pytest.raises(Exception, match="adapt"), last_statement(results=False):
            db.execute_sql("UPDATE account SET name = %s WHERE id = 0", (object(),))
        add_one(account)
        raise RuntimeError("the handler failed")
    assert balance(account) == 5


def test_a_last_statement_in_a_savepoint_or_wanting_results_keeps_the_transaction_open(make_account) -> None:
    account = make_account(balance=5)
    with pytest.raises(RuntimeError), db.atomic():
        add_one(account)
        with db.atomic(), last_statement(results=False):  # a savepoint's last statement is not the transaction's
            add_one(account)
        with last_statement():  # results wanted: an ordinary statement of a begun transaction
            assert db.execute_sql("SELECT balance FROM account WHERE id = %s", (account.id,)).fetchone() == (7,)
        assert db.connection().info.transaction_status == TRANSACTION_STATUS_INTRANS
        raise RuntimeError("the handler failed")
    assert balance(account) == 5


def test_a_last_statement_without_results_may_not_return_rows(make_account) -> None:
    """Its results would be the COMMIT's: a SELECT or a RETURNING is refused before anything is sent,
    and the transaction is rolled back whole."""
    account = make_account(balance=5)
    for refused in ("SELECT balance FROM account", "UPDATE account SET balance = 0 RETURNING id"):
        with pytest.raises(InterfaceError, match="returns no rows"), db.atomic():
            add_one(account)
            with last_statement(results=False):
                db.execute_sql(refused)
        assert db.connection().info.transaction_status == TRANSACTION_STATUS_IDLE
        assert balance(account) == 5


def test_a_commit_the_server_refuses_is_not_counted_as_one(make_account) -> None:
    """A deferred constraint fails at the COMMIT that rides on the last statement: the server has rolled
    back, nothing is committed, and a request would run again on a lost connection as if nothing had."""
    account = make_account(balance=5)
    db.execute_sql("CREATE TEMP TABLE once (x int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
    committed = commits()
    with pytest.raises(IntegrityError, match="once"), db.atomic():
        add_one(account)
        db.execute_sql("INSERT INTO once VALUES (1)")
        with last_statement(results=False):
            db.execute_sql("INSERT INTO once VALUES (1)")  # accepted now, refused at the COMMIT
    assert commits() == committed
    assert db.connection().info.transaction_status == TRANSACTION_STATUS_IDLE
    assert balance(account) == 5
    add_one(account)
    assert balance(account) == 6
