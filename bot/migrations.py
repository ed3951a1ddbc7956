"""Versioned schema migrations behind `smsbot db upgrade` (safe to run twice).

Each migration is a function of the database, applied once in version order and recorded in
SchemaVersion. Migration 1 creates the initial tables from the models; later ones change the schema with
`playhouse.migrate` and must check what exists first, since a fresh database gets every table from 1.
"""

from __future__ import annotations

from collections.abc import Callable

from peewee import BigIntegerField, BooleanField, CharField, Database, DateTimeField, Field, IntegerField, JSONField
from playhouse.migrate import SchemaMigrator, migrate

from models import (
    ALL_MODELS,
    AuditEntry,
    Batch,
    ConsentEvent,
    ContactImport,
    Conversation,
    Effect,
    IdempotentRequest,
    ImportFile,
    InboxRead,
    Schedule,
    ScheduleRun,
    SchemaVersion,
    Topic,
    TrackedLink,
    UserToken,
    db,
)

Migration = Callable[[Database], None]


def add_missing_columns(database: Database, table: str, **columns: Field) -> None:
    """Add the columns a table lacks (a fresh database has them all from migration 1)."""
    present = {column.name for column in database.get_columns(table)}
    missing = [(name, field) for name, field in columns.items() if name not in present]
    if missing:
        migrator = SchemaMigrator.from_database(database)
        migrate(*(migrator.add_column(table, name, field) for name, field in missing))


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


def operators_and_idempotency(database: Database) -> None:
    """Operator keys (no account), e-mails unique per account, top-up references, idempotent requests."""
    migrator = SchemaMigrator.from_database(database)
    key_account = next(c for c in database.get_columns("api_key") if c.name == "account_id")
    if not key_account.null:
        migrate(migrator.drop_not_null("api_key", "account_id"))
    user_indexes = {tuple(index.columns): index for index in database.get_indexes("user")}
    if ("email",) in user_indexes:
        migrate(migrator.drop_index("user", user_indexes[("email",)].name))
    if ("account_id", "email") not in user_indexes:
        migrate(migrator.add_index("user", ("account_id", "email"), True))
    if "reference" not in {column.name for column in database.get_columns("ledger_entry")}:
        migrate(migrator.add_column("ledger_entry", "reference", CharField(default="")))
    database.create_tables([IdempotentRequest], safe=True)


def carrier_trust(database: Database) -> None:
    """Signature secret and method per carrier, opt-out flag on early reports, multipart parts keyed by id.

    A Vonage carrier used `secret` for both the API and webhook signatures: it keeps that secret (md5hash)
    for webhooks until the operator sets its own signature secret.
    """
    migrator = SchemaMigrator.from_database(database)
    carrier = {column.name for column in database.get_columns("carrier")}
    if "signature_secret" not in carrier:
        migrate(
            migrator.add_column("carrier", "signature_secret", CharField(default="")),
            migrator.add_column("carrier", "signature_method", CharField(default="")),
        )
        database.execute_sql(
            "UPDATE carrier SET signature_secret = secret, signature_method = 'md5hash' WHERE kind = 'vonage'"
        )
    if "opt_out" not in {column.name for column in database.get_columns("pending_report")}:
        migrate(migrator.add_column("pending_report", "opt_out", BooleanField(default=False)))
    if "assembled_at" not in {column.name for column in database.get_columns("inbound_part")}:
        migrate(migrator.add_column("inbound_part", "assembled_at", DateTimeField(null=True)))
    indexes = {index.name for index in database.get_indexes("inbound_part")}
    if "inbound_part_carrier_id_sender_reference_part" in indexes:
        migrate(migrator.drop_index("inbound_part", "inbound_part_carrier_id_sender_reference_part"))
    if "inbound_part_carrier_id_carrier_message_id" not in indexes:
        migrate(
            migrator.add_index("inbound_part", ("carrier_id", "carrier_message_id"), True),
            migrator.add_index("inbound_part", ("carrier_id", "sender", "reference"), False),
        )


def tracked_links(database: Database) -> None:
    database.create_tables([TrackedLink], safe=True)


def unconfirmed_hand_off(database: Database) -> None:
    add_missing_columns(database, "outbound_message", unconfirmed_since=DateTimeField(null=True))


def inbox_read_markers(database: Database) -> None:
    database.create_tables([InboxRead], safe=True)


def account_quiet_hours(database: Database) -> None:
    add_missing_columns(database, "account", quiet_hours=JSONField(null=True))


def carrier_pacing(database: Database) -> None:
    add_missing_columns(database, "carrier", mps=IntegerField(default=0))


def outbox_and_batches(database: Database) -> None:
    database.create_tables([Batch, Effect], safe=True)


def contact_imports(database: Database) -> None:
    database.create_tables([ContactImport, ImportFile], safe=True)


def status_callbacks(database: Database) -> None:
    add_missing_columns(database, "account", status_callback_url=CharField(default="", max_length=2000))
    add_missing_columns(
        database,
        "outbound_message",
        status_callback=CharField(null=True, max_length=2000),
        callback_cursor=BigIntegerField(default=0),
    )
    add_missing_columns(database, "batch", status_callback=CharField(null=True, max_length=2000))


def effect_tries(database: Database) -> None:
    add_missing_columns(database, "effect", tries=JSONField(default=list))


def two_factor(database: Database) -> None:
    add_missing_columns(database, "account", require_two_factor=BooleanField(default=False))
    add_missing_columns(
        database,
        "user",
        totp_secret=CharField(default=""),
        totp_last_step=BigIntegerField(null=True),
        recovery_codes=JSONField(default=list),
    )


def batch_tracked_links(database: Database) -> None:
    add_missing_columns(database, "batch", track_links=BooleanField(default=False))


def schedules(database: Database) -> None:
    """Recurring sends, and the account's time zone they are judged in."""
    add_missing_columns(database, "account", timezone=CharField(default="UTC", max_length=64))
    database.create_tables([Schedule, ScheduleRun], safe=True)


def consent_ledger(database: Database) -> None:
    """Topics, the consent ledger, a topic per block entry (unique per account, phone and topic) and per batch."""
    database.create_tables([Topic, ConsentEvent], safe=True)
    add_missing_columns(database, "block_entry", topic=CharField(default=""))
    add_missing_columns(database, "batch", topic=CharField(null=True))
    indexes = {tuple(index.columns): index.name for index in database.get_indexes("block_entry")}
    migrator = SchemaMigrator.from_database(database)
    if ("account_id", "phone") in indexes:
        migrate(migrator.drop_index("block_entry", indexes[("account_id", "phone")]))
    if ("account_id", "phone", "topic") not in indexes:
        migrate(migrator.add_index("block_entry", ("account_id", "phone", "topic"), True))


def audit_log(database: Database) -> None:
    database.create_tables([AuditEntry], safe=True)


def redundant_indexes(database: Database) -> None:
    """Drop the indexes whose column leads a unique index already: the event's message (message, code,
    detail) and the message's carrier (carrier, upstream_id). Every event insert and every message
    insert kept them up to date for lookups the other index serves."""
    for name in ("message_event_message_id", "outbound_message_carrier_id"):
        database.execute_sql(f'DROP INDEX IF EXISTS "{name}"')


def redundant_ledger_index(database: Database) -> None:
    """Drop the ledger's index on its message, which leads the unique (message, kind) index: one more
    index kept up to date by each of a group send's ten thousand debit lines, for lookups the other serves."""
    database.execute_sql('DROP INDEX IF EXISTS "ledger_entry_message_id"')


MIGRATIONS: list[tuple[int, Migration]] = [
    (1, initial_schema),
    (2, tokens_and_conversations),
    (3, outbound_batches),
    (4, operators_and_idempotency),
    (5, carrier_trust),
    (7, outbox_and_batches),
    (8, inbox_read_markers),
    (9, unconfirmed_hand_off),
    (10, tracked_links),
    (11, account_quiet_hours),
    (12, carrier_pacing),
    (14, contact_imports),
    (15, status_callbacks),
    (16, batch_tracked_links),
    (17, effect_tries),
    (18, two_factor),
    (19, consent_ledger),
    (20, schedules),
    (21, audit_log),
    (22, redundant_indexes),
    (23, redundant_ledger_index),
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
