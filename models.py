"""Peewee models: every entity of the product, with its constraints in the schema.

This module imports no app package. `db` is a proxy that the app factory (or a test) initialises with a
real database; constraints live here so that a carrier's retry or two racing workers hit a unique index
instead of writing a duplicate row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Self

from peewee import (
    SQL,
    BigIntegerField,
    BooleanField,
    CharField,
    DatabaseProxy,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    TextField,
)


class BoundDatabase(DatabaseProxy):
    """The models' database, bound at start-up (bot/db.py). peewee's proxy makes savepoints of its own;
    here they are the bound database's, so one that keeps count of its open savepoints sees them."""

    def savepoint(self) -> Any:  # a peewee savepoint context manager
        return self.obj.savepoint()


db = BoundDatabase()


def utcnow() -> datetime:
    """Return the current time in UTC, as a naive datetime (every stored time is UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False
        only_save_dirty = True  # save() writes the changed columns only

    @classmethod
    def holding(cls, data: dict[str, Any]) -> Self:
        """A clean instance holding `data` (field name to Python value) and nothing else, built without
        `__init__`'s defaults: what a row read by hand becomes (bot/prepared.py, bot/cache.py)."""
        instance = cls.__new__(cls)
        instance.__data__, instance._dirty, instance.__rel__ = data, set(), {}
        return instance


class Account(BaseModel):
    name = CharField(unique=True)
    billing_mode = CharField(default="balance")  # "balance" | "invoice"
    balance = BigIntegerField(default=0, constraints=[SQL("CHECK (balance >= 0)")])
    currency = CharField(default="SEK", max_length=3)
    price_per_segment = IntegerField(default=0)
    stop_service_enabled = BooleanField(default=True)
    nanp_campaign = CharField(default="")
    banned_words = JSONField(default=list)
    default_region = CharField(default="SE", max_length=2)
    quiet_hours = JSONField(null=True)  # {"start": "HH:MM", "end": "HH:MM"} in the recipient's time; null: none
    status_callback_url = CharField(default="", max_length=2000)  # every message's status changes POSTed here
    require_two_factor = BooleanField(default=False)  # console users must log in with a TOTP code
    timezone = CharField(default="UTC", max_length=64)  # IANA name: the local time of schedules (bot/schedules.py)
    created_at = DateTimeField(default=utcnow)


class User(BaseModel):
    """A person of one account. The same e-mail may belong to users of several accounts."""

    account = ForeignKeyField(Account, backref="users", on_delete="CASCADE")
    email = CharField()
    password_hash = CharField(default="")
    role = CharField(default="user")  # "admin" | "user" | "viewer"
    active = BooleanField(default=True)
    totp_secret = CharField(default="")  # base32; empty: no two-factor login (bot/totp.py)
    totp_last_step = BigIntegerField(null=True)  # the last code's time step: a code is good once
    recovery_codes = JSONField(default=list)  # SHA-256 of the unused recovery codes
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "email"), True),)


class ApiKey(BaseModel):
    """A business key (account set; role viewer, user or admin) or an operator key (no account)."""

    account = ForeignKeyField(Account, null=True, backref="api_keys", on_delete="CASCADE")
    role = CharField(default="admin")  # viewer | user | admin | operator
    prefix = CharField(unique=True)  # public lookup part of the key
    secret_hash = CharField()
    label = CharField(default="")
    created_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField(null=True)


class Carrier(BaseModel):
    name = CharField(unique=True)  # used in webhook URLs
    kind = CharField()  # a registered adapter kind: generic, twilio, vonage, simulator
    secret = CharField(default="")  # signing secret / auth token
    username = CharField(default="")  # e.g. Twilio account SID
    url = CharField(default="")  # outbound base URL
    mps = IntegerField(default=0)  # submissions per second across all workers (bot/pipeline/governor.py); 0: none
    signature_secret = CharField(default="")  # webhook signing secret where it differs from `secret` (Vonage)
    signature_method = CharField(default="")  # the carrier's signing method, e.g. Vonage md5hash | sha256
    created_at = DateTimeField(default=utcnow)


class VirtualNumber(BaseModel):
    number = CharField(unique=True)  # E.164
    account = ForeignKeyField(Account, backref="numbers", on_delete="CASCADE")
    carrier = ForeignKeyField(Carrier, backref="numbers")
    save_enabled = BooleanField(default=True)
    stop_enabled = BooleanField(default=True)
    help_text = TextField(default="")
    default_reply = TextField(default="")
    email_copy = JSONField(default=list)
    forward_url = CharField(default="")


class Keyword(BaseModel):
    """A custom command on one virtual number; `word` and `aliases` are stored case-folded."""

    number = ForeignKeyField(VirtualNumber, backref="keywords", on_delete="CASCADE")
    word = CharField()
    aliases = JSONField(default=list)
    action = CharField()  # reply | subscribe | unsubscribe | forward | flow
    reply = TextField(default="")
    group_name = CharField(default="")
    url = CharField(default="")
    flow = JSONField(default=dict)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("number", "word"), True),)


class Contact(BaseModel):
    account = ForeignKeyField(Account, backref="contacts", on_delete="CASCADE")
    phone = CharField()
    first_name = CharField(default="")
    last_name = CharField(default="")
    fields = JSONField(default=dict)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "phone"), True),)


class Group(BaseModel):
    """A contact group; `name_key` is the case-folded name that makes names unique per account."""

    account = ForeignKeyField(Account, backref="groups", on_delete="CASCADE")
    name = CharField()
    name_key = CharField()
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "name_key"), True),)


class GroupMember(BaseModel):
    group = ForeignKeyField(Group, backref="members", on_delete="CASCADE")
    contact = ForeignKeyField(Contact, backref="memberships", on_delete="CASCADE")
    added_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("group", "contact"), True),)


class BlockEntry(BaseModel):
    """A phone opted out of everything (`topic` "") or of one topic of the account (bot/consent.py)."""

    account = ForeignKeyField(Account, backref="block_entries", on_delete="CASCADE")
    phone = CharField()
    source = CharField(default="keyword")  # keyword | link | api | manual | carrier | import
    topic = CharField(default="")  # a Topic's name; "" (not NULL, so the unique index holds): everything
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "phone", "topic"), True),)


class Topic(BaseModel):
    """A kind of message an account sends (e.g. `offers`) that a phone may opt out of alone.

    `name` and `words` (the topic's own opt-out words) are stored folded: lower case, no accents.
    """

    account = ForeignKeyField(Account, backref="topics", on_delete="CASCADE")
    name = CharField(max_length=32)
    words = JSONField(default=list)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "name"), True),)


class InboundMessage(BaseModel):
    carrier = ForeignKeyField(Carrier, backref="inbound")
    carrier_message_id = CharField()
    sender = CharField()  # E.164, or the raw short code / alphanumeric sender
    recipient = CharField()
    body = TextField(default="")
    received_at = DateTimeField(default=utcnow)
    number = ForeignKeyField(VirtualNumber, null=True, backref="inbound", on_delete="SET NULL")
    keyword = CharField(default="")
    action = CharField(default="")
    outcome = CharField(default="")

    class Meta:
        indexes = ((("carrier", "carrier_message_id"), True), (("number", "received_at"), False))


class ConsentEvent(BaseModel):
    """The consent ledger: one append-only row per opt-out or opt-in, written with the block-list change.

    `topic` NULL is everything; `text` and `inbound` are the phone's own message for keyword sources;
    `actor` names the user or API key for business changes. Kept by the GDPR erase (bot/privacy.py).
    """

    account = ForeignKeyField(Account, backref="consent_events", on_delete="CASCADE")
    phone = CharField()
    kind = CharField()  # opt_out | opt_in
    topic = CharField(null=True)
    source = CharField()  # keyword | link | carrier | business | import
    text = TextField(default="")
    inbound = ForeignKeyField(InboundMessage, null=True, backref="consent_events", on_delete="SET NULL")
    actor = CharField(default="")  # "user:<email>" | "key:<prefix>"
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "phone"), False),)


class InboundPart(BaseModel):
    """One part of a concatenated inbound SMS, kept until every part has arrived (bot/pipeline/concat.py).

    An assembled part is kept (with `assembled_at`) until it expires, so a carrier's late retry of it is
    recognised by its own id instead of starting a new message.
    """

    carrier = ForeignKeyField(Carrier, on_delete="CASCADE")
    sender = CharField()
    reference = CharField()
    part = IntegerField()
    total = IntegerField()
    carrier_message_id = CharField()
    body = TextField(default="")
    received_at = DateTimeField(default=utcnow)
    assembled_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("carrier", "carrier_message_id"), True), (("carrier", "sender", "reference"), False))


class OutboundMessage(BaseModel):
    account = ForeignKeyField(Account, backref="outbound", on_delete="CASCADE")
    sender = CharField()
    recipient = CharField()
    body = TextField(default="")
    encoding = CharField(default="GSM-7")
    segments = IntegerField(default=0)
    price = BigIntegerField(default=0)
    status = IntegerField(default=101, index=True)
    reply_to = ForeignKeyField(InboundMessage, null=True, backref="replies", on_delete="SET NULL")
    carrier = ForeignKeyField(Carrier, null=True, backref="outbound", index=False)  # (carrier, upstream_id) serves
    upstream_id = CharField(null=True)
    send_at = DateTimeField(null=True)
    validity_minutes = IntegerField(default=72 * 60)
    expires_at = DateTimeField(null=True)
    lease_until = DateTimeField(null=True)  # a sending claim; NULL = free to (re)claim
    batch = CharField(null=True)  # a group send's id: (batch, recipient) is unique, so a re-run fan-out skips
    attempts = IntegerField(default=0)
    # Set while a submission may have reached the carrier without our knowing its answer (bot/pipeline/handoff.py).
    unconfirmed_since = DateTimeField(null=True)
    status_callback = CharField(null=True, max_length=2000)  # where its status changes go (bot/callbacks.py)
    callback_cursor = BigIntegerField(default=0)  # the last event delivered to status_callback
    created_at = DateTimeField(default=utcnow, index=True)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("carrier", "upstream_id"), True),
            (("recipient", "sender", "created_at"), False),
            (("batch", "recipient"), True),
        )


class MessageEvent(BaseModel):
    """One step of a message's history. A repeated (code, detail) is the same event: stored once."""

    # Indexed by (message, code, detail) below: an index of its own would only cost every insert.
    message = ForeignKeyField(OutboundMessage, backref="events", on_delete="CASCADE", index=False)
    code = IntegerField()
    at = DateTimeField(default=utcnow)
    detail = CharField(default="")
    source = CharField(default="pipeline")  # pipeline | carrier | sweeper | api

    class Meta:
        indexes = ((("message", "code", "detail"), True),)


class PendingReport(BaseModel):
    """A delivery report for an upstream id we do not know yet; applied once the id is known."""

    carrier = ForeignKeyField(Carrier, on_delete="CASCADE")
    upstream_id = CharField()
    code = IntegerField()
    detail = CharField(default="")
    opt_out = BooleanField(default=False)  # the carrier says the recipient opted out (StatusReport.opt_out)
    received_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("carrier", "upstream_id", "code", "detail"), True),)


class LedgerEntry(BaseModel):
    """Money moved on an account, in minor units. One debit, one refund, one invoice line per message."""

    account = ForeignKeyField(Account, backref="ledger", on_delete="CASCADE")
    kind = CharField()  # topup | debit | refund | invoice
    amount = BigIntegerField()
    # indexed by the unique (message, kind) below, which it leads: a second index only cost every insert
    message = ForeignKeyField(OutboundMessage, null=True, backref="ledger", on_delete="SET NULL", index=False)
    reference = CharField(default="")  # a top-up's payment reference, given by the operator
    at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("message", "kind"), True),)


class UserToken(BaseModel):
    """A one-time link for a user: an invite to set a password, or a password reset. Stored hashed."""

    user = ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    purpose = CharField()  # invite | reset
    token_hash = CharField(unique=True)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)


class Conversation(BaseModel):
    """A multi-step conversation (flow or survey) of one phone with one virtual number.

    `active_key` is "<number id>:<phone>" while the conversation runs and NULL once it ends, so the
    unique index allows one active conversation per phone and number and any number of ended ones.
    """

    number = ForeignKeyField(VirtualNumber, backref="conversations", on_delete="CASCADE")
    keyword = ForeignKeyField(Keyword, null=True, backref="conversations", on_delete="SET NULL")
    phone = CharField()
    active_key = CharField(null=True, unique=True)
    step = CharField(default="")
    answers = JSONField(default=dict)
    retries = IntegerField(default=0)
    started_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    ended_at = DateTimeField(null=True)
    outcome = CharField(default="")  # completed | failed | stopped | expired | replaced | cancelled


class TrackedLink(BaseModel):
    """A URL of a sent message replaced by a short link of ours, one per recipient; counts its clicks."""

    code = CharField(unique=True)
    account = ForeignKeyField(Account, backref="links", on_delete="CASCADE")
    message = ForeignKeyField(OutboundMessage, null=True, backref="links", on_delete="CASCADE")
    batch = CharField(null=True, index=True)
    url = TextField()
    clicks = IntegerField(default=0)
    first_clicked_at = DateTimeField(null=True)
    last_clicked_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)


class InboxRead(BaseModel):
    """A console user's read marker in one conversation: the newest inbound id they have seen."""

    user = ForeignKeyField(User, backref="inbox_reads", on_delete="CASCADE")
    number = ForeignKeyField(VirtualNumber, backref="inbox_reads", on_delete="CASCADE")
    phone = CharField()
    last_read = BigIntegerField(default=0)

    class Meta:
        indexes = ((("user", "number", "phone"), True),)


class IdempotentRequest(BaseModel):
    """The first answer to a POST sent with an `Idempotency-Key`, replayed to retries for 24 hours.

    `scope` is "account:<id>" for business keys and "operator:<api key id>" for operator keys; the row is
    claimed (inserted) in the request's own transaction, so a concurrent retry waits on the unique index.
    """

    scope = CharField()
    key = CharField(max_length=255)
    fingerprint = CharField()  # SHA-256 of method, path, query and body
    status = IntegerField(default=0)
    response = TextField(default="")
    location = TextField(default="")
    created_at = DateTimeField(default=utcnow, index=True)

    class Meta:
        indexes = ((("scope", "key"), True),)


class Batch(BaseModel):
    """A group send, written when the request is accepted; fanned out in chunks that advance `cursor`.

    `cursor` is the last contact id accepted, moved in the same transaction as its chunk's messages, so a
    fan-out killed mid-way resumes where it stopped. `lease_until` is a running chunk's claim.
    """

    id = CharField(primary_key=True)  # the API's batch id; OutboundMessage.batch holds it
    account = ForeignKeyField(Account, backref="batches", on_delete="CASCADE")
    group = ForeignKeyField(Group, null=True, backref="batches", on_delete="SET NULL")
    sender = CharField()
    text = TextField()
    send_at = DateTimeField(null=True)
    validity_minutes = IntegerField(null=True)
    status_callback = CharField(null=True, max_length=2000)
    track_links = BooleanField(default=False)
    topic = CharField(null=True)  # the send's topic (bot/consent.py): opted-out members are refused 405
    recipients = IntegerField(default=0)  # members when accepted
    cursor = BigIntegerField(default=0)
    state = CharField(default="pending", index=True)  # pending | done
    lease_until = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    done_at = DateTimeField(null=True)


class Effect(BaseModel):
    """The outbox: one side effect of a stored cause (forward, e-mail copy, …), written in the cause's
    transaction and done by a job; the row, not the job, says whether it is due (bot/outbox.py)."""

    kind = CharField()  # a registered kind (bot/effects.py)
    inbound = ForeignKeyField(InboundMessage, null=True, backref="effects", on_delete="CASCADE")
    message = ForeignKeyField(OutboundMessage, null=True, backref="effects", on_delete="CASCADE")
    payload = JSONField(default=dict)  # the kind's own arguments
    state = CharField(default="pending")  # pending | done | failed
    attempts = IntegerField(default=0)
    due_at = DateTimeField(default=utcnow)  # the next try
    lease_until = DateTimeField(null=True)  # a running try's claim
    last_error = CharField(default="")
    tries = JSONField(default=list)  # each try: at, outcome, and the other side's HTTP status and answer
    created_at = DateTimeField(default=utcnow)
    done_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("state", "due_at"), False),)


class ContactImport(BaseModel):
    """A CSV import of contacts, accepted by the API and run by jobs in chunks (bot/imports.py).

    `rows_done` is the cursor: the data rows written (or skipped) so far, moved in the same transaction
    as its chunk, so an import whose worker died resumes after its last committed chunk. `lease_until`
    is a running job's claim. The file itself is an ImportFile row, deleted when the import ends.
    """

    account = ForeignKeyField(Account, backref="imports", on_delete="CASCADE")
    state = CharField(default="pending", index=True)  # pending | running | done | failed
    skip_invalid = BooleanField(default=False)
    rows_total = IntegerField(default=0)
    rows_done = IntegerField(default=0)
    imported = IntegerField(default=0)  # contacts created
    updated = IntegerField(default=0)  # rows that updated a contact (also a phone repeated in the file)
    skipped = IntegerField(default=0)  # invalid rows
    errors = JSONField(default=list)  # the first row errors: {"row", "field", "message"}
    lease_until = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    finished_at = DateTimeField(null=True)


class ImportFile(BaseModel):
    """The CSV text of an import while it runs: in the database, so any worker machine can read it."""

    contact_import = ForeignKeyField(ContactImport, unique=True, backref="files", on_delete="CASCADE")
    text = TextField()


class Schedule(BaseModel):
    """A recurring send of a text to a group (bot/schedules.py); each run is a Batch.

    Times of day, days and dates are the account's local ones; `next_run_at` (UTC, NULL once the schedule
    has ended) is moved forward by the conditional UPDATE that claims a run, in the run's transaction.
    """

    account = ForeignKeyField(Account, backref="schedules", on_delete="CASCADE")
    group = ForeignKeyField(Group, null=True, backref="schedules", on_delete="SET NULL")
    sender = CharField()
    text = TextField()
    frequency = CharField()  # daily | weekly | monthly
    days = JSONField(default=list)  # weekly: "mon" … "sun"
    day_of_month = IntegerField(null=True)  # monthly: 1-31, past a month's end its last day
    time_of_day = CharField()  # "HH:MM", local
    start_date = DateField()  # local dates, both included
    end_date = DateField(null=True)
    count = IntegerField(null=True)  # runs in all; NULL: no limit
    runs = IntegerField(default=0)
    next_run_at = DateTimeField(null=True, index=True)
    last_run_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)


class ScheduleRun(BaseModel):
    """One run of a schedule: the slot it was due at, when it ran, and its batch (or why there is none)."""

    schedule = ForeignKeyField(Schedule, backref="run_rows", on_delete="CASCADE")
    due_at = DateTimeField()
    ran_at = DateTimeField()
    batch = CharField(null=True)
    error = CharField(default="")


class AuditEntry(BaseModel):
    """One change a user, an API key, the operator or the CLI made (bot/audit.py). Append-only: nothing
    updates or deletes a row, except a GDPR erase, which masks its phone in the rows that name it.

    `actor_id` is no foreign key, so the proof outlives the user or key; `before` and `after` hold the
    changed fields only, with secrets masked.
    """

    account = ForeignKeyField(Account, null=True, backref="audit_entries", on_delete="CASCADE")
    at = DateTimeField(default=utcnow)
    actor_type = CharField()  # user | apikey | operator | cli
    actor_id = BigIntegerField(null=True)
    actor = CharField(default="")  # the user's e-mail, the key's prefix, or "cli"
    address = CharField(default="")  # the request's remote address, or "cli"
    action = CharField(index=True)  # e.g. keyword.update
    target_type = CharField()
    target_id = CharField(default="")
    target_name = CharField(default="")  # what the target was called then (a keyword's word, a user's e-mail)
    before = JSONField(null=True)
    after = JSONField(null=True)
    phone = CharField(null=True)  # the phone a row is about (block list, erase): what an erase masks

    class Meta:
        indexes = ((("account", "phone"), False),)


class SchemaVersion(BaseModel):
    version = IntegerField(primary_key=True)
    applied_at = DateTimeField(default=utcnow)


ALL_MODELS: list[type[BaseModel]] = [
    Account,
    User,
    ApiKey,
    Carrier,
    VirtualNumber,
    Keyword,
    Contact,
    Group,
    GroupMember,
    BlockEntry,
    Topic,
    InboundMessage,
    ConsentEvent,
    InboundPart,
    OutboundMessage,
    MessageEvent,
    PendingReport,
    LedgerEntry,
    UserToken,
    Conversation,
    InboxRead,
    TrackedLink,
    IdempotentRequest,
    Batch,
    Effect,
    ContactImport,
    ImportFile,
    Schedule,
    ScheduleRun,
    AuditEntry,
]
