"""SAVE / SPARA: save the sender as a contact, in a group created if missing (the seed's Save function).

`SAVE first [last …] [group]`: one word is the first name; two are first and last name; three or more
are first name, last name (the middle words) and group (the last word). Double quotes keep words
together: `SAVE "Anna Maria" Berg "VIP customers"`. The contact is upserted by phone (names updated,
other groups kept). `SAVE` alone answers with its usage.
"""

from __future__ import annotations

from bot.contacts import add_to_group, group_named, save_contact
from bot.pipeline.inbound import Conversation, Outcome
from keywords.registry import SAVE, handles
from keywords.text import Parsed

USAGE = "To save yourself as a contact, text SAVE First Last Group, for example SAVE Anna Berg customers."


def save_enabled(conversation: Conversation, _message: Parsed) -> bool:
    return conversation.number.save_enabled


def split_names(args: tuple[str, ...]) -> tuple[str, str, str]:
    """(first name, last name, group) from the words after SAVE."""
    if len(args) <= 2:
        return args[0], (args[1] if len(args) == 2 else ""), ""
    return args[0], " ".join(args[1:-1]), args[-1]


@handles("save", "spara", group=SAVE, when=save_enabled)
def save(conversation: Conversation, message: Parsed) -> Outcome:
    if not message.args:
        conversation.reply(USAGE)
        return Outcome(action="save", outcome="usage")
    first, last, group_name = split_names(message.args)
    contact = save_contact(conversation.account, conversation.phone, first, last)
    full_name = " ".join(part for part in (first, last) if part)
    if group_name:
        group = group_named(conversation.account, group_name)
        assert group is not None
        add_to_group(contact, group)
        conversation.reply(f"Saved {full_name} in {group.name}.")
    else:
        conversation.reply(f"Saved {full_name}.")
    return Outcome(action="save", outcome="saved")
