"""Contact imports from CSV: accepted by the API, run by jobs in chunks, resumed by the sweeper.

The request checks what is cheap (UTF-8, the header row, NUL, CSV syntax, the row count), stores the
text as an ImportFile row and the ContactImport row in one transaction, and enqueues the job after
commit. The file lives in the database so that any worker machine can run the job.

All or nothing, unless skip_invalid: the job first checks every row (nothing written); a bad row ends
the import `failed` with its row errors. Then, or at once with skip_invalid (bad rows counted in
`skipped`), it writes IMPORT_CHUNK rows per transaction with a few bulk statements, moving `rows_done`
(the cursor) in the same transaction. A job works for IMPORT_SLICE_SECONDS at most, then enqueues the
rest; a killed worker leaves the cursor of its last chunk, and the sweeper enqueues an import whose
lease lapsed or whose next job never came. Rows are upserted by phone as a SAVE does: a non-empty name
cell replaces the name, groups are added (created if missing), never removed.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from peewee import chunked

from bot import phones, spreadsheet
from bot.contacts import group_key
from bot.pipeline import leases
from bot.pipeline.queue import enqueue_job_after_commit
from models import Account, Contact, ContactImport, Group, GroupMember, ImportFile, db, utcnow

IMPORT_JOB = "bot.imports.run_import"
MAX_ERRORS = 100  # row errors kept on an import
NAME_LENGTH = 100
IN_LIST = 2000  # values per IN list
ROWS_PER_INSERT = 2000  # rows per INSERT: at most 6 columns, below SQLite's 32,766 parameters a statement
UNFINISHED = ("pending", "running")


class CsvFileError(ValueError):
    """A file the import refuses as a whole; `field` names what to fix (`file`, or `phone` for the header)."""

    def __init__(self, message: str, field: str = "file") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Row:
    """A valid CSV row, ready to write: E.164 phone, names (empty: keep the contact's), group names."""

    phone: str
    first_name: str
    last_name: str
    groups: list[str] = field(default_factory=list)


def read_csv(data: bytes) -> tuple[str, int]:
    """The text of an uploaded CSV (BOM removed) and its number of data rows; CsvFileError if unreadable."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFileError(f"the CSV file is not UTF-8 (byte {exc.start}); save it as UTF-8 and try again") from None
    if "\0" in text:
        raise CsvFileError("the CSV file contains NUL characters; is it a CSV file?")
    try:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if not header or "phone" not in header:
            raise CsvFileError("the CSV needs a header row with a phone column", "phone")
        return text, sum(1 for row in reader if row)  # blank lines are no rows (as for DictReader)
    except csv.Error as exc:
        raise CsvFileError(f"the CSV file cannot be read: {exc}") from None


def start(account: Account, text: str, rows_total: int, skip_invalid: bool) -> ContactImport:
    """Store the file and its import in one transaction; the job is enqueued once it commits."""
    with db.atomic():
        job = ContactImport.create(account=account, rows_total=rows_total, skip_invalid=skip_invalid)
        ImportFile.create(contact_import=job, text=text)
        enqueue_job_after_commit(IMPORT_JOB, job.id)
    return job


def rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """The data rows of a CSV with their line numbers (the header is line 1)."""
    reader = csv.DictReader(io.StringIO(text))
    for line in reader:
        yield reader.line_num, line


def parse_row(number: int, line: dict[str, Any], region: str, phone: str = "") -> Row | dict[str, Any]:
    """A row ready to write, or its error `{"row", "field", "message"}`; `phone`: its E.164, known already."""
    try:
        phone = phone or phones.to_e164(line.get("phone") or "", region)
    except phones.PhoneError as exc:
        return {"row": number, "field": "phone", "message": str(exc)}
    cells = {name: spreadsheet.restore(value or "") for name, value in line.items() if isinstance(value, str) and name}
    groups = [part.strip()[:NAME_LENGTH].strip() for part in cells.get("groups", "").split(";")]
    return Row(
        phone,
        cells.get("first_name", "")[:NAME_LENGTH],
        cells.get("last_name", "")[:NAME_LENGTH],
        [name for name in groups if name],
    )


def write_chunk(account_id: int, chunk: list[Row]) -> tuple[int, int]:
    """Upsert a chunk's contacts and add their groups in a few statements; (created, updated) rows.

    The upsert returns each contact's id and created_at: a contact created by this statement has this
    chunk's `now` (an update keeps created_at), which tells created from updated without a SELECT by
    phone (on a table that grew fast, PostgreSQL's stale statistics make that a scan of the account).
    """
    merged: dict[str, Row] = {}
    for row in chunk:
        earlier = merged.get(row.phone)
        if earlier is None:
            merged[row.phone] = Row(row.phone, row.first_name, row.last_name, list(row.groups))
        else:  # the same phone twice in a chunk: one upsert, later names win, groups add up
            earlier.first_name = row.first_name or earlier.first_name
            earlier.last_name = row.last_name or earlier.last_name
            earlier.groups += row.groups
    now = utcnow()
    kept = "CASE WHEN excluded.{0} = '' THEN contact.{0} ELSE excluded.{0} END"
    written = insert_rows(
        Contact,
        [Contact.account, Contact.phone, Contact.first_name, Contact.last_name, Contact.fields, Contact.created_at],
        [(account_id, r.phone, r.first_name, r.last_name, "{}", now) for r in merged.values()],
        "ON CONFLICT (account_id, phone) DO UPDATE SET "
        + ", ".join(f"{name} = {kept.format(name)}" for name in ("first_name", "last_name"))
        + " RETURNING id, phone, created_at",
    )
    contact_ids = {phone: contact_id for contact_id, phone, _ in written}
    created = sum(1 for _, _, created_at in written if str(created_at) == str(now))
    add_groups(account_id, [row for row in merged.values() if row.groups], contact_ids)
    return created, len(chunk) - created


def add_groups(account_id: int, members: list[Row], contact_ids: dict[str, int]) -> None:
    """Create the groups the rows name (first spelling kept) and add the rows' contacts to them."""
    if not members:
        return
    names: dict[str, str] = {}
    for row in members:
        for name in row.groups:
            names.setdefault(group_key(name), name)
    group_ids = ids_by(Group, Group.name_key, account_id, list(names))
    missing = [key for key in names if key not in group_ids]
    now = utcnow()
    group_rows = [(account_id, names[key], key, now) for key in missing]
    insert_rows(
        Group, [Group.account, Group.name, Group.name_key, Group.created_at], group_rows, "ON CONFLICT DO NOTHING"
    )
    group_ids.update(ids_by(Group, Group.name_key, account_id, missing))
    pairs = {(group_ids[group_key(name)], contact_ids[row.phone]) for row in members for name in row.groups}
    memberships = [(group, contact, now) for group, contact in sorted(pairs)]
    fields = [GroupMember.group, GroupMember.contact, GroupMember.added_at]
    insert_rows(GroupMember, fields, memberships, "ON CONFLICT DO NOTHING")


def insert_rows(model: Any, fields: list[Any], values: list[tuple[Any, ...]], rest: str) -> list[tuple[Any, ...]]:
    """Multi-row INSERTs written directly (at 1,000 rows peewee's node per value costs more than the
    database's own work); the rows a RETURNING in `rest` returns. The SQL (double-quoted names, ON
    CONFLICT, RETURNING) is the same on PostgreSQL and SQLite (3.35 or later)."""
    database = db.obj
    columns = ", ".join(f'"{field.column_name}"' for field in fields)
    one = "(" + ", ".join([database.param] * len(fields)) + ")"
    returned: list[tuple[Any, ...]] = []
    for part in chunked(values, ROWS_PER_INSERT):
        placeholders = ", ".join([one] * len(part))
        cursor = database.execute_sql(
            f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES {placeholders} {rest}',
            [value for row in part for value in row],
        )
        if "RETURNING" in rest:
            returned += cursor.fetchall()
    return returned


def ids_by(model: Any, column: Any, account_id: int, values: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in chunked(values, IN_LIST):
        query = model.select(column, model.id).where((model.account == account_id) & column.in_(part))
        found.update(query.tuples().iterator())
    return found


def run_import(import_id: int) -> str:
    """The RQ job: check the rows (once), then write chunks for one slice of time; safe to run twice."""
    with db.connection_context():
        if not leases.claim(ContactImport, import_id, ContactImport.state.in_(UNFINISHED), updated_at=utcnow()):
            return "skipped"
        job = ContactImport.get_by_id(import_id)
        text = ImportFile.get(ImportFile.contact_import == job.id).text
        region = Account.get_by_id(job.account_id).default_region
        checked: list[str] = []
        if job.state == "pending" and (checked := check_rows(job, text, region)) is None:
            return "failed"
        return write_rows(job, text, region, checked)


def check_rows(job: ContactImport, text: str, region: str) -> list[str] | None:
    """All or nothing: a bad row ends the import failed (None), with its errors and nothing written.

    Returns the rows' phones in E.164 (none with skip_invalid: nothing checked), so that the writing pass
    of the same job does not parse them twice.
    """
    errors: list[dict[str, Any]] = []
    checked: list[str] = []
    bad = 0
    if not job.skip_invalid:
        for index, (number, line) in enumerate(rows(text), 1):
            if isinstance(row := parse_row(number, line, region), dict):
                bad += 1
                errors += [row][: MAX_ERRORS - len(errors)]
            else:
                checked.append(row.phone)
            if index % current_app.config["IMPORT_CHUNK"] == 0:
                ContactImport.update(lease_until=leases.lease_end()).where(ContactImport.id == job.id).execute()
    with db.atomic():
        if bad:
            finish(job, "failed", skipped=bad, errors=errors)
            return None
        job.state = "running"
        ContactImport.update(state="running", updated_at=utcnow()).where(ContactImport.id == job.id).execute()
    return checked


def write_rows(job: ContactImport, text: str, region: str, checked: list[str]) -> str:
    """Write chunks after the cursor until the file ends or the slice is spent; `checked`: known phones."""
    size, began = current_app.config["IMPORT_CHUNK"], time.monotonic()
    pending = rows(text)
    for _ in range(job.rows_done):
        next(pending, None)
    while True:
        lines = next_lines(pending, size)
        known = checked[job.rows_done : job.rows_done + len(lines)] or [""] * len(lines)
        batch = [parse_row(number, line, region, phone) for (number, line), phone in zip(lines, known, strict=True)]
        good = [row for row in batch if isinstance(row, Row)]
        bad = [row for row in batch if isinstance(row, dict)]
        with db.atomic():
            created, updated = write_chunk(job.account_id, good)
            job.rows_done += len(batch)
            job.imported, job.updated = job.imported + created, job.updated + updated
            job.skipped += len(bad)
            job.errors = job.errors + bad[: MAX_ERRORS - len(job.errors)]
            if len(batch) < size:
                finish(job, "done")
                return "done"
            spent = time.monotonic() - began > current_app.config["IMPORT_SLICE_SECONDS"]
            job.lease_until, job.updated_at = None if spent else leases.lease_end(), utcnow()
            job.save()
            if spent:  # the rest in a fresh job: RQ's job timeout stays far away
                enqueue_job_after_commit(IMPORT_JOB, job.id)
                return "slice"


def next_lines(lines: Iterator[Any], size: int) -> list[Any]:
    return [line for _, line in zip(range(size), lines, strict=False)]


def finish(job: ContactImport, state: str, **counts: Any) -> None:
    """End the import (in the caller's transaction): its state and counts; the file is no longer needed."""
    for name, value in counts.items():
        setattr(job, name, value)
    job.state, job.lease_until = state, None
    job.finished_at = job.updated_at = utcnow()
    job.save()
    ImportFile.delete().where(ImportFile.contact_import == job.id).execute()


def resume_stalled() -> int:
    """The sweeper's step: enqueue unfinished imports whose lease lapsed or whose next job never started."""
    return leases.resume_stalled(ContactImport, ContactImport.state.in_(UNFINISHED), IMPORT_JOB)
