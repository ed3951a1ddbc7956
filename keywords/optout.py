"""Opt-out (reserved, first group): every spelling blocks the sender on the account's block list.

The first word decides ("stop please", "STOP ALL"): honouring too much is safe, too little is not. One
confirmation without marketing goes out (it passes the block list); none when the sender was blocked
already, the carrier has answered the opt-out itself (Twilio's OptOutType), or the phone had its three
confirmations of the day (bot/consent.py). A running flow ends.
A number with STOP switched off leaves opt-out to the business: the message falls through to the
later groups.
"""

from __future__ import annotations

from bot import consent, flows
from bot.blocklist import block
from bot.pipeline.inbound import Conversation, Outcome
from keywords.registry import OPT_OUT, handles
from keywords.text import Parsed

WORDS = (
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "optout",
    "opt out",
    "opt-out",
    "revoke",
    "stopp",
    "avsluta",
)
CONFIRMATION = "You are unsubscribed from {account} and will get no more messages. Reply START to subscribe again."


def stop_enabled(conversation: Conversation, _message: Parsed) -> bool:
    return conversation.number.stop_enabled


@handles(*WORDS, group=OPT_OUT, when=stop_enabled)
def opt_out(conversation: Conversation, message: Parsed) -> Outcome:
    flows.end_active(conversation.number, conversation.phone, "stopped")
    if not block(conversation.account, conversation.phone, "keyword"):
        return Outcome(action="opt-out", outcome="already blocked")
    if conversation.carrier_replied:
        return Outcome(action="opt-out", outcome="blocked")
    if consent.confirmations_capped(conversation.account, conversation.phone):
        return Outcome(action="opt-out", outcome=consent.capped_outcome("blocked"))
    conversation.reply(CONFIRMATION.format(account=conversation.account.name), compliance=True)
    return Outcome(action="opt-out", outcome="blocked")
