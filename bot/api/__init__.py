"""The API, `/api/v1`: JSON, `Authorization: Bearer <api key>`.

Business routes take a business key and scope every query to its account; the operator routes
(`/api/v1/operator/...`) take an operator key. Each side's key on the other's routes is a 403.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask, g, jsonify, request

from bot.apikeys import OPERATOR, authenticate, role_allows
from bot.errors import ApiError
from bot.keyword_rules import KeywordError, check_forward_url

bp = Blueprint("api", __name__, url_prefix="/api/v1")
F = TypeVar("F", bound=Callable[..., Any])


def requires(role: str) -> Callable[[F], F]:
    """Authenticate the bearer key and require at least `role` (or `operator`); sets g.account and g.api_key.

    g.account is None for an operator key.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            key = authenticate(token.strip()) if scheme.lower() == "bearer" else None
            if key is None:
                raise ApiError(401, "unauthorized", "a valid API key is required", "Authorization")
            if (role == OPERATOR) != (key.role == OPERATOR):
                side = "an operator key" if role == OPERATOR else "a business key"
                raise ApiError(403, "forbidden", f"this route needs {side}; the key is a {key.role} key")
            if role != OPERATOR and not role_allows(key.role, role):
                raise ApiError(403, "forbidden", f"this needs the {role} role; the key has {key.role}")
            g.api_key, g.account = key, key.account
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def owned(model: Any, object_id: int, what: str) -> Any:
    """The account's object of `model` with that id, or a 404 (another account's object is not found)."""
    row = model.get_or_none((model.id == object_id) & (model.account == g.account.id))
    if row is None:
        raise ApiError(404, "not_found", f"no {what} {object_id}")
    return row


def account_url(url: str, field: str) -> None:
    """A URL of the business's own (status callback) passes the same guard as a bot's URL, else 422."""
    try:
        check_forward_url(url, field)
    except KeywordError as exc:
        raise ApiError(422, "invalid", exc.message, exc.field) from None


@bp.get("/openapi.json")
def openapi_document() -> Any:
    from bot.api.schema import openapi

    return jsonify(openapi(request.url_root.rstrip("/") + bp.url_prefix))


def init_app(app: Flask) -> None:
    import bot.api.routes  # noqa: F401  (declares the routes on bp)

    app.register_blueprint(bp)
