"""Users, their one-time password links, and API keys."""

from __future__ import annotations

from flask import g
from peewee import IntegrityError

from bot import users
from bot.api import owned, shapes
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import api_key, user
from bot.apikeys import create_key, revoke
from bot.errors import ApiError
from bot.passwords import WeakPassword
from models import ApiKey, User


def own_user(user_id: int) -> User:
    return owned(User, user_id, "user")


@route(
    "GET",
    "/users",
    role="admin",
    summary="The account's users",
    query=shapes.PAGING,
    response=shapes.listing("users", shapes.USER),
)
def list_users() -> dict:
    rows, cursor = page(User.select().where(User.account == g.account.id), User.id)
    return {"users": [user(row) for row in rows], "next": cursor}


@route(
    "POST",
    "/users",
    role="admin",
    summary="Create a user and e-mail an invite",
    body=shapes.USER_IN,
    response=shapes.USER,
    status=201,
)
def create_user(body: dict) -> tuple[dict, int]:
    try:
        created = users.invite(g.account, body["email"], body["role"])
    except IntegrityError:
        raise ApiError(409, "conflict", "a user with that e-mail exists", "email") from None
    return user(created), 201


@route(
    "PATCH",
    "/users/<int:user_id>",
    role="admin",
    summary="Change a user's role or deactivate it",
    body=shapes.USER_PATCH,
    response=shapes.USER,
)
def patch_user(user_id: int, body: dict) -> dict:
    row = own_user(user_id)
    for name, value in body.items():
        setattr(row, name, value)
    row.save()
    return user(row)


@route("DELETE", "/users/<int:user_id>", role="admin", summary="Delete a user", status=204)
def delete_user(user_id: int) -> tuple[str, int]:
    own_user(user_id).delete_instance()
    return "", 204


@route(
    "POST",
    "/auth/password",
    role=None,
    summary="Set a password with a one-time link's token",
    body=shapes.PASSWORD_IN,
    response=shapes.DONE,
)
def set_password(body: dict) -> dict:
    try:
        users.set_password(body["token"], body["password"])
    except WeakPassword as exc:
        raise ApiError(422, "weak_password", str(exc), "password") from None
    except users.TokenError as exc:
        raise ApiError(404, "not_found", str(exc), "token") from None
    return {"status": "password set"}


@route(
    "POST",
    "/auth/reset",
    role=None,
    summary="E-mail a password reset link",
    body=shapes.RESET_IN,
    response=shapes.DONE,
    status=202,
)
def reset_password(body: dict) -> tuple[dict, int]:
    users.request_reset(body["email"])
    return {"status": "if the address has an account, a link is on its way"}, 202


@route(
    "GET",
    "/apikeys",
    role="admin",
    summary="API keys (never their secrets)",
    query=shapes.PAGING,
    response=shapes.listing("apikeys", shapes.API_KEY),
)
def list_keys() -> dict:
    rows, cursor = page(ApiKey.select().where(ApiKey.account == g.account.id), ApiKey.id)
    return {"apikeys": [api_key(row) for row in rows], "next": cursor}


@route(
    "POST",
    "/apikeys",
    role="admin",
    summary="Create an API key; its secret is shown once",
    body=shapes.API_KEY_IN,
    response=shapes.API_KEY,
    status=201,
)
def create_api_key(body: dict) -> tuple[dict, int]:
    row, secret = create_key(g.account, body["role"], body.get("label", ""))
    return api_key(row, secret), 201


@route("DELETE", "/apikeys/<int:key_id>", role="admin", summary="Revoke an API key", status=204)
def revoke_api_key(key_id: int) -> tuple[str, int]:
    revoke(owned(ApiKey, key_id, "API key"))
    return "", 204
