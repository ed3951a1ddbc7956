"""Contacts and groups, with CSV import and export.

CSV files are UTF-8, with or without a byte-order mark; an import runs as a job (bot/imports.py).
Text cells that a spreadsheet would run as a formula are exported with a leading apostrophe and
imported without it (bot/spreadsheet.py); the phone column is validated E.164 and exported as it is.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, current_app, g, request
from peewee import JOIN, IntegrityError, ModelSelect, fn

from bot import imports, phones, spreadsheet
from bot.api import owned, shapes
from bot.api.imports import import_json
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import contact as contact_json
from bot.api.serialize import contacts as contacts_json
from bot.api.serialize import group as group_json
from bot.contacts import add_to_group, group_named
from bot.errors import ApiError
from models import Contact, Group, GroupMember, db

CSV_COLUMNS = ("phone", "first_name", "last_name", "groups")


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
    everyone = Contact.select().where(Contact.account == g.account.id).order_by(Contact.id)
    return spreadsheet.attachment("contacts.csv", CSV_COLUMNS, contact_rows(everyone))


def contact_rows(contacts: ModelSelect) -> Iterator[list[str]]:
    for chunk in spreadsheet.in_chunks(contacts):  # the chunk's groups in one query
        for data in contacts_json(chunk):
            texts = (data["first_name"], data["last_name"], ";".join(data["groups"]))
            yield [data["phone"], *map(spreadsheet.defuse, texts)]


@route(
    "POST",
    "/contacts/import",
    role="user",
    summary="Import contacts from CSV (phone,first_name,last_name,groups; up to MAX_IMPORT_BYTES) as a job",
    query={"skip_invalid": {"type": "string", "enum": ["true", "false"]}},
    response=shapes.IMPORT,
    status=202,
    idempotent=True,
    location="/imports/{id}",
)
def import_contacts() -> tuple[dict, int]:
    """Upsert contacts by phone, in a job (bot/imports.py). Any bad row: nothing is imported, unless
    ?skip_invalid=true. The file is checked as a whole here (422 naming `file`); its rows by the job."""
    try:
        text, total = imports.read_csv(request.get_data())
    except imports.CsvFileError as exc:
        raise ApiError(422, "invalid", str(exc), exc.field) from None
    row = imports.start(g.account, text, total, skip_invalid=request.args.get("skip_invalid") == "true")
    current_app.logger.info("contact import %s accepted: %s rows", row.id, total)
    return import_json(row), 202


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
