"""Opt-in (reserved): START and UNSTOP, and YES only while the sender is blocked, lift the block."""

from __future__ import annotations

from bot.blocklist import is_blocked, unblock
from bot.inbound import Conversation, Outcome
from keywords.registry import OPT_IN, handles
from keywords.text import Parsed

CONFIRMATION = "You are subscribed to {account} again. Reply STOP to unsubscribe."


def blocked(conversation: Conversation, _message: Parsed) -> bool:
    return is_blocked(conversation.account, conversation.phone)


def confirm(conversation: Conversation) -> Outcome:
    lifted = unblock(conversation.account, conversation.phone)
    conversation.reply(CONFIRMATION.format(account=conversation.account.name))
    return Outcome(action="opt-in", outcome="unblocked" if lifted else "not blocked")


@handles("start", "unstop", group=OPT_IN)
def opt_in(conversation: Conversation, _message: Parsed) -> Outcome:
    return confirm(conversation)


@handles("yes", group=OPT_IN, when=blocked)
def opt_in_yes(conversation: Conversation, _message: Parsed) -> Outcome:
    return confirm(conversation)
