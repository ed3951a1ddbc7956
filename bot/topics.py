"""Topics: kinds of message an account sends (`offers`, `reminders`) that a phone may opt out of alone.

A phone opts out of a topic with `STOP <topic>` (any opt-out word, then the name) or with one of the
topic's own words; `START <topic>` lifts that topic only, a plain START everything (keywords/optout.py,
keywords/optin.py). Names and words are stored folded (lower case, no accents), so lookups take folded
text. Deleting a topic keeps its opt-outs: a topic created again with the name finds them in force.
"""

from __future__ import annotations

from bot import audit, cache
from models import Account, Topic, db


def of_account(account: Account) -> list[Topic]:
    """The account's topics by name, from the per-process cache (bot/cache.py): read for every STOP of a
    topic and every send that names one."""
    return cache.topics_of(account.id)


def named(account: Account, name: str) -> Topic | None:
    """The account's topic called `name` (folded), or None."""
    return next((topic for topic in of_account(account) if topic.name == name), None)


def by_word(account_id: int, word: str) -> Topic | None:
    """The account's topic that has `word` (folded) among its own opt-out words, or None.

    Asked for every inbound, so it reads the per-process cache (bot/cache.py), not the table.
    """
    return next((topic for topic in cache.topics_of(account_id) if word in topic.words), None)


def create(account: Account, name: str, words: list[str]) -> Topic:
    """A new topic (IntegrityError when the account has one of that name); audited."""
    with db.atomic():
        topic = Topic.create(account=account.id, name=name, words=words)
        audit.created("topic.create", topic)
    return topic


def delete(account: Account, name: str) -> bool:
    """Delete the topic (its opt-outs stay in force); False when there is none of that name."""
    with db.atomic():
        topic = Topic.get_or_none((Topic.account == account) & (Topic.name == name))
        if topic is None:
            return False
        audit.deleted("topic.delete", topic)
        topic.delete_instance()
    return True
