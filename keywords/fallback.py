"""The last group: a near miss of a keyword answers "Did you mean JOIN?"; otherwise the number's default
reply (a template like a keyword's reply; {args} is the words after the first), or nothing. A near
miss is judged on the first word of a short body only (three words at most), so that a sentence never
gets a "did you mean"."""

from __future__ import annotations

import difflib

from bot.pipeline.inbound import Conversation, Outcome
from bot.templates import fill_reply
from keywords.registry import FALLBACK, handles
from keywords.text import Parsed

NEAR_MISS_CUTOFF = 0.75
NEAR_MISS_MAX_WORDS = 3
ALWAYS_SUGGESTED = ("help",)  # never STOP: "shop" must not be told to opt out


def suggestion(conversation: Conversation, message: Parsed) -> str | None:
    if not message.keyword or len(message.words) > NEAR_MISS_MAX_WORDS:
        return None
    words = [keyword.word for keyword in conversation.keywords]
    words += ["save"] if conversation.number.save_enabled else []
    close = difflib.get_close_matches(message.keyword, [*words, *ALWAYS_SUGGESTED], n=1, cutoff=NEAR_MISS_CUTOFF)
    return close[0] if close else None


@handles(group=FALLBACK)
def fallback(conversation: Conversation, message: Parsed) -> Outcome:
    near = suggestion(conversation, message)
    if near:
        conversation.reply(f"Did you mean {near.upper()}?")
        return Outcome(keyword=message.keyword.upper(), action="did-you-mean", outcome=near.upper())
    if conversation.number.default_reply:
        number = conversation.number
        conversation.reply(fill_reply(number.default_reply, conversation.account, conversation.phone, message.args))
        return Outcome(keyword=message.keyword.upper(), action="default-reply", outcome="answered")
    return Outcome(keyword=message.keyword.upper(), outcome="no action")
