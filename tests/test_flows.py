"""Flows and surveys: a three-step survey from start to results, wrong answers, STOP, timeouts, two phones."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import timedelta

import pytest

from bot.apikeys import create_key
from bot.carriers import InboundSms
from bot.flows import validate_flow
from bot.inbound import receive
from models import BlockEntry, Contact, Conversation, Keyword, OutboundMessage, utcnow

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
    assert say(survey, BO, "zero") == ["Thanks , {stars} stars noted!"]
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
