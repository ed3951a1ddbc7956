"""Many rows in one INSERT, for the pipeline's chunks (a thousand messages and their events at a time).

peewee's `insert_many` builds a query node per value; for a chunk that costs more time than the
database spends on the rows. `insert` writes the same SQL text directly: the model's columns, its
defaults for what a row leaves out, each value through its field's `db_value`, in as few statements as
the databases' parameter limits allow (SQLite takes 32,766 a statement, PostgreSQL 65,535), on both
databases with `ON CONFLICT DO NOTHING` and `RETURNING` (SQLite ≥ 3.35).

On PostgreSQL, many rows that need neither (a chunk's events and ledger lines), in a transaction, go by
`COPY … FROM STDIN` instead: the server takes them in about half the time it spends parsing and planning
a VALUES list of thousands of parameters (3,000 events: 50 ms against 90 ms, measured on the bench
machine). A COPY is two round trips (the server answers the COPY before it takes the rows), so a few
rows still go as one INSERT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from operator import methodcaller
from typing import Any

from peewee import (
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    Field,
    ForeignKeyField,
    IntegerField,
    Model,
    Node,
    TextField,
)

from bot.db import PooledPostgres
from models import db

MAX_PARAMS = 30_000
COPY_FROM_ROWS = 100  # fewer rows go as one INSERT: one round trip where COPY takes two


def insert(
    model: type[Model], rows: list[dict[str, Any]], *, skip_conflicts: bool = False, returning: tuple[Field, ...] = ()
) -> list[tuple]:
    """Insert `rows` (field name to value); with `skip_conflicts` a row a unique index refuses is left
    out. Returns the `returning` columns of the rows written."""
    table = Table.of(model)

    def values(part: list[dict[str, Any]]) -> list[Any]:
        converted = []
        for row in part:
            for name, convert, default, stored in table.columns:
                value = row[name] if name in row else (default() if callable(default) else default)
                converted.append(value if value is None or type(value) is stored else convert(value))
        return converted

    if not (skip_conflicts or returning) and len(rows) >= COPY_FROM_ROWS and copies():
        data = copy_text(values(rows), table.width)
        if data is not None:
            db.obj.copy_in(f"COPY {table.head} FROM STDIN", data)
            return []
    head = f"INSERT INTO {table.head} VALUES "
    tail = (" ON CONFLICT DO NOTHING" if skip_conflicts else "") + (
        f" RETURNING {', '.join(quoted(f.column_name) for f in returning)}" if returning else ""
    )
    written: list[tuple] = []
    per_statement = max(1, MAX_PARAMS // table.width)
    for start in range(0, len(rows), per_statement):
        params, sql = placeholders(values(rows[start : start + per_statement]), table.width)
        cursor = db.execute_sql(head + sql + tail, params)
        if returning:
            written += [tuple(row) for row in cursor.fetchall()]
    return written


def copies() -> bool:
    """Whether rows may go by COPY: PostgreSQL, in a transaction (where `copy_in` counts its commit)."""
    return isinstance(db.obj, PooledPostgres) and db.in_transaction()


@dataclass(frozen=True)
class Table:
    """What writing a model's rows needs of it, worked out once per model: its table and columns, and per
    column its field name, db_value, default and the type `as_stored` lets through."""

    head: str  # "table" ("column", …)
    columns: tuple[tuple[str, Callable[[Any], Any], Any, type | None], ...]

    @property
    def width(self) -> int:
        return len(self.columns)

    @staticmethod
    @cache
    def of(model: type[Model]) -> Table:
        fields = [field for field in model._meta.sorted_fields if not isinstance(field, AutoField)]
        names = ", ".join(quoted(field.column_name) for field in fields)
        return Table(
            head=f"{quoted(model._meta.table_name)} ({names})",
            columns=tuple(
                (field.name, field.db_value, model._meta.defaults.get(field), as_stored(field)) for field in fields
            ),
        )


# The field classes whose db_value hands a value of this type back as it is: such a value (and None) skips
# the call, which was the dearest part of writing a chunk in Python (22 calls a message, 10,000 messages).
STORED_AS: dict[type[Field], type] = {
    AutoField: int,
    IntegerField: int,
    BigIntegerField: int,
    CharField: str,
    TextField: str,
    DateTimeField: datetime,
    BooleanField: bool,
}


def as_stored(field: Field) -> type | None:
    """The type a value of `field` has when its db_value would return it unchanged (None: always call it)."""
    if isinstance(field, ForeignKeyField):  # a related row becomes its key; the key itself is kept
        field = field.rel_field
    return STORED_AS.get(type(field))


def placeholders(values: list[Any], width: int) -> tuple[list[Any], str]:
    """The parameters and the VALUES rows' SQL for `values`, `width` to a row."""
    if any(isinstance(value, Node) for value in values):  # an expression around a value: SQLite's json()
        params: list[Any] = []
        marks = [placed(value, params) for value in values]
        return params, ", ".join("(" + ", ".join(marks[at : at + width]) + ")" for at in range(0, len(marks), width))
    one = "(" + ", ".join([db.param] * width) + ")"
    return values, ", ".join([one] * (len(values) // width))


class Uncopyable(Exception):
    """A value COPY's text format would store otherwise than an INSERT does."""


def naive_datetime(value: datetime) -> str:
    """ISO 8601 with a space, as PostgreSQL reads it. An offset COPY would drop, where an INSERT converts
    the time to the session's zone: such a value is left to an INSERT."""
    if value.tzinfo is not None:
        raise Uncopyable(value)
    return str(value)


# How a value (after its field's db_value) is written in COPY's text format, by its type; a value of any
# other type makes the caller INSERT instead.
COPY_CELLS: dict[type, Callable[[Any], str]] = {
    str: methodcaller("translate", str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})),
    int: str,
    bool: ("f", "t").__getitem__,
    datetime: naive_datetime,
    date: str,
    type(None): lambda _: "\\N",
}


def copy_text(values: list[Any], width: int) -> str | None:
    """`values`, `width` to a row, in COPY's text format; None when one is not for COPY (its type is not in
    COPY_CELLS, or `Uncopyable`)."""
    try:
        cells = [COPY_CELLS[type(value)](value) for value in values]
    except (KeyError, Uncopyable):
        return None
    return "".join("\t".join(cells[at : at + width]) + "\n" for at in range(0, len(cells), width))


def placed(value: Any, params: list[Any]) -> str:
    """The SQL for one value: a placeholder, or the expression a field made of it."""
    if isinstance(value, Node):
        sql, extra = db.get_sql_context().sql(value).query()
        params += extra
        return sql
    params.append(value)
    return db.param


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
