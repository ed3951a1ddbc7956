"""Virtual numbers and their custom keywords."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request

from bot import audit, flows, keyword_rules
from bot.api import shapes
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import keyword as keyword_json
from bot.api.serialize import number as number_json
from bot.errors import ApiError
from bot.keyword_rules import KeywordError, check_forward_url, check_template
from models import Carrier, Keyword, VirtualNumber


def own_number(e164: str) -> VirtualNumber:
    row = (
        VirtualNumber.select(VirtualNumber, Carrier)
        .join(Carrier)
        .where((VirtualNumber.number == e164) & (VirtualNumber.account == g.account.id))
        .first()
    )
    if row is None:
        raise ApiError(404, "not_found", f"no virtual number {e164} on this account")
    return row


def own_keyword(number: VirtualNumber, word: str) -> Keyword:
    row = Keyword.get_or_none((Keyword.number == number) & (Keyword.word == " ".join(word.casefold().split())))
    if row is None:
        raise ApiError(404, "not_found", f"no keyword {word.upper()} on {number.number}")
    return row


def write_keyword(number: VirtualNumber, data: dict, keyword: Keyword | None = None) -> Keyword:
    try:
        return keyword_rules.save(number, data, keyword)
    except KeywordError as exc:
        raise ApiError(exc.status, "invalid" if exc.status == 422 else "conflict", exc.message, exc.field) from None


@route(
    "GET",
    "/numbers",
    role="viewer",
    summary="The account's virtual numbers",
    query=shapes.PAGING,
    response=shapes.listing("numbers", shapes.NUMBER),
)
def list_numbers() -> dict:
    query = VirtualNumber.select(VirtualNumber, Carrier).join(Carrier).where(VirtualNumber.account == g.account.id)
    rows, cursor = page(query, VirtualNumber.id)
    return {"numbers": [number_json(row) for row in rows], "next": cursor}


@route(
    "PATCH",
    "/numbers/<e164>",
    role="admin",
    summary="Change a number's settings",
    body=shapes.NUMBER_PATCH,
    response=shapes.NUMBER,
)
def patch_number(e164: str, body: dict) -> dict:
    row = own_number(e164)
    try:
        if body.get("forward_url"):
            check_forward_url(body["forward_url"], "forward_url")
        for field in ("help_text", "default_reply"):
            if field in body:
                check_template(body[field], field)
    except KeywordError as exc:
        raise ApiError(422, "invalid", exc.message, exc.field) from None
    with audit.change("number.update", row):
        for name, value in body.items():
            setattr(row, name, value)
        row.save()
    return number_json(row)


@route(
    "GET",
    "/numbers/<e164>/keywords",
    role="viewer",
    summary="A number's keywords",
    response=shapes.listing("keywords", shapes.KEYWORD),
)
def list_keywords(e164: str) -> dict:
    rows = Keyword.select().where(Keyword.number == own_number(e164)).order_by(Keyword.word)
    return {"keywords": [keyword_json(row) for row in rows], "next": None}


@route(
    "POST",
    "/numbers/<e164>/keywords",
    role="admin",
    summary="Add a keyword",
    body=shapes.KEYWORD_IN,
    response=shapes.KEYWORD,
    status=201,
    idempotent=True,
    location="/numbers/{e164}/keywords/{word}",
)
def create_keyword(e164: str, body: dict) -> tuple[dict, int]:
    return keyword_json(write_keyword(own_number(e164), body)), 201


@route(
    "PATCH",
    "/numbers/<e164>/keywords/<word>",
    role="admin",
    summary="Change a keyword",
    body=shapes.KEYWORD_PATCH,
    response=shapes.KEYWORD,
)
def patch_keyword(e164: str, word: str, body: dict) -> dict:
    number = own_number(e164)
    return keyword_json(write_keyword(number, body, own_keyword(number, word)))


@route("DELETE", "/numbers/<e164>/keywords/<word>", role="admin", summary="Delete a keyword", status=204)
def delete_keyword(e164: str, word: str) -> tuple[str, int]:
    number = own_number(e164)
    keyword_rules.remove(own_keyword(number, word))
    return "", 204


@route(
    "GET",
    "/numbers/<e164>/keywords/<word>/responses",
    role="viewer",
    summary="A flow's responses (a survey's results), as JSON or, with ?format=csv, CSV",
    query={"format": {"type": "string", "enum": ["json", "csv"]}},
    response=shapes.obj({"responses": {"type": "array", "items": shapes.RESPONSE}}, ["responses"]),
)
def flow_responses(e164: str, word: str) -> Any:
    keyword = own_keyword(own_number(e164), word)
    rows = flows.results(keyword)
    if request.args.get("format") == "csv":
        return Response(flows.results_csv(rows), content_type="text/csv; charset=utf-8")
    return {"responses": rows}
