"""Flows and surveys: a three-step survey from start to results, wrong answers, STOP, timeouts, two phones."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import threading
from datetime import timedelta

import pytest

from bot import keyword_rules
from bot.apikeys import create_key
from bot.carriers import InboundSms
from bot.flows import validate_flow
from bot.pipeline.inbound import receive
from bot.pipeline.jobs import sweep
from models import BlockEntry, Contact, Conversation, InboundMessage, Keyword, OutboundMessage, db, utcnow

NUMBER, ANNA, BO = "+46700000001", "+46731234567", "+46731234568"
SURVEY = {
    "start": "stars",
    "steps": {
        "stars": {"ask": "How many stars, 1-5?", "type": "number", "min": 1, "max": 5, "save": "stars", "next": "back"},
        "back": {
            "ask": "Would you come back? YES or NO",
            "type": "yesno",
            "save": "back",
            "next": {"yes": "drink", "no": "end"},
        },
        "drink": {
            "ask": "Tea or coffee?",
            "type": "choice",
            "options": ["Tea", "Coffee"],
            "save": "contact.drink",
            "next": "end",
        },
    },
    "end": "Thanks {first_name}, {stars} stars noted!",
    "invalid": "Sorry, I did not get that. {ask}",
    "max_retries": 1,
}
ids = itertools.count()


@pytest.fixture
def survey(make_account, make_carrier, make_number):
    number = make_number(make_account(name="Cafe"), make_carrier("generic"), NUMBER)
    Keyword.create(number=number, word="survey", action="flow", flow=SURVEY)
    Contact.create(account=number.account, phone=ANNA, first_name="Anna")
    return number


def say(number, phone: str, text: str) -> list[str]:
    before = OutboundMessage.select().count()
    receive(number.carrier, InboundSms(f"m{next(ids)}", phone, NUMBER, text))
    return [m.body for m in OutboundMessage.select().order_by(OutboundMessage.id).offset(before)]


def test_three_step_survey_with_a_wrong_answer_asked_again(survey):
    assert say(survey, ANNA, "SURVEY") == ["How many stars, 1-5?"]
    assert say(survey, ANNA, "seven") == ["Sorry, I did not get that. How many stars, 1-5?"]
    assert say(survey, ANNA, "4") == ["Would you come back? YES or NO"]
    assert say(survey, ANNA, "ja") == ["Tea or coffee?"]
    assert say(survey, ANNA, "2") == ["Thanks Anna, 4 stars noted!"]
    row = Conversation.get()
    assert (row.outcome, row.active_key, row.answers) == (
        "completed",
        None,
        {"stars": 4, "back": "yes", "drink": "Coffee"},
    )
    assert Contact.get(Contact.phone == ANNA).fields == {"drink": "Coffee"}
    assert say(survey, ANNA, "4") == []  # the survey is over: no default reply configured


def test_branching_ends_early_and_too_many_wrong_answers_fail(survey):
    say(survey, ANNA, "survey")
    say(survey, ANNA, "5")
    assert say(survey, ANNA, "no") == ["Thanks Anna, 5 stars noted!"]
    say(survey, BO, "survey")
    say(survey, BO, "zero")
    assert say(survey, BO, "zero") == ["Sorry, that did not work out. Text SURVEY to start again."]
    assert say(survey, BO, "3") == []  # the failed conversation is over
    assert [r.outcome for r in Conversation.select().order_by(Conversation.id)] == ["completed", "failed"]


def test_stop_in_the_middle_blocks_and_ends_the_flow(survey):
    say(survey, ANNA, "survey")
    replies = say(survey, ANNA, "STOP")
    assert replies and "unsubscribed" in replies[0]
    assert BlockEntry.select().count() == 1
    assert Conversation.get().outcome == "stopped"
    assert say(survey, ANNA, "4") == []


def test_help_wins_in_the_middle_and_the_flow_goes_on(survey):
    say(survey, ANNA, "survey")
    assert "Reply STOP" in say(survey, ANNA, "HELP")[0]
    assert say(survey, ANNA, "3") == ["Would you come back? YES or NO"]


def test_an_idle_conversation_expires(app, survey):
    survey.default_reply = "Hi! Text SURVEY to tell us what you think."
    survey.save()
    say(survey, ANNA, "survey")
    Conversation.update(updated_at=utcnow() - timedelta(hours=app.config["FLOW_IDLE_HOURS"], minutes=1)).execute()
    assert say(survey, ANNA, "4") == ["Hi! Text SURVEY to tell us what you think."]
    assert Conversation.get().outcome == "expired"


def test_two_phones_in_parallel_on_one_number(survey):
    say(survey, ANNA, "survey")
    say(survey, BO, "survey")
    assert say(survey, ANNA, "5") == ["Would you come back? YES or NO"]
    assert say(survey, BO, "1") == ["Would you come back? YES or NO"]
    say(survey, BO, "no")
    assert say(survey, ANNA, "yes") == ["Tea or coffee?"]
    answers = {r.phone: r.answers for r in Conversation.select()}
    assert answers == {ANNA: {"stars": 5, "back": "yes"}, BO: {"stars": 1, "back": "no"}}


def test_a_running_flow_takes_even_a_keyword_as_its_answer(survey):
    say(survey, ANNA, "survey")
    assert say(survey, ANNA, "SURVEY") == ["Sorry, I did not get that. How many stars, 1-5?"]
    assert Conversation.select().count() == 1


def test_results_as_json_and_csv_through_api_and_cli(client, runner, survey, make_account):
    for phone, answers in ((ANNA, ["survey", "4", "no"]), (BO, ["survey", "2", "yes", "tea"])):
        for text in answers:
            say(survey, phone, text)
    headers = {"Authorization": f"Bearer {create_key(survey.account, 'viewer')[1]}"}
    responses = client.get(f"/api/v1/numbers/{NUMBER}/keywords/survey/responses", headers=headers).json["responses"]
    assert [(r["phone"], r["outcome"], r["answers"]) for r in responses] == [
        (ANNA, "completed", {"stars": 4, "back": "no"}),
        (BO, "completed", {"stars": 2, "back": "yes", "drink": "Tea"}),
    ]
    table = client.get(f"/api/v1/numbers/{NUMBER}/keywords/survey/responses?format=csv", headers=headers)
    rows = list(csv.DictReader(io.StringIO(table.get_data(as_text=True))))
    assert [(r["phone"], r["stars"], r["drink"]) for r in rows] == [(ANNA, "4", ""), (BO, "2", "Tea")]
    stranger = {"Authorization": f"Bearer {create_key(make_account(name='Other'), 'admin')[1]}"}
    assert client.get(f"/api/v1/numbers/{NUMBER}/keywords/survey/responses", headers=stranger).status_code == 404
    printed = runner.invoke(args=["flows", "results", NUMBER, "SURVEY"])
    assert json.loads(printed.output)[1]["answers"]["drink"] == "Tea"
    assert runner.invoke(args=["flows", "results", NUMBER, "SURVEY", "--format", "csv"]).output.startswith("phone,")


@pytest.mark.parametrize(
    ("flow", "problem"),
    [
        ({}, "steps"),
        ({"start": "x", "steps": {"a": {"ask": "?"}}}, "start"),
        ({"start": "a", "steps": {"a": {"ask": ""}}}, "ask"),
        ({"start": "a", "steps": {"a": {"ask": "?", "type": "colour"}}}, "type"),
        ({"start": "a", "steps": {"a": {"ask": "?", "type": "choice"}}}, "options"),
        ({"start": "a", "steps": {"a": {"ask": "?", "next": "b"}}}, "does not exist"),
        ({"start": "a", "steps": {"a": {"ask": "?", "next": {"yes": "nowhere"}}}}, "does not exist"),
        ({"start": "a", "steps": {"a": {"ask": "?", "save": "x y"}}}, "save"),
        ({"start": "a", "steps": {"a": {"ask": "?"}}, "max_retries": 99}, "max_retries"),
    ],
)
def test_bad_flows_are_refused_with_the_problem_named(flow, problem):
    with pytest.raises(ValueError, match=problem):
        validate_flow(flow)


def test_a_flow_keyword_through_the_api_is_validated(client, survey):
    headers = {"Authorization": f"Bearer {create_key(survey.account, 'admin')[1]}"}
    bad = client.post(
        f"/api/v1/numbers/{NUMBER}/keywords", json={"word": "poll", "action": "flow", "flow": {}}, headers=headers
    )
    assert (bad.status_code, bad.json["error"]["field"]) == (422, "flow")
    good = client.post(
        f"/api/v1/numbers/{NUMBER}/keywords", json={"word": "poll", "action": "flow", "flow": SURVEY}, headers=headers
    )
    assert good.status_code == 201


VISIT = {
    "start": "name",
    "steps": {
        "name": {"ask": "Your first name?", "save": "contact.first_name", "next": "day"},
        "day": {"ask": "Which day, {first_name}? (YYYY-MM-DD)", "type": "date", "save": "contact.visit_day"},
    },
    "end": "See you on {visit_day}, {first_name}!",
}


def test_dates_and_contact_fields(survey):
    Keyword.create(number=survey, word="visit", action="flow", flow=VISIT)
    assert say(survey, BO, "visit") == ["Your first name?"]
    assert say(survey, BO, "  Bo  ") == ["Which day, Bo? (YYYY-MM-DD)"]
    assert say(survey, BO, "2026-02-30") == ["Sorry, I did not get that. Which day, Bo? (YYYY-MM-DD)"]
    assert say(survey, BO, "next friday") == ["Sorry, I did not get that. Which day, Bo? (YYYY-MM-DD)"]
    assert say(survey, BO, "2026-12-24.") == ["See you on 2026-12-24, Bo!"]
    contact = Contact.get(Contact.phone == BO)
    assert (contact.first_name, contact.fields) == ("Bo", {"visit_day": "2026-12-24"})
    assert Conversation.get().answers == {"first_name": "Bo", "visit_day": "2026-12-24"}


def test_branches_by_choice_with_a_default_and_numbers_with_signs(survey):
    flow = {
        "start": "drink",
        "steps": {
            "drink": {
                "ask": "1 Tea, 2 Coffee or 3 Juice?",
                "type": "choice",
                "options": ["Tea", "Coffee", "Juice"],
                "save": "drink",
                "next": {"TEA": "milk", "*": "temp"},
            },
            "milk": {"ask": "Milk? Y/N", "type": "yesno", "save": "milk"},
            "temp": {"ask": "Degrees?", "type": "number", "min": -20, "max": 90, "save": "temp"},
        },
        "end": "Noted: {drink}.",
    }
    Keyword.create(number=survey, word="order", action="flow", flow=flow)
    assert say(survey, ANNA, "order") == ["1 Tea, 2 Coffee or 3 Juice?"]
    assert say(survey, ANNA, "tea!") == ["Milk? Y/N"]
    assert say(survey, ANNA, "J") == ["Noted: Tea."]
    assert say(survey, BO, "order") == ["1 Tea, 2 Coffee or 3 Juice?"]
    assert say(survey, BO, "3") == ["Degrees?"]
    for wrong in ("inf", "nan", "1e3", "91"):
        assert say(survey, BO, wrong) == ["Sorry, I did not get that. Degrees?"]
        Conversation.update(retries=0).execute()
    assert say(survey, BO, "-4,5") == ["Noted: Juice."]
    answers = [r.answers for r in Conversation.select().order_by(Conversation.id)]
    assert answers == [{"drink": "Tea", "milk": "yes"}, {"drink": "Juice", "temp": -4.5}]


def test_an_unlisted_branch_without_a_default_ends_the_flow(survey):
    flow = {"start": "a", "steps": {"a": {"ask": "Colour?", "next": {"red": "b"}}, "b": {"ask": "Why red?"}}}
    Keyword.create(number=survey, word="colour", action="flow", flow=flow)
    say(survey, ANNA, "colour")
    assert say(survey, ANNA, "Blue") == ["Thank you!"]
    say(survey, ANNA, "colour")
    assert say(survey, ANNA, "RED") == ["Why red?"]


def test_stop_then_start_in_the_middle(survey):
    say(survey, ANNA, "survey")
    say(survey, ANNA, "stop please")
    assert Conversation.get().outcome == "stopped"
    assert say(survey, ANNA, "START") == ["You are subscribed to Cafe again. Reply STOP to unsubscribe."]
    assert BlockEntry.select().count() == 0
    assert say(survey, ANNA, "4") == []  # START does not bring the flow back
    assert say(survey, ANNA, "survey") == ["How many stars, 1-5?"]


def test_start_in_the_middle_confirms_and_the_flow_goes_on(survey):
    say(survey, ANNA, "survey")
    assert say(survey, ANNA, "start") == ["You are subscribed to Cafe again. Reply STOP to unsubscribe."]
    assert say(survey, ANNA, "5") == ["Would you come back? YES or NO"]


def test_the_idle_sweep_and_the_results_expire_old_conversations(app, survey):
    from bot.flows import expire_idle, results

    say(survey, ANNA, "survey")
    say(survey, BO, "survey")
    Conversation.update(updated_at=utcnow() - timedelta(hours=25)).where(Conversation.phone == ANNA).execute()
    assert [r["outcome"] for r in results(Keyword.get())] == ["expired", "running"]
    assert expire_idle() == 0
    app.config["FLOW_IDLE_HOURS"] = 1
    Conversation.update(updated_at=utcnow() - timedelta(minutes=61)).where(Conversation.phone == BO).execute()
    assert expire_idle() == 1
    assert Conversation.select().where(Conversation.active_key.is_null(False)).count() == 0


def test_one_phone_on_two_numbers_has_two_conversations(survey, make_number):
    other = make_number(survey.account, survey.carrier, "+46700000002")
    Keyword.create(number=other, word="survey", action="flow", flow=VISIT)
    say(survey, ANNA, "survey")
    receive(other.carrier, InboundSms(f"m{next(ids)}", ANNA, other.number, "survey"))
    assert say(survey, ANNA, "2") == ["Would you come back? YES or NO"]
    assert Conversation.select().where(Conversation.active_key.is_null(False)).count() == 2


def test_a_deleted_flow_keyword_cancels_the_conversation(survey):
    survey.default_reply = "Hello!"
    survey.save()
    say(survey, ANNA, "survey")
    keyword_rules.remove(Keyword.get())
    assert (Conversation.get().outcome, Conversation.get().active_key) == ("cancelled", None)
    assert say(survey, ANNA, "4") == ["Hello!"]


def test_a_flow_keyword_turned_into_a_reply_cancels_its_conversation(survey):
    say(survey, ANNA, "survey")
    keyword_rules.save(survey, {"action": "reply", "reply": "Surveys are over"}, Keyword.get())
    assert (Conversation.get().outcome, Conversation.get().active_key) == ("cancelled", None)
    assert say(survey, ANNA, "4") == []  # not an answer any more, and 4 is no keyword
    assert say(survey, ANNA, "survey") == ["Surveys are over"]


def test_a_flow_keyword_edited_in_the_database_cancels_its_conversation_at_the_next_message(survey):
    Keyword.create(number=survey, word="poll", action="flow", flow=SURVEY)  # the number still has flows
    say(survey, ANNA, "survey")
    Keyword.update(action="reply", reply="Hi").where(Keyword.word == "survey").execute()
    assert Conversation.get().active_key is not None
    assert say(survey, ANNA, "4") == []
    assert Conversation.get().outcome == "cancelled"


def test_the_sweeper_ends_a_conversation_that_raced_its_keyword_out_of_being_a_flow(survey):
    Keyword.create(number=survey, word="poll", action="flow", flow=SURVEY)
    say(survey, ANNA, "survey")
    say(survey, BO, "poll")
    # a message that started it while the keyword was being changed: the change did not see it
    Keyword.update(action="reply", reply="Hi").where(Keyword.word == "survey").execute()
    assert sweep()["cancelled_flows"] == 1
    ended = {row.phone: (row.outcome, row.active_key is None) for row in Conversation.select()}
    assert ended == {ANNA: ("cancelled", True), BO: ("", False)}
    assert sweep()["cancelled_flows"] == 0


def test_a_number_without_flows_does_not_look_for_conversations(make_account, make_carrier, make_number):
    number = make_number(make_account(), make_carrier("generic"), NUMBER)
    Keyword.create(number=number, word="hi", action="reply", reply="Hello")
    statements: list[str] = []
    db.obj.query_hooks.append(lambda event: statements.append(event.sql))
    try:
        assert say(number, ANNA, "4") == []
    finally:
        db.obj.query_hooks.pop()
    assert not [sql for sql in statements if '"conversation"' in sql]


def test_a_racing_start_loses_to_the_one_that_inserted_first(survey, monkeypatch):
    from bot import flows

    say(survey, ANNA, "survey")
    first = Conversation.get()
    # The other message's row was committed after this one looked: nothing to answer, nothing to end.
    monkeypatch.setattr(flows, "running", lambda *_: None)
    monkeypatch.setattr(flows, "end_active", lambda *_: False)
    assert say(survey, ANNA, "survey") == []
    assert InboundMessage.select().order_by(InboundMessage.id.desc()).first().outcome == "already running"
    assert [(r.id, r.active_key is not None) for r in Conversation.select()] == [(first.id, True)]


def test_starting_again_replaces_the_active_conversation(survey, monkeypatch):
    from bot import flows

    say(survey, ANNA, "survey")
    say(survey, ANNA, "3")
    monkeypatch.setattr(flows, "running", lambda *_: None)  # as if the keyword came first
    assert say(survey, ANNA, "survey") == ["How many stars, 1-5?"]
    rows = list(Conversation.select().order_by(Conversation.id))
    assert [(r.outcome, r.step, r.answers) for r in rows] == [("replaced", "back", {"stars": 3}), ("", "stars", {})]
    assert InboundMessage.select().order_by(InboundMessage.id.desc()).first().outcome == "restarted"


def test_keyword_add_with_a_flow_from_text_or_a_file(runner, survey, tmp_path):
    added = runner.invoke(args=["keyword", "add", NUMBER, "poll", "--action", "flow", "--flow", json.dumps(VISIT)])
    assert added.exit_code == 0, added.output
    assert Keyword.get(Keyword.word == "poll").flow == VISIT
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(SURVEY), encoding="utf-8")
    added = runner.invoke(args=["keyword", "add", NUMBER, "poll2", "--action", "flow", "--flow-file", str(path)])
    assert added.exit_code == 0, added.output
    assert say(survey, BO, "poll2") == ["How many stars, 1-5?"]
    bad = runner.invoke(args=["keyword", "add", NUMBER, "poll3", "--action", "flow", "--flow", '{"start": "x"}'])
    assert bad.exit_code != 0 and "flow" in bad.output and "steps" in bad.output
    broken = runner.invoke(args=["keyword", "add", NUMBER, "poll3", "--action", "flow", "--flow", "{nope"])
    assert broken.exit_code != 0 and "not JSON" in broken.output
    both = ["--flow", "{}", "--flow-file", str(path)]
    assert runner.invoke(args=["keyword", "add", NUMBER, "poll3", "--action", "flow", *both]).exit_code != 0
    assert not Keyword.select().where(Keyword.word == "poll3").exists()


def test_results_csv_keeps_answer_order_and_defuses_formulas(client, runner, survey):
    flow = {
        "start": "q",
        "steps": {
            "q": {"ask": "Comment?", "save": "comment", "next": "r"},
            "r": {"ask": "Score?", "type": "number", "save": "score"},
        },
    }
    Keyword.create(number=survey, word="comment", action="flow", flow=flow)
    for text in ("comment", "=HYPERLINK(1)", "-2"):
        say(survey, ANNA, text)
    printed = runner.invoke(args=["flows", "results", NUMBER, "comment", "--format", "csv"]).output
    rows = list(csv.reader(io.StringIO(printed)))
    assert rows[0] == ["phone", "started_at", "ended_at", "outcome", "comment", "score"]
    assert rows[1][0] == ANNA and rows[1][3:] == ["completed", "'=HYPERLINK(1)", "-2"]
    missing = runner.invoke(args=["flows", "results", NUMBER, "nothing"])
    assert missing.exit_code != 0 and "no keyword NOTHING" in missing.output
    headers = {"Authorization": f"Bearer {create_key(survey.account, 'viewer')[1]}"}
    assert client.get(f"/api/v1/numbers/{NUMBER}/keywords/nothing/responses", headers=headers).status_code == 404


@pytest.mark.parametrize(
    ("flow", "problem"),
    [
        ({"start": "end", "steps": {"end": {"ask": "?"}}}, "step 'end'"),
        ({"start": "a", "steps": {"a": {"ask": "?", "next": ["b"]}}}, "step 'a': next step"),
        ({"start": "a", "steps": {"a": {"ask": "?", "next": {"x": ["b"]}}}}, "step 'a': next step"),
        ({"start": "a", "steps": {"a": {"ask": "?", "type": "yesno", "next": {"maybe": "end"}}}}, "yes/no"),
        (
            {"start": "a", "steps": {"a": {"ask": "?", "type": "choice", "options": ["x"], "next": {"y": "end"}}}},
            "options",
        ),
        ({"start": "a", "steps": {"a": {"ask": "?", "type": "number", "min": 5, "max": 1}}}, "'min' is more"),
        ({"start": "a", "steps": {"a": {"ask": "?", "min": 1}}}, "number step"),
        ({"start": "a", "steps": {"a": {"ask": "?", "save": "contact."}}}, "contact.<field>"),
        ({"start": "a", "steps": {"a": {"ask": "?"}}, "end": 5}, "'end'"),
        ({"start": "a", "steps": {"a": {"ask": "?"}}, "max_retry": 5}, "unknown field 'max_retry'"),
        ([], "JSON object"),
    ],
)
def test_more_bad_flows_name_the_step_or_field(flow, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        validate_flow(flow)


def in_parallel(app, texts: list[tuple[str, str]]) -> list[BaseException]:
    """Receive the messages at once, one thread and one database connection each."""
    carrier = Keyword.get().number.carrier
    db.close()
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(texts))

    def run(phone: str, text: str) -> None:
        try:
            with app.app_context(), db.connection_context():
                barrier.wait()
                receive(carrier, InboundSms(f"m{next(ids)}", phone, NUMBER, text))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=pair) for pair in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.connect(reuse_if_open=True)
    return errors


def test_racing_starts_leave_one_active_conversation(app, survey):
    Keyword.update(flow={**SURVEY, "max_retries": 10}).execute()  # SQLite runs them in turn: retries
    assert in_parallel(app, [(ANNA, "survey")] * 6) == []
    assert Conversation.select().where(Conversation.active_key.is_null(False)).count() == 1
    outcomes = {m.outcome for m in InboundMessage.select()}
    assert outcomes <= {"started", "restarted", "already running", "asked again"} and "started" in outcomes
    assert InboundMessage.select().count() == 6


def test_racing_answers_are_taken_one_after_the_other(app, survey):
    say(survey, ANNA, "survey")
    assert in_parallel(app, [(ANNA, "4"), (ANNA, "5")]) == []
    row = Conversation.get()
    assert (row.step, row.retries, len(row.answers)) == ("back", 1, 1)  # the second "stars" answer met step 2
