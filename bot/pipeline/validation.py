"""SPEC §5 step 1, validation: a message's recipient, sender and content, in order; each failure is final.

A chunk of messages (a group send's) is validated with what it needs from the database read once
(`Lookups`): the block list for all its phones in one query, each numeric sender's own number once, and
each phone parsed once.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import current_app

from bot import consent, inputguard, phones
from bot.pipeline.statuses import Status
from models import OutboundMessage, VirtualNumber

if TYPE_CHECKING:
    from bot.pipeline.outbound import Draft, Staged


class Rejected(Exception):
    def __init__(self, code: Status, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class Lookups:
    """What validating a chunk reads from the database, read once for the chunk."""

    blocked: set[tuple[int, str | None, str]] = field(default_factory=set)  # (account id, topic, phone) opted out
    senders: dict[tuple[int, str], str | None] = field(default_factory=dict)  # own_sender's answers
    texts: dict[tuple[int, str, str], Rejected | None] = field(default_factory=dict)  # check_body's answers


def blocked_phones(staged: list[Staged]) -> set[tuple[int, str | None, str]]:
    """The (account, topic, phone) of the chunk that must get nothing: opted out of everything or of the
    send's topic; one query per account and topic (a chunk has one)."""
    wanted: dict[tuple[int, str | None], set[str]] = {}
    for item in staged:
        if not item.draft.compliance:
            try:
                phone = phones.check_recipient(item.message.recipient, item.draft.account.default_region)
            except phones.PhoneError:
                continue  # rejected as 409 or 410 before the block list is read
            wanted.setdefault((item.draft.account.id, item.draft.topic), set()).add(phone)
    return {
        (account_id, topic, phone)
        for (account_id, topic), group in wanted.items()
        for phone in consent.opted_out(account_id, group, topic)
    }


def validate(draft: Draft, message: OutboundMessage, lookups: Lookups) -> str:
    """Run SPEC §5 step 1 in order; return the recipient in E.164 or raise Rejected."""
    account = draft.account
    try:
        recipient = phones.check_recipient(message.recipient, account.default_region)
    except phones.PhoneError as exc:
        raise Rejected(Status(exc.code), str(exc)) from exc
    message.sender = check_sender(draft, message.sender, lookups.senders)
    check_body(draft, message, lookups.texts)
    if not draft.compliance and (account.id, draft.topic, recipient) in lookups.blocked:
        raise Rejected(Status.RECIPIENT_REJECTED, blocked_detail(draft.topic))
    if phones.is_nanp(recipient):
        if not account.nanp_campaign:
            raise Rejected(Status.SENDER_REJECTED, "US/Canada needs a pre-booked campaign")
        if phones.sender_kind(message.sender) == "alphanumeric":
            raise Rejected(Status.SENDER_REJECTED, "US/Canada does not accept alphanumeric senders")
    return recipient


def check_sender(draft: Draft, sender: str, found: dict[tuple[int, str], str | None]) -> str:
    """The sender's rules: returns the sender as it goes (a numeric one as the account's number is stored).
    Also what a schedule is checked by when it is saved (bot/schedules.py)."""
    if not phones.is_valid_sender(sender):
        raise Rejected(Status.INVALID_SENDER, "sender must be 1-11 letters, digits or spaces, or up to 15 digits")
    if phones.sender_kind(sender) != "alphanumeric":
        return own_sender(draft, sender, found)
    return sender


def check_body(draft: Draft, message: OutboundMessage, found: dict[tuple[int, str, str], Rejected | None]) -> None:
    """The content's rules for the text as given and as it goes; worked out once per text and account
    in a chunk (`found`), as a group send gives every member the same text."""
    key = (draft.account.id, draft.body, message.body)
    if key not in found:
        try:
            if inputguard.has_unstorable(draft.body):
                raise Rejected(Status.INVALID_CONTENT, "the text holds NUL or invalid (lone surrogate) characters")
            check_text(message.body, message.segments, draft.account.banned_words)
            found[key] = None
        except Rejected as rejection:
            found[key] = rejection
    rejection = found[key]
    if rejection is not None:
        raise Rejected(rejection.code, rejection.detail)


def check_text(body: str, segment_count: int, banned_words: list[str]) -> None:
    """The text's rules: not empty, no control characters, at most MAX_SEGMENTS, none of the account's
    banned words."""
    check_content(body, segment_count)
    banned = banned_word(body, banned_words)
    if banned:
        raise Rejected(Status.CONTENT_REJECTED, f"banned word: {banned}")


def own_sender(draft: Draft, sender: str, found: dict[tuple[int, str], str | None]) -> str:
    """A numeric sender must be one of the account's own virtual numbers (else 407); returns it as stored.

    The caller's already loaded number is used when it is the one; otherwise one indexed lookup, kept in
    `found` for the rest of the chunk.
    """
    forms = phones.numeric_sender_forms(sender, draft.account.default_region)
    known = draft.sender_number
    if known is not None and known.account_id == draft.account.id and known.number in forms:
        return known.number
    key = (draft.account.id, sender)
    if key not in found:
        number = VirtualNumber.get_or_none((VirtualNumber.account == draft.account) & VirtualNumber.number.in_(forms))
        found[key] = number.number if number else None
    if found[key] is None:
        raise Rejected(Status.INVALID_SENDER, f"numeric sender {sender} is not one of this account's virtual numbers")
    return found[key]


def check_content(body: str, segment_count: int) -> None:
    if not body.strip():
        raise Rejected(Status.INVALID_CONTENT, "empty message")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\r\n" for ch in body):
        raise Rejected(Status.INVALID_CONTENT, "control characters are not allowed")
    limit = current_app.config["MAX_SEGMENTS"]
    if segment_count > limit:
        raise Rejected(Status.INVALID_CONTENT, f"{segment_count} segments, at most {limit}")


def banned_word(body: str, banned_words: list[str]) -> str | None:
    words = set(re.findall(r"\w+", body.casefold()))
    return next((word for word in banned_words if word.casefold() in words), None)


def blocked_detail(topic: str | None) -> str:
    return "recipient is on the block list" + (f" (opted out of everything or of topic {topic})" if topic else "")
