"""The opt-out and opt-in word tables (keywords/consent_words.json) as data tests: every word of every
language, typed as a phone would (lower case, trailing punctuation or space, accents or none), works
through the real webhook and router, and the confirmation goes out."""

from __future__ import annotations

import json
import unicodedata

import pytest
from flask import current_app

from bot.signing import HEADER, sign
from keywords import validate_custom_word
from keywords.consent_words import FILE
from keywords.optin import CONFIRMATION as OPT_IN
from keywords.optout import CONFIRMATION as OPT_OUT
from models import BlockEntry, ConsentEvent, InboundMessage, OutboundMessage

NUMBER, PHONE = "+46700000001", "+46731234567"
TABLE = json.loads(FILE.read_text(encoding="utf-8"))


def without_accents(word: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", word) if not unicodedata.combining(ch))


def typings(kind: str) -> list[tuple[str, str, str]]:
    """(language, word, as typed): lower case with a trailing "!" or space, and bare capitals."""
    cases = []
    for language, words in TABLE[kind].items():
        for word in words:
            cases += [(language, word, word.lower() + "!"), (language, word, word.lower() + " ")]
            cases.append((language, word, without_accents(word).upper()))
    return cases


OPT_OUT_CASES, OPT_IN_CASES = typings("opt_out"), typings("opt_in")


@pytest.fixture
def shop(make_account, make_carrier, make_number):
    return make_number(make_account(name="Shop", balance=10_000, price_per_segment=1), make_carrier("generic"), NUMBER)


def text(client, number, body: str) -> list[str]:
    raw = json.dumps({"id": "w1", "from": PHONE, "to": NUMBER, "text": body}).encode()
    headers = {"Content-Type": "application/json", HEADER: sign(number.carrier.secret, raw)}
    assert client.post(f"/webhooks/{number.carrier.name}/inbound", data=raw, headers=headers).status_code == 200
    return [m.body for m in OutboundMessage.select().order_by(OutboundMessage.id)]


def test_the_table_has_the_languages_we_serve():
    assert set(TABLE["opt_out"]) >= {"en", "sv", "fr", "es", "de"}
    assert {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"} <= set(TABLE["opt_out"]["en"])
    assert {"STOPP", "AVSLUTA", "AVREGISTRERA"} <= set(TABLE["opt_out"]["sv"])
    assert "ARRÊT" in TABLE["opt_out"]["fr"] and {"START", "UNSTOP"} <= set(TABLE["opt_in"]["en"])


@pytest.mark.parametrize(
    ("language", "word", "typed"), OPT_OUT_CASES, ids=[c[2].strip() + f"-{c[0]}" for c in OPT_OUT_CASES]
)
def test_every_opt_out_word_opts_out_and_confirms(client, shop, language, word, typed):
    assert text(client, shop, typed) == [OPT_OUT.format(account="Shop")]
    entry = BlockEntry.get()
    assert (entry.phone, entry.source, entry.topic) == (PHONE, "keyword", "")
    assert (InboundMessage.get().action, ConsentEvent.get().text) == ("opt-out", typed)


@pytest.mark.parametrize(
    ("language", "word", "typed"), OPT_IN_CASES, ids=[c[2].strip() + f"-{c[0]}" for c in OPT_IN_CASES]
)
def test_every_opt_in_word_lifts_the_opt_out_and_confirms(client, shop, language, word, typed):
    BlockEntry.create(account=shop.account, phone=PHONE, source="keyword")
    assert text(client, shop, typed) == [OPT_IN.format(account="Shop")]
    assert BlockEntry.select().count() == 0
    assert (ConsentEvent.get().kind, ConsentEvent.get().text) == ("opt_in", typed)


@pytest.mark.parametrize("word", [w for kind in ("opt_out", "opt_in") for words in TABLE[kind].values() for w in words])
def test_no_custom_keyword_may_take_a_word_of_the_table(app, word):
    router = current_app.extensions["smsbot.router"]
    for spelling in (word, without_accents(word).lower()):
        with pytest.raises(ValueError, match="reserved"):
            validate_custom_word(router, spelling)
