"""Hot statements whose SQL peewee builds once per database instead of once per webhook.

Building the SQL of a query costs peewee more CPU than the database spends running a short statement.
A `Prepared` statement asks peewee for the SQL on its first use and keeps it; later uses only convert the
values (each field's `db_value`, as peewee does) and run the kept SQL. The first use also checks that the
parameters it computed are the ones peewee put in the SQL, in the same order, so a change to the query or
the model fails at once instead of writing values into the wrong columns.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from peewee import Database, Field, Query

from models import BaseModel, db

M = TypeVar("M", bound=BaseModel)


class Prepared:
    """`build(*values)` must put the values in the SQL in the order of `fields` (checked on first use)."""

    def __init__(self, build: Callable[..., Query], fields: Sequence[Field]) -> None:
        self.build = build
        self.fields = tuple(fields)
        self.sql: weakref.WeakKeyDictionary[Database, str] = weakref.WeakKeyDictionary()

    def statement(self, *values: Any) -> tuple[str, list[Any]]:
        """The SQL and its parameters for `values`."""
        database = db.obj
        params = [field.db_value(value) for field, value in zip(self.fields, values, strict=True)]
        sql = self.sql.get(database)
        if sql is None:
            sql, built = database.get_sql_context().sql(self.build(*values)).query()
            if list(built) != params:
                raise RuntimeError(f"prepared statement parameters {built!r} differ from {params!r}: {sql}")
            self.sql[database] = sql
        return sql, params

    def execute(self, *values: Any) -> Any:
        """Run the statement with `values`; returns the driver's cursor."""
        return db.obj.execute_sql(*self.statement(*values))

    def first(self, model: type[M], *values: Any) -> M | None:
        """The first row of a SELECT of `model`'s columns, as a clean model instance, each value converted
        by its field as peewee would (its own row wrappers cost a delivery report a twentieth of its CPU)."""
        cursor = self.execute(*values)
        row = cursor.fetchone()
        if row is None:
            return None
        fields = [model._meta.columns[column[0]] for column in cursor.description]
        return model.holding({field.name: field.python_value(value) for field, value in zip(fields, row, strict=True)})
