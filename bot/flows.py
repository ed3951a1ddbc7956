"""Flows: conversations defined as data on a keyword (action `flow`), one step at a time.

A pipeline service: the custom-keyword handler starts a flow (`start`), the group-4 handler
(keywords/conversation.py) hands it every later message of the sender (`running`, then `answer`), and
opt-out ends it (`end_active`). Every reply goes through `Conversation.reply`, so the block list, the
loop limit and pricing apply as to any automatic reply. No Flask request code lives here.

The flow JSON stored on the keyword (`Keyword.flow`), checked by `validate_flow` on every write:

    {"start": "stars",
     "steps": {
       "stars": {"ask": "How many stars, 1-5?", "type": "number", "min": 1, "max": 5, "save": "stars",
                 "next": "back"},
       "back":  {"ask": "Would you come back? YES or NO", "type": "yesno", "save": "back",
                 "next": {"yes": "day", "no": "end"}},
       "day":   {"ask": "Which day? (YYYY-MM-DD)", "type": "date", "save": "contact.visit_day", "next": "drink"},
       "drink": {"ask": "Tea or coffee?", "type": "choice", "options": ["Tea", "Coffee"], "save": "drink",
                 "next": {"tea": "end", "*": "end"}}},
     "end": "Thanks {first_name}!",
     "invalid": "Sorry, I did not get that. {ask}",
     "failed": "Sorry, that did not work out. Text {keyword} to start again.",
     "max_retries": 2}

- Step types: `text` (any non-empty text), `number` (a whole or decimal number, "," or "." as the
  decimal mark, within the optional `min` / `max`), `choice` (one of `options`, case-insensitively, or
  its 1-based number; the option as written is saved), `yesno` (yes/y/ja/j → "yes", no/n/nej → "no"),
  `date` (an ISO date, YYYY-MM-DD, saved as such). `type` defaults to text.
- `save`: the answer's name in the survey response (`Conversation.answers`), or `contact.<field>`, which
  also stores it in the sender's contact (`Contact.fields`; `contact.first_name` / `contact.last_name`
  set the names). No `save`: the answer only steers the flow.
- `next`: a step name, "end" (the default), or a branch map from the normalised answer ("yes"/"no",
  the option case-folded, the number, the date, the case-folded text) to a step or "end"; "*" is the
  branch for any other answer, and without it an unlisted answer ends the flow.
- Texts (`ask`, `end`, `invalid`, `failed`) may use {first_name}, {last_name}, {phone}, {keyword}, any
  saved answer by name, and in `invalid` also {ask}, the question again; `{{` and `}}` are literal
  braces. Anything else in braces is refused when the flow is saved (bot/templates.py); a stored text
  is filled by substitution only, and what it does not know is sent as typed.
- A wrong answer is asked again with `invalid` up to `max_retries` times (default 2, 0–10); one more
  wrong answer ends the conversation as "failed" with the `failed` text.

Conversation rows (`models.Conversation`, imported here as `Session` because the handlers' dataclass is
`bot.pipeline.inbound.Conversation`): one active row per phone and number, enforced by the unique `active_key`
("<number id>:<phone>", NULL once ended). Outcomes: completed, failed, stopped (STOP in the middle),
expired (idle for more than FLOW_IDLE_HOURS, default 24), replaced (the flow was started again),
cancelled (the keyword was deleted, turned into another action, or its flow lost the current step).

- Expiry is lazy: the next message of the sender ends an idle conversation as "expired" and is then
  routed as usual; `expire_idle` ends all idle ones at once (the outbox sweep and `results` call it).
- STOP, START and HELP win in the middle of a flow because the router's groups 1–3 run before group 4;
  STOP ends the flow ("stopped"), HELP and START leave it running. Any other text, even a keyword, is
  the answer to the current step.
- Starting a flow ends the sender's active conversation as "replaced" and inserts the new row in a
  savepoint; two racing starts meet the unique index, and the loser ("already running") sends nothing.
  The active row is read with SELECT … FOR UPDATE on PostgreSQL (SQLite write transactions are serial),
  so two racing answers to one step are taken one after the other.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import unicodedata
from datetime import date, timedelta
from typing import Any

from flask import current_app
from peewee import IntegrityError

from bot import spreadsheet, templates
from bot.contacts import contact_for
from bot.db import for_update
from bot.pipeline.inbound import Conversation
from bot.prepared import Prepared
from models import Contact, Keyword, VirtualNumber, db, utcnow
from models import Conversation as Session

log = logging.getLogger("smsbot.flows")

TYPES = ("text", "number", "choice", "yesno", "date")
YES = frozenset({"yes", "y", "ja", "j"})
NO = frozenset({"no", "n", "nej"})
DEFAULT_END = "Thank you!"
DEFAULT_INVALID = "Sorry, I did not get that. {ask}"
DEFAULT_FAILED = "Sorry, that did not work out. Text {keyword} to start again."
DEFAULT_RETRIES = 2
TEXTS = ("end", "invalid", "failed")
END = "end"
NAME = re.compile(r"[A-Za-z_][\w-]{0,63}")
NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
CONTACT = "contact."
NAME_COLUMNS = ("first_name", "last_name")


# --- the flow definition --------------------------------------------------------------------------------


FIXED_NAMES = frozenset({"first_name", "last_name", "phone", "keyword"})


def validate_flow(flow: Any, *, texts: bool = True) -> dict[str, Any]:
    """Return the flow if it is well formed; a ValueError names the first bad step or field.

    `texts=False` skips the placeholder rules, for a flow stored before them (its texts are filled by
    substitution only, so they are harmless).
    """
    if not isinstance(flow, dict):
        raise ValueError("a flow must be a JSON object with 'start' and 'steps'")
    steps = flow.get("steps")
    if not isinstance(steps, dict) or not steps:
        raise ValueError("a flow needs 'steps', an object of named steps")
    if not isinstance(flow.get("start"), str) or flow["start"] not in steps:
        raise ValueError("'start' must name one of the steps")
    for name, step in steps.items():
        check_step(name, step, steps)
    for key in TEXTS:
        if key in flow and not isinstance(flow[key], str):
            raise ValueError(f"'{key}' must be a text")
    retries = flow.get("max_retries", DEFAULT_RETRIES)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        raise ValueError("'max_retries' must be a whole number from 0 to 10")
    unknown = sorted(set(flow) - {"start", "steps", "max_retries", *TEXTS})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (allowed: start, steps, end, invalid, failed, max_retries)")
    if texts:
        check_texts(flow)
    return flow


def check_texts(flow: dict[str, Any]) -> None:
    """Every text holds only the flow's placeholders: the fixed names and its answer names ({ask} in invalid)."""
    names = FIXED_NAMES | {step["save"].removeprefix(CONTACT) for step in flow["steps"].values() if step.get("save")}
    for name, step in flow["steps"].items():
        templates.check(step["ask"], names, f"step {name!r} ask")
    for key in TEXTS:
        if key in flow:
            templates.check(flow[key], names | {"ask"} if key == "invalid" else names, f"'{key}'")


def check_step(name: str, step: Any, steps: dict[str, Any]) -> None:
    where = f"step {name!r}"
    if name in (END, "*") or not name.strip():
        raise ValueError(f"{where}: 'end' and '*' cannot name a step")
    if not isinstance(step, dict):
        raise ValueError(f"{where} must be an object")
    if not isinstance(step.get("ask"), str) or not step["ask"].strip():
        raise ValueError(f"{where} needs an 'ask' text")
    kind = step.get("type", "text")
    if kind not in TYPES:
        raise ValueError(f"{where}: 'type' must be one of {', '.join(TYPES)}")
    options = step.get("options")
    if kind == "choice":
        if not isinstance(options, list) or not options or not all(isinstance(o, str) and o.strip() for o in options):
            raise ValueError(f"{where}: a choice needs 'options', a list of texts")
        if len({o.casefold() for o in options}) < len(options):
            raise ValueError(f"{where}: 'options' repeat an option")
    for bound in ("min", "max"):
        if bound in step and (
            kind != "number" or not isinstance(step[bound], int | float) or isinstance(step[bound], bool)
        ):
            raise ValueError(f"{where}: '{bound}' must be a number, on a number step")
    if "min" in step and "max" in step and step["min"] > step["max"]:
        raise ValueError(f"{where}: 'min' is more than 'max'")
    save = step.get("save", "")
    if not isinstance(save, str) or (save and not NAME.fullmatch(save.removeprefix(CONTACT))):
        raise ValueError(f"{where}: 'save' must be an answer name or contact.<field>")
    following = step.get("next", END)
    if isinstance(following, dict):
        for answer, target in following.items():
            check_target(where, target, steps)
            check_branch(where, kind, answer, options)
    else:
        check_target(where, following, steps)


def check_target(where: str, target: Any, steps: dict[str, Any]) -> None:
    if not isinstance(target, str) or (target != END and target not in steps):
        raise ValueError(f"{where}: next step {target!r} does not exist")


def check_branch(where: str, kind: str, answer: str, options: Any) -> None:
    """A branch an answer can never take is a typo: refuse it."""
    key = answer.casefold()
    if key == "*":
        return
    if kind == "yesno" and key not in ("yes", "no"):
        raise ValueError(f"{where}: a yes/no step branches on 'yes', 'no' or '*', not {answer!r}")
    if kind == "choice" and key not in {o.casefold() for o in options}:
        raise ValueError(f"{where}: branch {answer!r} is not one of the options")


# --- answers --------------------------------------------------------------------------------------------


def normalised(text: str) -> str:
    """NFKC, white space collapsed, surrounding punctuation stripped ("Yes!" is "Yes")."""
    collapsed = " ".join(unicodedata.normalize("NFKC", text).split())
    start, end = 0, len(collapsed)
    while start < end and unicodedata.category(collapsed[start])[0] == "P":
        start += 1
    while end > start and unicodedata.category(collapsed[end - 1])[0] == "P":
        end -= 1
    return collapsed[start:end]


def read_answer(step: dict[str, Any], text: str) -> tuple[bool, Any]:
    """(valid, value) of an answer to a step, by the step's type."""
    kind = step.get("type", "text")
    if kind == "text":
        answer = " ".join(unicodedata.normalize("NFKC", text).split())
        return bool(answer), answer
    answer = normalised(text)
    if kind == "number":  # a sign is punctuation too: only trailing punctuation goes ("4." is 4)
        return read_number(step, " ".join(unicodedata.normalize("NFKC", text).split()).rstrip(".!?"))
    if kind == "choice":
        options = step["options"]
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return True, options[int(answer) - 1]
        found = next((o for o in options if normalised(o).casefold() == answer.casefold()), None)
        return found is not None, found
    if kind == "yesno":
        word = answer.casefold()
        return (True, "yes") if word in YES else (True, "no") if word in NO else (False, None)
    if not DATE.fullmatch(answer):
        return False, None
    try:
        return True, date.fromisoformat(answer).isoformat()
    except ValueError:
        return False, None


def read_number(step: dict[str, Any], answer: str) -> tuple[bool, Any]:
    if not NUMBER.fullmatch(answer):
        return False, None
    value = float(answer.replace(",", "."))
    if not math.isfinite(value):
        return False, None
    number: int | float = int(value) if value.is_integer() else value
    return step.get("min", number) <= number <= step.get("max", number), number


def next_step(step: dict[str, Any], value: Any) -> str:
    """The step after a valid answer: the fixed `next`, or the branch for the answer, or "*"."""
    following = step.get("next", END)
    if not isinstance(following, dict):
        return following
    branches = {str(key).casefold(): target for key, target in following.items()}
    return branches.get(str(value).casefold(), branches.get("*", END))


# --- conversations --------------------------------------------------------------------------------------


def active_key(number: VirtualNumber, phone: str) -> str:
    return f"{number.id}:{phone}"


def idle_cutoff() -> Any:
    return utcnow() - timedelta(hours=current_app.config["FLOW_IDLE_HOURS"])


def end_active(number: VirtualNumber, phone: str, outcome: str) -> bool:
    """End the phone's active conversation on the number, if any, with an outcome; True if one ended."""
    return bool(end_where(Session.active_key == active_key(number, phone), outcome))


def end_where(which: Any, outcome: str) -> int:
    """End the active conversations `which` selects with an outcome; returns how many."""
    return (
        Session.update(active_key=None, ended_at=utcnow(), updated_at=utcnow(), outcome=outcome)
        .where(which & Session.active_key.is_null(False))
        .execute()
    )


def cancel_conversations(keyword: Keyword | None = None) -> int:
    """End as "cancelled" the active conversations of a keyword that is no longer a flow (changed or
    deleted), now: a number with no flow keyword left is not looked at for conversations any more
    (keywords/conversation.py), so they would not be ended lazily by `running`.

    Without a keyword (the sweeper), every active conversation whose keyword is gone or is no longer a
    flow: one started by a message that raced the change (its transaction, or another process's cache
    of the keywords, still had the flow) is ended by the next sweep.
    """
    if keyword is not None:
        return end_where(Session.keyword == keyword, "cancelled")
    flows = Keyword.select(Keyword.id).where(Keyword.action == "flow")
    return end_where(Session.keyword.is_null() | Session.keyword.not_in(flows), "cancelled")


def expire_idle(keyword: Keyword | None = None) -> int:
    """End every active conversation idle past FLOW_IDLE_HOURS (of one keyword, if given) as "expired"."""
    idle = Session.active_key.is_null(False) & (Session.updated_at < idle_cutoff())
    if keyword is not None:
        idle &= Session.keyword == keyword
    ended = Session.update(active_key=None, ended_at=utcnow(), outcome="expired").where(idle).execute()
    if ended:
        log.info("%s idle conversation(s) expired", ended)
    return ended


def finish(session: Session, outcome: str) -> None:
    session.active_key, session.ended_at, session.updated_at, session.outcome = None, utcnow(), utcnow(), outcome
    session.save()


def active_locked(key: str) -> Any:
    return for_update(Session.select().where(Session.active_key == key))  # unique: one row at most


ACTIVE = Prepared(active_locked, [Session.active_key])  # read for every inbound routed


def running(number: VirtualNumber, phone: str) -> Session | None:
    """The phone's active conversation on the number, locked for this transaction; None if there is none.

    An idle one past the timeout is ended as "expired", and one whose flow is gone or lost its current
    step as "cancelled": both return None, so the message is routed as usual.
    """
    session = ACTIVE.first(Session, active_key(number, phone))
    if session is None:
        return None
    if session.updated_at < idle_cutoff():
        finish(session, "expired")
        return None
    keyword = session.keyword
    flow = keyword.flow if keyword is not None and keyword.action == "flow" else None
    if not isinstance(flow, dict) or session.step not in flow.get("steps", {}):
        finish(session, "cancelled")
        return None
    return session


def start(conversation: Conversation, keyword: Keyword) -> str:
    """Start the keyword's flow for the sender (replacing an active one) and ask the first question."""
    try:
        flow = validate_flow(keyword.flow, texts=False)
    except ValueError as exc:  # written before validation existed, or edited in the database
        log.warning("keyword %s on %s has a broken flow: %s", keyword.word, conversation.number.number, exc)
        return "broken flow"
    replaced = end_active(conversation.number, conversation.phone, "replaced")
    try:
        with db.atomic():
            session = Session.create(
                number=conversation.number,
                keyword=keyword,
                phone=conversation.phone,
                active_key=active_key(conversation.number, conversation.phone),
                step=flow["start"],
            )
    except IntegrityError:
        return "already running"  # a simultaneous message of the same phone started it first
    conversation.reply(say(flow["steps"][flow["start"]]["ask"], conversation, session))
    return "restarted" if replaced else "started"


def answer(conversation: Conversation, session: Session) -> str:
    """Take the message as the answer to the current step; reply with the next question or the end."""
    flow = session.keyword.flow
    step = flow["steps"][session.step]
    valid, value = read_answer(step, conversation.text)
    session.updated_at = utcnow()
    if not valid:
        session.retries += 1
        if session.retries > flow.get("max_retries", DEFAULT_RETRIES):
            finish(session, "failed")
            conversation.reply(say(flow.get("failed", DEFAULT_FAILED), conversation, session))
            return "failed"
        session.save()
        conversation.reply(say(flow.get("invalid", DEFAULT_INVALID), conversation, session, ask=step["ask"]))
        return "asked again"
    save(conversation, session, step.get("save", ""), value)
    session.retries = 0
    following = next_step(step, value)
    if following == END:
        finish(session, "completed")
        conversation.reply(say(flow.get("end", DEFAULT_END), conversation, session))
        return "completed"
    session.step = following
    session.save()
    conversation.reply(say(flow["steps"][following]["ask"], conversation, session))
    return "answered"


def save(conversation: Conversation, session: Session, target: str, value: Any) -> None:
    """Keep the answer in the response; `contact.<field>` also stores it on the sender's contact."""
    if not target:
        return
    name = target.removeprefix(CONTACT)
    if target.startswith(CONTACT):
        contact = contact_for(conversation.account, conversation.phone)
        if name in NAME_COLUMNS:
            setattr(contact, name, str(value)[:255])
        else:
            contact.fields = {**contact.fields, name: value}
        contact.save()
    session.answers = {**session.answers, name: value}


def say(template: str, conversation: Conversation, session: Session, ask: str = "") -> str:
    """A flow text with its placeholders filled by substitution (bot/templates.py)."""
    contact = Contact.get_or_none((Contact.account == conversation.account) & (Contact.phone == conversation.phone))
    values = {
        **{name: value for name, value in session.answers.items() if isinstance(name, str)},
        "first_name": contact.first_name if contact else "",
        "last_name": contact.last_name if contact else "",
        "phone": conversation.phone,
        "keyword": session.keyword.word.upper() if session.keyword else "",
    }
    if ask:
        values["ask"] = say(ask, conversation, session)
    return templates.render(template, values)


# --- results --------------------------------------------------------------------------------------------


def results(keyword: Keyword) -> list[dict[str, Any]]:
    """Every conversation of a flow keyword, oldest first: the survey's responses.

    Idle conversations are expired first, so a response is "running" only while it can still go on.
    """
    expire_idle(keyword)
    names = answer_names(keyword.flow)
    rows = Session.select().where(Session.keyword == keyword).order_by(Session.started_at, Session.id)
    return [
        {
            "phone": row.phone,
            "started_at": stamp(row.started_at),
            "ended_at": stamp(row.ended_at) if row.ended_at else None,
            "outcome": row.outcome or "running",
            "answers": {
                name: row.answers[name] for name in sorted(row.answers, key=lambda n: (names.get(n, len(names)), n))
            },
        }
        for row in rows
    ]


def answer_names(flow: Any) -> dict[str, int]:
    """Answer names in the order a sender meets them (from `start`, depth first), to order the columns.

    The order of keys in the stored JSON is not kept by every database (PostgreSQL's jsonb sorts them).
    """
    steps = flow.get("steps") if isinstance(flow, dict) else None
    if not isinstance(steps, dict):
        return {}
    order: dict[str, int] = {}
    seen: set[str] = set()
    pending = [flow.get("start")]
    while pending:
        name = pending.pop()
        if not isinstance(name, str) or name in seen or not isinstance(steps.get(name), dict):
            continue
        step = steps[name]
        seen.add(name)
        save = step.get("save")
        if isinstance(save, str) and save:
            order.setdefault(save.removeprefix(CONTACT), len(order))
        following = step.get("next", END)
        targets = list(following.values()) if isinstance(following, dict) else [following]
        pending.extend(reversed(targets))
    return order


def stamp(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") + "Z"


def results_csv(rows: list[dict[str, Any]]) -> str:
    """Responses as CSV: phone, times, outcome, then one column per answer name (in order of first use).

    A text cell that a spreadsheet would run as a formula (=, +, -, @ not followed by a number) gets a
    leading apostrophe.
    """
    names = list(dict.fromkeys(name for row in rows for name in row["answers"]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["phone", "started_at", "ended_at", "outcome", *names])
    for row in rows:
        cells = [row["phone"], row["started_at"], row["ended_at"] or "", row["outcome"]]
        writer.writerow([*cells, *(cell(row["answers"].get(name, "")) for name in names)])
    return out.getvalue()


def cell(value: Any) -> Any:
    return spreadsheet.defuse(value) if isinstance(value, str) and not NUMBER.fullmatch(value) else value
