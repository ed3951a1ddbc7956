"""Business templates (keyword replies, default replies, help texts, flow texts): only bare placeholders
are saved, and even a template stored before the rules is filled by substitution, never str.format."""

from __future__ import annotations

import itertools

import pytest

from bot.apikeys import create_key
from bot.carriers import InboundSms
from bot.pipeline.inbound import receive
from bot.templates import REPLY_NAMES, TemplateError, check, render
from models import Contact, Keyword, OutboundMessage, VirtualNumber

NUMBER, PHONE = "+46700000001", "+46731234567"
ids = itertools.count(1)
HOSTILE = [
    "{phone:>30000000}",
    "{phone!r}",
    "{phone.__class__}",
    "{phone.__class__.__mro__[1].__subclasses__}",
    "{phone[0]}",
    "{oops}",
    "{first_name",
    "first_name}",
    "{}",
    "{ phone }",
]


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    number = make_number(make_account(name="Shop"), make_carrier("generic"), NUMBER)
    Contact.create(account=number.account, phone=PHONE, first_name="Anna", last_name="Berg")
    return number


def headers(number: VirtualNumber) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(number.account, 'admin')[1]}"}


def text(number: VirtualNumber, body: str) -> list[str]:
    before = OutboundMessage.select().count()
    receive(number.carrier, InboundSms(f"t{next(ids)}", PHONE, NUMBER, body))
    return [m.body for m in OutboundMessage.select().order_by(OutboundMessage.id).offset(before)]


@pytest.mark.parametrize("template", HOSTILE)
def test_check_refuses_anything_but_bare_known_names(template):
    with pytest.raises(TemplateError) as refused:
        check(template, REPLY_NAMES, "reply")
    assert refused.value.field == "reply"
    assert str(refused.value).startswith("reply: ")


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("Hi {first_name} {last_name}, {phone}: {args}", "Hi Anna Berg, +46731234567: a b"),
        ("Use {{braces}} like }} this", "Use {braces} like } this"),
        ("{{first_name}}", "{first_name}"),
        ("no placeholders", "no placeholders"),
    ],
)
def test_allowed_templates_render_by_substitution(template, rendered):
    check(template, REPLY_NAMES, "reply")
    values = {"first_name": "Anna", "last_name": "Berg", "phone": PHONE, "args": "a b"}
    assert render(template, values) == rendered


@pytest.mark.parametrize("template", HOSTILE)
def test_keyword_reply_with_a_bad_template_is_422_naming_reply(client, shop, template):
    answer = client.post(
        f"/api/v1/numbers/{NUMBER}/keywords",
        json={"word": "price", "action": "reply", "reply": template},
        headers=headers(shop),
    )
    assert (answer.status_code, answer.json["error"]["field"]) == (422, "reply"), template
    assert Keyword.select().count() == 0


@pytest.mark.parametrize("field", ["help_text", "default_reply"])
def test_help_text_and_default_reply_are_checked_when_saved(client, shop, field):
    for template in ("{phone:>30000000}", "{phone.__class__}", "{name}", "a { b"):
        answer = client.patch(f"/api/v1/numbers/{NUMBER}", json={field: template}, headers=headers(shop))
        assert (answer.status_code, answer.json["error"]["field"]) == (422, field), template
    assert getattr(VirtualNumber.get(), field) == ""
    ok = client.patch(f"/api/v1/numbers/{NUMBER}", json={field: "Hi {first_name} {{:)}}"}, headers=headers(shop))
    assert ok.status_code == 200


def test_help_text_and_default_reply_are_filled_for_the_sender(shop):
    shop.help_text, shop.default_reply = "Hi {first_name}, you asked about {args}.", "{first_name}: unknown {{cmd}}"
    shop.save()
    assert text(shop, "HELP prices") == ["Hi Anna, you asked about prices."]
    assert text(shop, "whatever this is") == ["Anna: unknown {cmd}"]


def test_flow_texts_allow_only_their_names(client, shop):
    flow = {
        "start": "q",
        "steps": {"q": {"ask": "Your city, {first_name}?", "save": "city"}},
        "end": "Thanks, {city} noted for {keyword}.",
        "invalid": "Again: {ask}",
    }
    made = client.post(
        f"/api/v1/numbers/{NUMBER}/keywords",
        json={"word": "poll", "action": "flow", "flow": flow},
        headers=headers(shop),
    )
    assert made.status_code == 201, made.json
    for where, bad in [
        ("end", "Thanks {city:>99999}"),
        ("end", "{ask}"),  # {ask} belongs to the invalid text only
        ("failed", "{city.__class__}"),
        ("invalid", "{nope}"),
    ]:
        answer = client.post(
            f"/api/v1/numbers/{NUMBER}/keywords",
            json={"word": "poll2", "action": "flow", "flow": {**flow, where: bad}},
            headers=headers(shop),
        )
        assert (answer.status_code, answer.json["error"]["field"]) == (422, "flow"), bad
        assert f"'{where}'" in answer.json["error"]["message"]
    step = {**flow, "steps": {"q": {"ask": "{first_name!r}?", "save": "city"}}}
    answer = client.post(
        f"/api/v1/numbers/{NUMBER}/keywords",
        json={"word": "poll3", "action": "flow", "flow": step},
        headers=headers(shop),
    )
    assert answer.status_code == 422
    assert "step 'q' ask" in answer.json["error"]["message"]


def test_cli_refuses_a_bad_reply_template(runner, shop):
    result = runner.invoke(args=["keyword", "add", NUMBER, "price", "--reply", "{phone:>30000000}"])
    assert result.exit_code != 0
    assert "reply" in result.output
    assert Keyword.select().count() == 0


def test_a_stored_hostile_template_is_sent_as_typed_never_formatted(shop):
    """A template written before the rules (or edited in the database) cannot pad or reach objects."""
    Keyword.create(number=shop, word="pad", action="reply", reply="{phone:>30000000}")
    Keyword.create(number=shop, word="leak", action="reply", reply="{phone.__class__.__mro__} {first_name}")
    Keyword.create(number=shop, word="brace", action="reply", reply="{first_name {phone}")
    assert text(shop, "PAD") == ["{phone:>30000000}"]
    assert text(shop, "LEAK") == ["{phone.__class__.__mro__} Anna"]
    assert text(shop, "BRACE") == ["{first_name +46731234567"]


def test_a_stored_flow_with_an_unknown_placeholder_still_runs(shop):
    flow = {"start": "q", "steps": {"q": {"ask": "City {phone.__class__}?", "save": "city"}}, "end": "{city:>9999}"}
    Keyword.create(number=shop, word="poll", action="flow", flow=flow)
    assert text(shop, "POLL") == ["City {phone.__class__}?"]
    assert text(shop, "Lund") == ["{city:>9999}"]
