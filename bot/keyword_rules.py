"""What makes a custom keyword valid, and writing one: one set of rules for the API, the console and the CLI.

A word or alias is case-folded; a reserved word (opt-out, opt-in, help, SAVE) is refused (422); a word
or alias another keyword of the number already answers to is a conflict (409); a reply template may only
use bare {first_name}, {last_name}, {phone} and {args} (bot/templates.py); subscribe/unsubscribe need a
group, forward a URL and flow a flow definition.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from bot import audit, flows, templates
from models import Keyword, VirtualNumber, db

ACTIONS = ("reply", "subscribe", "unsubscribe", "forward", "flow")


@dataclass
class KeywordError(ValueError):
    status: int
    message: str
    field: str

    def __str__(self) -> str:
        return self.message


def clean_word(word: str, field: str = "word") -> str:
    from keywords import validate_custom_word  # the router knows the reserved words

    try:
        return validate_custom_word(current_app.extensions["smsbot.router"], word)
    except ValueError as exc:
        raise KeywordError(422, str(exc), field) from None


def check_template(template: str, field: str = "reply") -> None:
    """A reply, default reply or help text: only bare {first_name}, {last_name}, {phone} and {args}."""
    try:
        templates.check(template, templates.REPLY_NAMES, field)
    except templates.TemplateError as exc:
        raise KeywordError(422, str(exc), field) from None


def words_taken(number: VirtualNumber, except_keyword: Keyword | None = None) -> set[str]:
    others = Keyword.select().where(Keyword.number == number)
    if except_keyword is not None:
        others = others.where(Keyword.id != except_keyword.id)
    return {word for keyword in others for word in (keyword.word, *keyword.aliases)}


def clean(number: VirtualNumber, data: dict[str, Any], keyword: Keyword | None = None) -> dict[str, Any]:
    """Validate a new keyword (or changes to `keyword`); return the model fields to write."""
    merged = {
        "word": keyword.word if keyword else data.get("word", ""),
        "aliases": keyword.aliases if keyword else [],
        "action": keyword.action if keyword else "reply",
        "reply": keyword.reply if keyword else "",
        "group": keyword.group_name if keyword else "",
        "url": keyword.url if keyword else "",
        "flow": keyword.flow if keyword else {},
        **data,
    }
    if merged["action"] not in ACTIONS:
        raise KeywordError(422, f"action must be one of {', '.join(ACTIONS)}", "action")
    word = clean_word(merged["word"])
    aliases = [clean_word(alias, "aliases") for alias in merged["aliases"]]
    check_unique(number, [word, *aliases], keyword)
    check_template(merged["reply"])
    if merged["action"] in ("subscribe", "unsubscribe") and not merged["group"].strip():
        raise KeywordError(422, f"{merged['action']} needs a group", "group")
    if merged["action"] == "forward":
        check_forward_url(merged["url"], "url")
    if merged["action"] == "flow":
        merged["flow"] = checked_flow(merged["flow"])
    return {
        "word": word,
        "aliases": aliases,
        "action": merged["action"],
        "reply": merged["reply"],
        "group_name": merged["group"].strip(),
        "url": merged["url"],
        "flow": merged["flow"],
    }


def save(number: VirtualNumber, data: dict[str, Any], keyword: Keyword | None = None) -> Keyword:
    """Create a keyword on `number` (or change `keyword`) after `clean`; audited. KeywordError if invalid."""
    fields = clean(number, data, keyword)
    with db.atomic():
        if keyword is None:
            created = Keyword.create(number=number, **fields)
            audit.created("keyword.create", created)
            return created
        with audit.change("keyword.update", keyword):
            for name, value in fields.items():
                setattr(keyword, name, value)
            keyword.save()
        if keyword.action != "flow":
            flows.cancel_conversations(keyword)
        return keyword


def remove(keyword: Keyword) -> None:
    with db.atomic():
        audit.deleted("keyword.delete", keyword)
        flows.cancel_conversations(keyword)
        keyword.delete_instance()


def check_unique(number: VirtualNumber, words: Iterable[str], keyword: Keyword | None) -> None:
    words = list(words)
    if len(set(words)) != len(words):
        raise KeywordError(409, "a word is given twice", "aliases")
    taken = words_taken(number, keyword)
    clash = next((w for w in words if w in taken), None)
    if clash:
        raise KeywordError(409, f"{clash.upper()} is already a keyword on {number.number}", "word")


def checked_flow(flow: Any) -> dict[str, Any]:
    try:
        return flows.validate_flow(flow)
    except ValueError as exc:
        raise KeywordError(422, f"flow: {exc}", "flow") from None


def check_forward_url(url: str, field: str) -> None:
    from bot.forward import ForwardRefused, check_url

    try:
        check_url(url)
    except ForwardRefused as exc:
        raise KeywordError(422, f"{field}: {exc}", field) from None
