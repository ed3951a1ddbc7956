"""Flows: conversations defined as data on a keyword (action `flow`), a step at a time.

    {"start": "stars",
     "steps": {
       "stars": {"ask": "How many stars, 1-5?", "type": "number", "min": 1, "max": 5, "save": "stars", "next": "back"},
       "back":  {"ask": "Would you come back? YES or NO", "type": "yesno", "save": "back",
                 "next": {"yes": "day", "no": "end"}},
       "day":   {"ask": "Which day? (YYYY-MM-DD)", "type": "date", "save": "contact.visit_day", "next": "end"},
       "pick":  {"ask": "Tea or coffee?", "type": "choice", "options": ["Tea", "Coffee"], "next": "end"}},
     "end": "Thanks {first_name}!", "invalid": "Sorry, I did not get that. {ask}", "max_retries": 2}

Types: text, number (optional min / max), choice (an option, case-insensitively, or its number), yesno
(yes/y/ja/j, no/n/nej), date (YYYY-MM-DD). `save` names the answer in the survey response, or
`contact.<field>` stores it in the sender's contact fields. `next` is a step, "end", or a map from the
normalised answer to a step with "*" as the default. A wrong answer is asked again (with `invalid`) up to
`max_retries` times; then the conversation ends as "failed".

One active conversation per phone and number (a unique `active_key`), idle for at most FLOW_IDLE_HOURS
(then it ends as "expired" and the message is routed as usual); STOP, START and HELP win in the middle
of it (the router's first groups), and STOP ends it as "stopped". Any other text is the answer to the
current step, even a keyword: the custom keywords come after conversations in the router.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from typing import Any

from flask import current_app
from peewee import IntegrityError

from bot.contacts import contact_for
from bot.inbound import Conversation
from models import Contact, Keyword, VirtualNumber, db, utcnow
from models import Conversation as Session

TYPES = ("text", "number", "choice", "yesno", "date")
YES, NO = {"yes", "y", "ja", "j", "yeah", "yep"}, {"no", "n", "nej", "nope"}
DEFAULT_INVALID = "Sorry, I did not get that. {ask}"
DEFAULT_END = "Thank you!"
NAME = re.compile(r"[A-Za-z_][\w.-]{0,63}")


def validate_flow(flow: Any) -> dict[str, Any]:
    """Return the flow if it is well formed; ValueError names the first problem."""
    if not isinstance(flow, dict) or not isinstance(flow.get("steps"), dict) or not flow["steps"]:
        raise ValueError("a flow needs a non-empty 'steps' object")
    steps = flow["steps"]
    if flow.get("start") not in steps:
        raise ValueError("'start' must name one of the steps")
    for name, step in steps.items():
        check_step(name, step, steps)
    for key in ("end", "invalid"):
        if key in flow and not isinstance(flow[key], str):
            raise ValueError(f"'{key}' must be a text")
    retries = flow.get("max_retries", 2)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        raise ValueError("'max_retries' must be a whole number from 0 to 10")
    return flow


def check_step(name: str, step: Any, steps: dict[str, Any]) -> None:
    where = f"step {name!r}"
    if not isinstance(step, dict) or not isinstance(step.get("ask"), str) or not step["ask"].strip():
        raise ValueError(f"{where} needs an 'ask' text")
    if step.get("type", "text") not in TYPES:
        raise ValueError(f"{where}: type must be one of {', '.join(TYPES)}")
    if step.get("type") == "choice":
        options = step.get("options")
        if not isinstance(options, list) or not options or not all(isinstance(o, str) and o for o in options):
            raise ValueError(f"{where}: a choice needs 'options', a list of texts")
    for bound in ("min", "max"):
        if bound in step and (not isinstance(step[bound], int | float) or isinstance(step[bound], bool)):
            raise ValueError(f"{where}: '{bound}' must be a number")
    save = step.get("save", "")
    if save and not NAME.fullmatch(save):
        raise ValueError(f"{where}: 'save' must be a name or contact.<field>")
    following = step.get("next", "end")
    targets = list(following.values()) if isinstance(following, dict) else [following]
    for target in targets:
        if target != "end" and target not in steps:
            raise ValueError(f"{where}: next step {target!r} does not exist")


def read_answer(step: dict[str, Any], text: str) -> tuple[bool, Any]:
    """(valid, value) of an answer to a step, by the step's type."""
    answer = " ".join(text.split())
    kind = step.get("type", "text")
    if kind == "text":
        return bool(answer), answer
    if kind == "number":
        try:
            value = float(answer.replace(",", "."))
        except ValueError:
            return False, None
        value = int(value) if value.is_integer() else value
        return step.get("min", value) <= value <= step.get("max", value), value
    if kind == "choice":
        options = step["options"]
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return True, options[int(answer) - 1]
        found = next((o for o in options if o.casefold() == answer.casefold()), None)
        return found is not None, found
    if kind == "yesno":
        word = answer.casefold().strip(".!")
        return (True, "yes") if word in YES else (True, "no") if word in NO else (False, None)
    try:
        return True, date.fromisoformat(answer).isoformat()
    except ValueError:
        return False, None


def next_step(step: dict[str, Any], value: Any) -> str:
    following = step.get("next", "end")
    if isinstance(following, dict):
        return following.get(str(value).casefold(), following.get("*", "end"))
    return following


def active_key(number: VirtualNumber, phone: str) -> str:
    return f"{number.id}:{phone}"


def end_active(number: VirtualNumber, phone: str, outcome: str) -> bool:
    """End the phone's running conversation on the number, if any."""
    return bool(
        Session.update(active_key=None, ended_at=utcnow(), outcome=outcome)
        .where(Session.active_key == active_key(number, phone))
        .execute()
    )


def running(number: VirtualNumber, phone: str) -> Session | None:
    """The active conversation, or None; an idle one past the timeout is ended as expired."""
    session = Session.get_or_none(Session.active_key == active_key(number, phone))
    if session is None:
        return None
    if session.updated_at < utcnow() - timedelta(hours=current_app.config["FLOW_IDLE_HOURS"]):
        end_active(number, phone, "expired")
        return None
    return session


def render(template: str, contact: Contact | None, answers: dict[str, Any], ask: str = "") -> str:
    values = {
        "first_name": contact.first_name if contact else "",
        "last_name": contact.last_name if contact else "",
        "ask": ask,
        **{k: v for k, v in answers.items() if isinstance(k, str)},
    }
    try:
        return template.format_map(KeepUnknown(values))
    except (ValueError, IndexError, AttributeError):
        return template


class KeepUnknown(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def start(conversation: Conversation, keyword: Keyword) -> str:
    """Start the keyword's flow for the sender (ending any running one) and ask the first question."""
    end_active(conversation.number, conversation.phone, "replaced")
    flow = keyword.flow
    try:
        with db.atomic():
            Session.create(
                number=conversation.number,
                keyword=keyword,
                phone=conversation.phone,
                active_key=active_key(conversation.number, conversation.phone),
                step=flow["start"],
            )
    except IntegrityError:
        return "already running"  # a simultaneous message started it first
    conversation.reply(flow["steps"][flow["start"]]["ask"])
    return "started"


def answer(conversation: Conversation, session: Session) -> str:
    """Take the message as the answer to the current step; reply with the next question or the end."""
    flow = session.keyword.flow
    step = flow["steps"][session.step]
    valid, value = read_answer(step, conversation.text)
    contact = Contact.get_or_none((Contact.account == conversation.account) & (Contact.phone == conversation.phone))
    session.updated_at = utcnow()
    if not valid:
        session.retries += 1
        if session.retries > flow.get("max_retries", 2):
            end_active(conversation.number, conversation.phone, "failed")
            conversation.reply(render(flow.get("end", DEFAULT_END), contact, session.answers))
            return "failed"
        session.save()
        conversation.reply(render(flow.get("invalid", DEFAULT_INVALID), contact, session.answers, step["ask"]))
        return "asked again"
    save(conversation, session, step.get("save", ""), value)
    following = next_step(step, value)
    session.retries = 0
    if following == "end":
        session.active_key, session.ended_at, session.outcome = None, utcnow(), "completed"
        session.save()
        contact = Contact.get_or_none((Contact.account == conversation.account) & (Contact.phone == conversation.phone))
        conversation.reply(render(flow.get("end", DEFAULT_END), contact, session.answers))
        return "completed"
    session.step = following
    session.save()
    conversation.reply(render(flow["steps"][following]["ask"], contact, session.answers))
    return "answered"


def save(conversation: Conversation, session: Session, target: str, value: Any) -> None:
    if not target:
        return
    if target.startswith("contact."):
        contact = contact_for(conversation.account, conversation.phone)
        contact.fields = {**contact.fields, target.removeprefix("contact."): value}
        contact.save()
    session.answers = {**session.answers, target.removeprefix("contact."): value}


def results(keyword: Keyword) -> list[dict[str, Any]]:
    """Every conversation of a flow keyword, oldest first: the survey's responses."""
    rows = Session.select().where(Session.keyword == keyword).order_by(Session.id)
    return [
        {
            "phone": row.phone,
            "started_at": row.started_at.isoformat(timespec="seconds") + "Z",
            "ended_at": row.ended_at.isoformat(timespec="seconds") + "Z" if row.ended_at else None,
            "outcome": row.outcome or "running",
            "answers": row.answers,
        }
        for row in rows
    ]


def results_csv(rows: list[dict[str, Any]]) -> str:
    """Responses as CSV: phone, times, outcome, then one column per answer name."""
    names = sorted({name for row in rows for name in row["answers"]})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["phone", "started_at", "ended_at", "outcome", *names])
    for row in rows:
        writer.writerow(
            [
                row["phone"],
                row["started_at"],
                row["ended_at"] or "",
                row["outcome"],
                *(row["answers"].get(name, "") for name in names),
            ]
        )
    return out.getvalue()
