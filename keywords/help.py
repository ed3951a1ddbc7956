"""Help (reserved): HELP, INFO, HJÄLP answer with the number's help text (a template with {first_name},
{last_name}, {phone} and {args}, the words after HELP), or a default that names the account and says how
to stop."""

from __future__ import annotations

from bot.pipeline.inbound import Conversation, Outcome
from bot.templates import fill_reply
from keywords.registry import HELP, handles
from keywords.text import Parsed


def default_help(conversation: Conversation) -> str:
    save = " Text SAVE First Last Group to be saved as a contact." if conversation.number.save_enabled else ""
    return f"{conversation.account.name}.{save} Reply STOP to opt out."


@handles("help", "info", "hjälp", group=HELP)
def help_text(conversation: Conversation, message: Parsed) -> Outcome:
    text = conversation.number.help_text
    if text:
        conversation.reply(fill_reply(text, conversation.account, conversation.phone, message.args))
    else:
        conversation.reply(default_help(conversation))
    return Outcome(action="help", outcome="answered")
