"""Users, their one-time password links, and API keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, g
from peewee import IntegrityError
from redis.exceptions import RedisError

from bot import admins, audit, users
from bot.api import owned, shapes
from bot.api.paging import page
from bot.api.schema import route
from bot.api.serialize import api_key, user
from bot.apikeys import create_key, revoke
from bot.errors import ApiError, error_response
from bot.passwords import WeakPassword
from models import ApiKey, User, db


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
    idempotent=True,
    location="/users/{id}",
)
def create_user(body: dict) -> tuple[dict, int]:
    try:
        created = users.invite(g.account, body["email"], body["role"])
    except IntegrityError:
        raise ApiError(409, "conflict", "the account has a user with that e-mail", "email") from None
    return user(created), 201


@route("GET", "/users/<int:user_id>", role="admin", summary="A user", response=shapes.USER)
def get_user(user_id: int) -> dict:
    return user(own_user(user_id))


@route(
    "PATCH",
    "/users/<int:user_id>",
    role="admin",
    summary="Change a user's role or deactivate it",
    body=shapes.USER_PATCH,
    response=shapes.USER,
)
def patch_user(user_id: int, body: dict) -> dict:
    """409 when it would demote or deactivate the account's last active admin user."""
    row = own_user(user_id)
    with db.atomic():
        keeps_admin(admins.change_user, row, body.get("role", row.role), body.get("active", row.active))
        with audit.change("user.update", row):
            for name, value in body.items():
                setattr(row, name, value)
            row.save()
    return user(row)


@route(
    "DELETE",
    "/users/<int:user_id>",
    role="admin",
    summary="Delete a user (409 for the last active admin user)",
    status=204,
)
def delete_user(user_id: int) -> tuple[str, int]:
    row = own_user(user_id)
    with db.atomic():
        keeps_admin(admins.change_user, row, row.role, False)
        audit.deleted("user.delete", row)
        row.delete_instance()
    return "", 204


def keeps_admin(check: Callable[..., None], *args: Any) -> None:
    try:
        check(*args)
    except admins.LastAdmin as exc:
        raise ApiError(409, "last_admin", str(exc)) from None


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
    errors={429: "too many reset requests for this address", 503: "try again later"},
)
def reset_password(body: dict) -> tuple[dict, int] | tuple[Response, int, dict[str, str]]:
    """The same answer, and the same work, whether or not the address has a user."""
    try:
        users.request_reset(body["email"])
    except users.TooManyResets as exc:
        response, status = error_response(429, "too_many_requests", str(exc), "email")
        return response, status, {"Retry-After": str(exc.retry_after)}
    except RedisError:
        raise ApiError(503, "unavailable", "password resets are unavailable for a moment; try again") from None
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
    idempotent=True,
    location="/apikeys/{id}",
    secret_fields=("key",),
)
def create_api_key(body: dict) -> tuple[dict, int]:
    row, secret = create_key(g.account, body["role"], body.get("label", ""))
    return api_key(row, secret), 201


@route("GET", "/apikeys/<int:key_id>", role="admin", summary="An API key (never its secret)", response=shapes.API_KEY)
def get_api_key(key_id: int) -> dict:
    return api_key(owned(ApiKey, key_id, "API key"))


@route(
    "DELETE",
    "/apikeys/<int:key_id>",
    role="admin",
    summary="Revoke an API key (409 for the last admin key of an account without an admin user)",
    status=204,
)
def revoke_api_key(key_id: int) -> tuple[str, int]:
    row = owned(ApiKey, key_id, "API key")
    with db.atomic():
        keeps_admin(admins.revoke_key, row)
        revoke(row)
    return "", 204
