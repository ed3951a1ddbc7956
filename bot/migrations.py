"""Versioned schema migrations behind `smsbot db upgrade` (safe to run twice).

Each migration is a function of the database, applied once in version order and recorded in
SchemaVersion. Migration 1 creates the initial tables from the models; later ones change the schema with
`playhouse.migrate` and must check what exists first, since a fresh database gets every table from 1.
"""

from __future__ import annotations

from collections.abc import Callable

from peewee import CharField, Database
from playhouse.migrate import SchemaMigrator, migrate

from models import ALL_MODELS, Batch, Conversation, Effect, SchemaVersion, UserToken, db

Migration = Callable[[Database], None]


def initial_schema(database: Database) -> None:
    database.create_tables(ALL_MODELS, safe=True)


def tokens_and_conversations(database: Database) -> None:
    database.create_tables([UserToken, Conversation], safe=True)


def outbound_batches(database: Database) -> None:
    if "batch" in {column.name for column in database.get_columns("outbound_message")}:
        return
    migrator = SchemaMigrator.from_database(database)
    migrate(
        migrator.add_column("outbound_message", "batch", CharField(null=True)),
        migrator.add_index("outbound_message", ("batch", "recipient"), True),
    )


def outbox_and_batches(database: Database) -> None:
    database.create_tables([Batch, Effect], safe=True)


MIGRATIONS: list[tuple[int, Migration]] = [
    (1, initial_schema),
    (2, tokens_and_conversations),
    (3, outbound_batches),
    (7, outbox_and_batches),
]


def upgrade() -> list[int]:
    """Apply every pending migration, each in its own transaction; return the versions applied."""
    database = db.obj
    with database.connection_context():
        database.create_tables([SchemaVersion], safe=True)
        done = {row.version for row in SchemaVersion.select()}
        applied = []
        for version, migration in MIGRATIONS:
            if version in done:
                continue
            with database.atomic():
                migration(database)
                SchemaVersion.create(version=version)
            applied.append(version)
    return applied


def current_version() -> int:
    return SchemaVersion.select().order_by(SchemaVersion.version.desc()).scalar() or 0
