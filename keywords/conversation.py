"""Group 4: a running conversation (flow or survey) of this sender on this number takes the message as its
answer (bot/flows.py). Opt-out, opt-in and help run before it, so STOP still works in the middle of a
survey (and ends it). An idle conversation past FLOW_IDLE_HOURS, or one whose keyword is gone, is ended
here and the message goes on to the later groups as if there were none.

A number none of whose keywords is a flow has no conversation to continue (a keyword that stops being a
flow ends its conversations: bot/keyword_rules.py), so its messages skip the lookup: for most numbers that
is one of the two statements an inbound costs."""

from __future__ import annotations

from bot import flows
from bot.pipeline.inbound import Conversation, Outcome
from keywords.registry import CONVERSATION, handles
from keywords.text import Parsed


@handles(group=CONVERSATION)
def continue_conversation(conversation: Conversation, _message: Parsed) -> Outcome | None:
    if not any(keyword.action == "flow" for keyword in conversation.keywords):
        return None
    session = flows.running(conversation.number, conversation.phone)
    if session is None:
        return None
    conversation.store()
    outcome = flows.answer(conversation, session)
    return Outcome(keyword=session.keyword.word.upper(), action="flow", outcome=outcome)
