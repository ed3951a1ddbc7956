"""Contacts and groups: the services SAVE and the subscribe keywords use.

Racing writers (two SAVEs from one new phone) meet a unique index, not a duplicate: each insert runs in
a savepoint, and on IntegrityError the row the other writer created is fetched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from peewee import IntegrityError

from models import Account, Contact, Group, GroupMember, db

T = TypeVar("T")


def create_or_get(create: Callable[[], T], get: Callable[[], T]) -> T:
    try:
        with db.atomic():
            return create()
    except IntegrityError:
        return get()


def contact_for(account: Account, phone: str) -> Contact:
    """The account's contact for a phone, created with just the phone if missing."""
    found = Contact.get_or_none((Contact.account == account) & (Contact.phone == phone))
    return found or create_or_get(
        lambda: Contact.create(account=account, phone=phone),
        lambda: Contact.get((Contact.account == account) & (Contact.phone == phone)),
    )


def save_contact(account: Account, phone: str, first_name: str, last_name: str = "") -> Contact:
    """Upsert a contact by phone: names are updated, groups and fields kept."""
    contact = contact_for(account, phone)
    contact.first_name, contact.last_name = first_name, last_name
    contact.save()
    return contact


def group_key(name: str) -> str:
    """What makes group names the same: case-insensitive, surrounding blanks ignored."""
    return name.strip().casefold()


def group_named(account: Account, name: str, *, create: bool = True) -> Group | None:
    """The account's group of that name, matched case-insensitively; the first spelling is kept."""
    key = group_key(name)
    found = Group.get_or_none((Group.account == account) & (Group.name_key == key))
    if found or not create:
        return found
    return create_or_get(
        lambda: Group.create(account=account, name=name.strip(), name_key=key),
        lambda: Group.get((Group.account == account) & (Group.name_key == key)),
    )


def add_to_group(contact: Contact, group: Group) -> bool:
    """Add a contact to a group; False when it was a member already."""
    try:
        with db.atomic():
            GroupMember.create(group=group, contact=contact)
    except IntegrityError:
        return False
    return True


def remove_from_group(contact: Contact, group: Group) -> bool:
    return bool(GroupMember.delete().where((GroupMember.group == group) & (GroupMember.contact == contact)).execute())
