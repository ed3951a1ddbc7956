"""Opt-in (reserved): START, UNSTOP and their translations (keywords/consent_words.json), and YES only
while the sender is blocked, lift every opt-out of the phone and confirm; `START <topic>` lifts that
topic's opt-out only. No confirmation once the phone had its confirmations of the day (bot/consent.py).
Each lift is a consent ledger event with the phone's exact text.
"""

from __future__ import annotations

from bot import consent, topics
from bot.blocklist import listed, unblock, unblock_topic
from bot.consent import Evidence
from bot.pipeline.inbound import Conversation, Outcome
from keywords.consent_words import OPT_IN_WORDS, after
from keywords.registry import OPT_IN, handles
from keywords.text import Parsed

CONFIRMATION = "You are subscribed to {account} again. Reply STOP to unsubscribe."
TOPIC_CONFIRMATION = "You are subscribed to {topic} messages of {account} again. Reply STOP {topic} to unsubscribe."


def blocked(conversation: Conversation, _message: Parsed) -> bool:
    return listed(conversation.account, conversation.phone)


def confirm(conversation: Conversation, topic: str = "") -> Outcome:
    """Lift everything (or the topic's opt-out) and confirm. A topic's confirmation passes the block
    list: the phone may still be opted out of everything, and it asked."""
    evidence = Evidence(text=conversation.text, inbound=conversation.message)
    account, phone = conversation.account, conversation.phone
    if topic:
        lifted = unblock_topic(account, phone, topic, "keyword", evidence)
        outcome = f"unblocked from {topic}" if lifted else f"not blocked from {topic}"
    else:
        outcome = "unblocked" if unblock(account, phone, "keyword", evidence) else "not blocked"
    if consent.confirmations_capped(account, phone):
        return Outcome(action="opt-in", outcome=consent.capped_outcome(outcome))
    if topic:
        conversation.reply(TOPIC_CONFIRMATION.format(topic=topic.upper(), account=account.name), compliance=True)
    else:
        conversation.reply(CONFIRMATION.format(account=account.name))
    return Outcome(action="opt-in", outcome=outcome)


@handles(*OPT_IN_WORDS, group=OPT_IN)
def opt_in(conversation: Conversation, message: Parsed) -> Outcome:
    named = after(message.words, OPT_IN_WORDS)
    topic = topics.named(conversation.account, named) if named else None
    return confirm(conversation, topic.name if topic else "")


@handles("yes", group=OPT_IN, when=blocked)
def opt_in_yes(conversation: Conversation, _message: Parsed) -> Outcome:
    return confirm(conversation)
