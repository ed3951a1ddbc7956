"""Contacts and groups, with CSV import and export.

CSV files are UTF-8, with or without a byte-order mark. Text cells that a spreadsheet would run as a
formula are exported with a leading apostrophe and imported without it (bot/spreadsheet.py); the
phone column is validated E.164 and exported as it is.
"""

from __future__ import annotations

import csv
import io

from flask import Response, current_app, g, request
from peewee import JOIN, IntegrityError, fn

from bot import phones, spreadsheet
from bot.api import owned, shapes
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import contact as contact_json
from bot.api.serialize import contacts as contacts_json
from bot.api.serialize import group as group_json
from bot.contacts import add_to_group, group_named
from bot.errors import ApiError
from models import Contact, Group, GroupMember, db

CSV_COLUMNS = ("phone", "first_name", "last_name", "groups")
EXPORT_CHUNK = 500  # contacts per query (and per IN list of their groups)


def e164(raw: str, field: str = "phone") -> str:
    try:
        return phones.to_e164(raw, g.account.default_region)
    except phones.PhoneError as exc:
        raise ApiError(422, "invalid", str(exc), field) from None


def own_contact(contact_id: int) -> Contact:
    return owned(Contact, contact_id, "contact")


def own_group(group_id: int) -> Group:
    return owned(Group, group_id, "group")


def set_groups(contact: Contact, names: list[str]) -> None:
    GroupMember.delete().where(GroupMember.contact == contact).execute()
    for name in names:
        group = group_named(g.account, name)
        assert group is not None
        add_to_group(contact, group)


@route(
    "GET",
    "/contacts",
    role="viewer",
    summary="Contacts, filtered by phone, group or text",
    query={**shapes.PAGING, "phone": {"type": "string"}, "group": {"type": "string"}, "q": {"type": "string"}},
    response=shapes.listing("contacts", shapes.CONTACT),
)
def list_contacts() -> dict:
    query = Contact.select().where(Contact.account == g.account.id)
    if phone := request.args.get("phone"):
        query = query.where(Contact.phone == phone)
    if group_name := request.args.get("group"):
        members = (
            GroupMember.select(GroupMember.contact)
            .join(Group)
            .where((Group.account == g.account.id) & (Group.name_key == group_name.casefold()))
        )
        query = query.where(Contact.id.in_(members))
    if text := request.args.get("q"):
        folded = text.casefold()
        query = query.where(
            fn.LOWER(Contact.first_name).contains(folded)
            | fn.LOWER(Contact.last_name).contains(folded)
            | Contact.phone.contains(text)
        )
    rows, cursor = page(query, Contact.id)
    return {"contacts": contacts_json(rows), "next": cursor}


@route(
    "POST",
    "/contacts",
    role="user",
    summary="Create a contact",
    body=shapes.CONTACT_IN,
    response=shapes.CONTACT,
    status=201,
    idempotent=True,
    location="/contacts/{id}",
)
def create_contact(body: dict) -> tuple[dict, int]:
    phone = e164(body["phone"])
    try:
        with db.atomic():
            row = Contact.create(
                account=g.account.id,
                phone=phone,
                first_name=body.get("first_name", ""),
                last_name=body.get("last_name", ""),
                fields=body.get("fields", {}),
            )
            set_groups(row, body.get("groups", []))
    except IntegrityError:
        raise ApiError(409, "conflict", f"a contact with phone {phone} exists", "phone") from None
    return contact_json(row), 201


@route("GET", "/contacts/<int:contact_id>", role="viewer", summary="A contact", response=shapes.CONTACT)
def get_contact(contact_id: int) -> dict:
    return contact_json(own_contact(contact_id))


@route(
    "PATCH",
    "/contacts/<int:contact_id>",
    role="user",
    summary="Change a contact",
    body=shapes.CONTACT_PATCH,
    response=shapes.CONTACT,
)
def patch_contact(contact_id: int, body: dict) -> dict:
    row = own_contact(contact_id)
    with db.atomic():
        for name in ("first_name", "last_name", "fields"):
            if name in body:
                setattr(row, name, body[name])
        row.save()
        if "groups" in body:
            set_groups(row, body["groups"])
    return contact_json(row)


@route("DELETE", "/contacts/<int:contact_id>", role="user", summary="Delete a contact", status=204)
def delete_contact(contact_id: int) -> tuple[str, int]:
    own_contact(contact_id).delete_instance()
    return "", 204


@route("GET", "/contacts/export", role="viewer", summary="All contacts as CSV", content_type="text/csv")
def export_contacts() -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    everyone = Contact.select().where(Contact.account == g.account.id).order_by(Contact.id)
    for start in range(0, everyone.count(), EXPORT_CHUNK):
        for data in contacts_json(list(everyone.limit(EXPORT_CHUNK).offset(start))):
            texts = (data["first_name"], data["last_name"], ";".join(data["groups"]))
            writer.writerow([data["phone"], *map(spreadsheet.defuse, texts)])
    return Response(
        out.getvalue(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": "attachment; filename=contacts.csv"},
    )


@route(
    "POST",
    "/contacts/import",
    role="user",
    summary="Import contacts from CSV (phone,first_name,last_name,groups)",
    query={"skip_invalid": {"type": "string", "enum": ["true", "false"]}},
    response=shapes.IMPORT_REPORT,
    idempotent=True,
)
def import_contacts() -> dict:
    """Upsert contacts by phone. Any bad row: nothing is imported, unless ?skip_invalid=true."""
    good, errors = [], []
    for number, line in csv_rows(request.get_data()):
        try:
            phone = phones.to_e164(line.get("phone") or "", g.account.default_region)
        except phones.PhoneError as exc:
            errors.append({"row": number, "field": "phone", "message": str(exc)})
            continue
        good.append((phone, {name: spreadsheet.restore(value or "") for name, value in line.items() if name}))
    if errors and request.args.get("skip_invalid") != "true":
        raise_import_errors(errors)
    with db.atomic():
        for phone, line in good:
            row, _ = Contact.get_or_create(account=g.account.id, phone=phone)
            row.first_name = (line.get("first_name") or row.first_name)[:100]
            row.last_name = (line.get("last_name") or row.last_name)[:100]
            row.save()
            for name in filter(None, (part.strip() for part in (line.get("groups") or "").split(";"))):
                group = group_named(g.account, name[:100])
                assert group is not None
                add_to_group(row, group)
    return {"imported": len(good), "skipped": len(errors), "errors": errors}


def csv_rows(data: bytes) -> list[tuple[int, dict[str, str]]]:
    """The rows of an uploaded CSV with their line numbers; 422 naming the file when it cannot be read."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(
            422, "invalid", f"the CSV file is not UTF-8 (byte {exc.start}); save it as UTF-8 and try again", "file"
        ) from None
    if "\0" in text:
        raise ApiError(422, "invalid", "the CSV file contains NUL characters; is it a CSV file?", "file")
    try:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "phone" not in reader.fieldnames:
            raise ApiError(422, "invalid", "the CSV needs a header row with a phone column", "phone")
        return [(reader.line_num, line) for line in reader]
    except csv.Error as exc:
        raise ApiError(422, "invalid", f"the CSV file cannot be read: {exc}", "file") from None


def raise_import_errors(errors: list[dict]) -> None:
    first = errors[0]
    current_app.logger.info("contact import refused: %s bad rows", len(errors))
    raise ApiError(
        422,
        "invalid",
        f"row {first['row']}: {first['message']} ({len(errors)} bad rows; nothing "
        "imported; ?skip_invalid=true imports the good rows)",
        first["field"],
    )


@route(
    "GET",
    "/groups",
    role="viewer",
    summary="Groups with their sizes",
    query=shapes.PAGING,
    response=shapes.listing("groups", shapes.GROUP),
)
def list_groups() -> dict:
    size = fn.COUNT(GroupMember.id).alias("size")
    query = (
        Group.select(Group, size)
        .join(GroupMember, join_type=JOIN.LEFT_OUTER)
        .where(Group.account == g.account.id)
        .group_by(Group.id)
    )
    rows, cursor = page(query, Group.id)
    return {"groups": [group_json(row, row.size) for row in rows], "next": cursor}


@route(
    "POST",
    "/groups",
    role="user",
    summary="Create a group",
    body=shapes.GROUP_IN,
    response=shapes.GROUP,
    status=201,
    idempotent=True,
    location="/groups/{id}",
)
def create_group(body: dict) -> tuple[dict, int]:
    name = body["name"].strip()
    if not name:
        raise ApiError(422, "invalid", "name must not be blank", "name")
    if group_named(g.account, name, create=False):
        raise ApiError(409, "conflict", f"a group named {name!r} exists", "name")
    return group_json(group_named(g.account, name)), 201  # type: ignore[arg-type]


@route("GET", "/groups/<int:group_id>", role="viewer", summary="A group", response=shapes.GROUP)
def get_group(group_id: int) -> dict:
    return group_json(own_group(group_id))


@route(
    "PATCH",
    "/groups/<int:group_id>",
    role="user",
    summary="Rename a group",
    body=shapes.GROUP_IN,
    response=shapes.GROUP,
)
def patch_group(group_id: int, body: dict) -> dict:
    row = own_group(group_id)
    name = body["name"].strip()
    other = group_named(g.account, name, create=False)
    if not name or (other and other.id != row.id):
        raise ApiError(409 if name else 422, "conflict" if name else "invalid", "that name is taken or blank", "name")
    row.name, row.name_key = name, name.casefold()
    row.save()
    return group_json(row)


@route("DELETE", "/groups/<int:group_id>", role="user", summary="Delete a group (its contacts stay)", status=204)
def delete_group(group_id: int) -> tuple[str, int]:
    own_group(group_id).delete_instance()
    return "", 204
