"""Opt-in (reserved): START and UNSTOP, and YES only while the sender is blocked, lift the block and
confirm, unless the phone had its confirmations of the day (bot/consent.py)."""

from __future__ import annotations

from bot import consent
from bot.blocklist import is_blocked, unblock
from bot.pipeline.inbound import Conversation, Outcome
from keywords.registry import OPT_IN, handles
from keywords.text import Parsed

CONFIRMATION = "You are subscribed to {account} again. Reply STOP to unsubscribe."


def blocked(conversation: Conversation, _message: Parsed) -> bool:
    return is_blocked(conversation.account, conversation.phone)


def confirm(conversation: Conversation) -> Outcome:
    lifted = unblock(conversation.account, conversation.phone)
    outcome = "unblocked" if lifted else "not blocked"
    if consent.confirmations_capped(conversation.account, conversation.phone):
        return Outcome(action="opt-in", outcome=consent.capped_outcome(outcome))
    conversation.reply(CONFIRMATION.format(account=conversation.account.name))
    return Outcome(action="opt-in", outcome=outcome)


@handles("start", "unstop", group=OPT_IN)
def opt_in(conversation: Conversation, _message: Parsed) -> Outcome:
    return confirm(conversation)


@handles("yes", group=OPT_IN, when=blocked)
def opt_in_yes(conversation: Conversation, _message: Parsed) -> Outcome:
    return confirm(conversation)
