"""Opt-out (reserved, first group): every spelling blocks the sender on the account's block list.

The words, in every language we serve, are data (keywords/consent_words.json). The first word decides
("stop please", "STOP ALL"): honouring too much is safe, too little is not. `STOP <topic>` (any opt-out
word, then one of the account's topics) or a topic's own word opts out of that topic only (bot/topics.py).
One confirmation without marketing goes out (it passes the block list); none when the sender was blocked
already, the carrier has answered the opt-out itself (Twilio's OptOutType), or the phone had its three
confirmations of the day (bot/consent.py). A plain opt-out ends a running flow. Each opt-out is a
consent ledger event with the phone's exact text.
A number with STOP switched off leaves opt-out to the business: the message falls through to the
later groups.
"""

from __future__ import annotations

from bot import consent, flows, topics
from bot.blocklist import block
from bot.consent import Evidence
from bot.pipeline.inbound import Conversation, Outcome
from keywords.consent_words import OPT_OUT_WORDS, after
from keywords.registry import OPT_OUT, handles
from keywords.text import Parsed, fold

CONFIRMATION = "You are unsubscribed from {account} and will get no more messages. Reply START to subscribe again."
TOPIC_CONFIRMATION = "You are unsubscribed from {topic} messages of {account}. Reply START {topic} to subscribe again."


def stop_enabled(conversation: Conversation, _message: Parsed) -> bool:
    return conversation.number.stop_enabled


@handles(*OPT_OUT_WORDS, group=OPT_OUT, when=stop_enabled)
def opt_out(conversation: Conversation, message: Parsed) -> Outcome:
    named = after(message.words, OPT_OUT_WORDS)
    topic = topics.named(conversation.account, named) if named else None
    return opt_out_of(conversation, topic.name if topic else "")


@handles(group=OPT_OUT, when=stop_enabled)
def topic_word(conversation: Conversation, message: Parsed) -> Outcome | None:
    """A topic's own opt-out word (e.g. NOOFFERS) as the first word."""
    account_id = conversation.number.account_id  # the account itself is read only when a topic matches
    topic = topics.by_word(account_id, fold(message.keyword)) if message.keyword else None
    if topic is None:
        return None
    return opt_out_of(conversation, topic.name, keyword=message.keyword.upper())


def opt_out_of(conversation: Conversation, topic: str, keyword: str = "") -> Outcome:
    """Block the sender for `topic` ("": everything) and confirm once."""
    if not topic:
        flows.end_active(conversation.number, conversation.phone, "stopped")
    blocked = "blocked" if not topic else f"blocked from {topic}"
    evidence = Evidence(text=conversation.text, inbound=conversation.message)
    if not block(conversation.account, conversation.phone, "keyword", topic, evidence):
        return Outcome(keyword=keyword, action="opt-out", outcome=f"already {blocked}")
    if conversation.carrier_replied:
        return Outcome(keyword=keyword, action="opt-out", outcome=blocked)
    if consent.confirmations_capped(conversation.account, conversation.phone):
        return Outcome(keyword=keyword, action="opt-out", outcome=consent.capped_outcome(blocked))
    name = conversation.account.name
    text = TOPIC_CONFIRMATION.format(topic=topic.upper(), account=name) if topic else CONFIRMATION.format(account=name)
    conversation.reply(text, compliance=True)
    return Outcome(keyword=keyword, action="opt-out", outcome=blocked)
