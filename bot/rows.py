"""Many rows in one INSERT, for the pipeline's chunks (a thousand messages and their events at a time).

peewee's `insert_many` builds a query node per value; for a chunk that costs more time than the
database spends on the rows. `insert` writes the same SQL text directly: the model's columns, its
defaults for what a row leaves out, each value through its field's `db_value`, in as few statements as
the databases' parameter limits allow (SQLite takes 32,766 a statement, PostgreSQL 65,535), on both
databases with `ON CONFLICT DO NOTHING` and `RETURNING` (SQLite ≥ 3.35).
"""

from __future__ import annotations

from typing import Any

from peewee import AutoField, Field, Model, Node

from models import db

MAX_PARAMS = 30_000


def insert(
    model: type[Model], rows: list[dict[str, Any]], *, skip_conflicts: bool = False, returning: tuple[Field, ...] = ()
) -> list[tuple]:
    """Insert `rows` (field name to value); with `skip_conflicts` a row a unique index refuses is left
    out. Returns the `returning` columns of the rows written."""
    fields = [field for field in model._meta.sorted_fields if not isinstance(field, AutoField)]
    columns = [(field.name, field.db_value, model._meta.defaults.get(field)) for field in fields]
    per_statement = max(1, MAX_PARAMS // len(fields))
    head = f"INSERT INTO {quoted(model._meta.table_name)} ({', '.join(quoted(f.column_name) for f in fields)}) VALUES "
    tail = (" ON CONFLICT DO NOTHING" if skip_conflicts else "") + (
        f" RETURNING {', '.join(quoted(f.column_name) for f in returning)}" if returning else ""
    )
    one = "(" + ", ".join([db.param] * len(fields)) + ")"
    written: list[tuple] = []
    for start in range(0, len(rows), per_statement):
        part = rows[start : start + per_statement]
        values = [
            convert(row[name] if name in row else (default() if callable(default) else default))
            for row in part
            for name, convert, default in columns
        ]
        if any(isinstance(value, Node) for value in values):  # an expression around a value: SQLite's json()
            params: list[Any] = []
            marks = [placed(value, params) for value in values]
            width = len(fields)
            sql = ", ".join("(" + ", ".join(marks[at : at + width]) + ")" for at in range(0, len(marks), width))
        else:
            params, sql = values, ", ".join([one] * len(part))
        cursor = db.execute_sql(head + sql + tail, params)
        if returning:
            written += [tuple(row) for row in cursor.fetchall()]
    return written


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
