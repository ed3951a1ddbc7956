"""Text templates written by a business: keyword replies, default replies, help texts and flow texts.

A template holds only bare placeholders of the names its place allows (`{first_name}`, `{last_name}`,
`{phone}`, `{args}`; flows their own names) and literal braces written twice (`{{` is `{`, `}}` is `}`).
A format spec (`{phone:>9}`), a conversion (`{phone!r}`), an attribute (`{phone.x}`), an index
(`{phone[0]}`), an unknown name or a lone brace is refused when the template is saved.

Rendering never uses `str.format`: it substitutes the allowed names and nothing else, so a template
stored before these rules (or edited in the database) can neither reach Python objects nor grow a
padded value; anything it does not understand is sent as typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from models import Account, Contact

REPLY_NAMES = frozenset({"first_name", "last_name", "phone", "args"})
TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class TemplateError(ValueError):
    """A template that breaks the rules; `field` names where it was given."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def placeholders(names: Iterable[str]) -> str:
    return ", ".join("{" + name + "}" for name in sorted(names))


def check(template: str, allowed: Iterable[str], field: str) -> None:
    """Raise TemplateError naming `field` unless every brace is a bare allowed name or a doubled brace."""
    names = frozenset(allowed)
    for token in TOKEN.finditer(template):
        text, name = token.group(), token.group(1)
        if text in ("{{", "}}"):
            continue
        if name is None:
            raise TemplateError(f"{field}: a lone {text!r}; write {text * 2} for a literal brace", field)
        if name not in names:
            what = "unknown placeholder" if re.fullmatch(r"\w+", name) else "only bare placeholders are allowed, not"
            raise TemplateError(f"{field}: {what} {text}; use {placeholders(names)}", field)


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute the known names; `{{`/`}}` become single braces; everything else stays as typed."""

    def fill(token: re.Match[str]) -> str:
        text, name = token.group(), token.group(1)
        if text in ("{{", "}}"):
            return text[0]
        if name is not None and name in values:
            return str(values[name])
        return text

    return TOKEN.sub(fill, template)


CONTACT_NAMES = frozenset({"first_name", "last_name"})


def uses_contact(template: str) -> bool:
    """Whether the template names a field of the sender's contact (so a caller can skip reading it)."""
    return any(token.group(1) in CONTACT_NAMES for token in TOKEN.finditer(template))


def reply_values(contact: Contact | None, phone: str, args: Iterable[str] = ()) -> dict[str, str]:
    """The values of a reply template's names for one sender."""
    return {
        "first_name": contact.first_name if contact else "",
        "last_name": contact.last_name if contact else "",
        "phone": phone,
        "args": " ".join(args),
    }


def fill_reply(template: str, account: Account, phone: str, args: Iterable[str] = ()) -> str:
    """A reply template filled for the sender; the contact is read only when the template names its fields."""
    if "{" not in template and "}" not in template:
        return template
    contact = None
    if uses_contact(template):
        contact = Contact.get_or_none((Contact.account == account) & (Contact.phone == phone))
    return render(template, reply_values(contact, phone, args))
