"""Topics of an account: `GET /topics`, `GET /topics/<name>`; admins `POST /topics`, `DELETE /topics/<name>`.

A topic has a name (1–32 letters, digits, `-` or `_`, stored folded; not `all`, which STOP ALL means)
and up to ten own opt-out words, each one word that no opt-out, opt-in, help or SAVE word, no other
topic and no custom keyword of the account's numbers already has (422 naming `words`).
"""

from __future__ import annotations

import re

from flask import current_app, g
from peewee import IntegrityError

from bot import keyword_rules, topics
from bot.api import shapes
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import iso
from bot.errors import ApiError
from keywords.text import fold
from models import Topic, VirtualNumber

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
WORD = re.compile(r"[^\W_][\w'’-]*")
RESERVED_NAMES = frozenset({"all"})  # STOP ALL opts out of everything


def topic_json(row: Topic) -> dict:
    return {"name": row.name, "words": row.words, "created_at": iso(row.created_at)}


def known_topic(raw: str, field: str = "topic") -> str:
    """The name of one of the account's topics as stored, or 422 naming `field`."""
    topic = topics.named(g.account, fold(raw.strip()))
    if topic is None:
        raise ApiError(422, "invalid", f"{raw!r} is not a topic of this account (GET /api/v1/topics)", field)
    return topic.name


def clean_name(raw: str) -> str:
    name = fold(raw.strip())
    if not NAME.fullmatch(name) or name in RESERVED_NAMES:
        raise ApiError(422, "invalid", "name must be 1-32 letters, digits, - or _ (and not ALL)", "name")
    return name


def clean_words(raw: list[str]) -> list[str]:
    words = list(dict.fromkeys(fold(word.strip()) for word in raw))
    reserved = current_app.extensions["smsbot.router"].reserved_words
    taken = {word for topic in topics.of_account(g.account) for word in topic.words}
    numbers = VirtualNumber.select().where(VirtualNumber.account == g.account.id)
    keywords = {word for number in numbers for word in keyword_rules.words_taken(number)}  # words and aliases
    for word in words:
        if not WORD.fullmatch(word):
            raise ApiError(422, "invalid", f"{word!r} must be one word of letters and digits", "words")
        if word in reserved or word in taken or word in keywords:
            raise ApiError(422, "invalid", f"{word.upper()} is taken (a reserved word, topic or keyword)", "words")
    return words


@route(
    "GET",
    "/topics",
    role="viewer",
    summary="The account's topics and their own opt-out words",
    query=shapes.PAGING,
    response=shapes.listing("topics", shapes.TOPIC),
)
def list_topics() -> dict:
    rows, cursor = page(Topic.select().where(Topic.account == g.account.id), Topic.id)
    return {"topics": [topic_json(row) for row in rows], "next": cursor}


@route(
    "POST",
    "/topics",
    role="admin",
    summary="Create a topic (STOP <name> or one of its words opts a phone out of it alone)",
    body=shapes.TOPIC_IN,
    response=shapes.TOPIC,
    status=201,
    idempotent=True,
    location="/topics/{name}",
)
def create_topic(body: dict) -> tuple[dict, int]:
    name, words = clean_name(body["name"]), clean_words(body.get("words", []))
    try:
        row = topics.create(g.account, name, words)
    except IntegrityError:
        raise ApiError(409, "conflict", f"the account has a topic named {name}", "name") from None
    return topic_json(row), 201


@route("GET", "/topics/<name>", role="viewer", summary="A topic", response=shapes.TOPIC)
def get_topic(name: str) -> dict:
    row = topics.named(g.account, fold(name.strip()))
    if row is None:
        raise ApiError(404, "not_found", f"no topic named {name!r}")
    return topic_json(row)


@route(
    "DELETE",
    "/topics/<name>",
    role="admin",
    summary="Delete a topic (its opt-outs stay in force and come back with a topic of that name)",
    status=204,
)
def delete_topic(name: str) -> tuple[str, int]:
    if not topics.delete(g.account, fold(name.strip())):
        raise ApiError(404, "not_found", f"no topic named {name!r}")
    return "", 204
