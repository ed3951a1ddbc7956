"""Group 4: a running conversation (flow or survey) of this sender on this number takes the message as its
answer. Opt-out, opt-in and help run before it, so STOP still works in the middle of a survey."""

from __future__ import annotations

from bot import flows
from bot.inbound import Conversation, Outcome
from keywords.registry import CONVERSATION, handles
from keywords.text import Parsed


@handles(group=CONVERSATION)
def continue_conversation(conversation: Conversation, _message: Parsed) -> Outcome | None:
    session = flows.running(conversation.number, conversation.phone)
    if session is None:
        return None
    outcome = flows.answer(conversation, session)
    return Outcome(keyword=session.keyword.word.upper() if session.keyword else "", action="flow", outcome=outcome)
