"""The number's own keywords: a word or alias as the whole first word(s), then its action.

Actions: `reply` answers a template with {first_name}, {last_name}, {phone} and {args}; `subscribe` and
`unsubscribe` add the sender to, or remove it from, the keyword's group and then answer; `forward` hands
the message to the business's URL in a job (bot/forward.py), whose answer becomes the reply; `flow`
starts the keyword's conversation (bot/flows.py). Templates are filled by substitution only
(bot/templates.py): a placeholder a stored template does not know is left as typed, never an error.
"""

from __future__ import annotations

from collections.abc import Callable

from bot import flows, templates
from bot.contacts import add_to_group, contact_for, group_named, remove_from_group
from bot.pipeline.inbound import Conversation, Outcome, forward_later
from keywords.registry import CUSTOM, handles
from keywords.text import Parsed
from models import Contact, Keyword


def render(template: str, contact: Contact | None, phone: str, args: tuple[str, ...]) -> str:
    return templates.render(template, templates.reply_values(contact, phone, args))


def keyword_for(conversation: Conversation, message: Parsed) -> tuple[Keyword, str] | None:
    """The number's keyword whose word or alias starts the body (the longest phrase wins)."""
    candidates = [
        (keyword, phrase)
        for keyword in conversation.keywords
        for phrase in (keyword.word, *keyword.aliases)
        if message.starts_with(phrase)
    ]
    return max(candidates, key=lambda pair: len(pair[1].split()), default=None)


def reply_action(conversation: Conversation, keyword: Keyword, message: Parsed, skip: int) -> str:
    args = message.args[skip - 1 :]
    conversation.reply(templates.fill_reply(keyword.reply, conversation.account, conversation.phone, args))
    return "replied"


def subscribe_action(conversation: Conversation, keyword: Keyword, message: Parsed, skip: int) -> str:
    contact = contact_for(conversation.account, conversation.phone)
    group = group_named(conversation.account, keyword.group_name)
    assert group is not None
    added = add_to_group(contact, group)
    reply = render(keyword.reply, contact, conversation.phone, ()) if keyword.reply else f"You joined {group.name}."
    conversation.reply(reply)
    return "subscribed" if added else "already subscribed"


def unsubscribe_action(conversation: Conversation, keyword: Keyword, message: Parsed, skip: int) -> str:
    contact = contact_for(conversation.account, conversation.phone)
    group = group_named(conversation.account, keyword.group_name, create=False)
    removed = group is not None and remove_from_group(contact, group)
    left = f"You left {keyword.group_name}."
    conversation.reply(render(keyword.reply, contact, conversation.phone, ()) if keyword.reply else left)
    return "unsubscribed" if removed else "not subscribed"


def forward_action(conversation: Conversation, keyword: Keyword, message: Parsed, skip: int) -> str:
    forward_later(conversation.message, keyword.url, keyword.word.upper())
    return "forwarding"


def flow_action(conversation: Conversation, keyword: Keyword, message: Parsed, skip: int) -> str:
    return flows.start(conversation, keyword)


ACTIONS: dict[str, Callable[[Conversation, Keyword, Parsed, int], str]] = {
    "reply": reply_action,
    "flow": flow_action,
    "forward": forward_action,
    "subscribe": subscribe_action,
    "unsubscribe": unsubscribe_action,
}


@handles(group=CUSTOM)
def custom_keyword(conversation: Conversation, message: Parsed) -> Outcome | None:
    found = keyword_for(conversation, message)
    if found is None or found[0].action not in ACTIONS:
        return None
    keyword, phrase = found
    conversation.store()
    outcome = ACTIONS[keyword.action](conversation, keyword, message, len(phrase.split()))
    return Outcome(keyword=keyword.word.upper(), action=keyword.action, outcome=outcome)
