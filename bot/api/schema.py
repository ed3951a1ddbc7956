"""Request validation and the OpenAPI description from one declaration per endpoint.

`@route("POST", "/contacts", role="user", body=CONTACT_IN, response=CONTACT, status=201)` registers the
view on the API blueprint, authenticates and authorises it, parses and validates the JSON body against
the schema (a small JSON Schema subset: type, properties, required, additionalProperties, enum,
minLength, maxLength, pattern, minimum, maximum, items, maxItems, nullable types) and hands the result to
the view as `body`. `openapi()` builds the OpenAPI 3.1 document from the same declarations, so the
description cannot drift from what is enforced.

A POST that creates something declares `idempotent=True` (it then honours `Idempotency-Key`, see
`bot/api/idempotency.py`) and `location`: a path template under /api/v1 filled from the path arguments
and the answer (`"/contacts/{id}"`), or a function of the answer; its 201/202 carries `Location`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flask import Response, current_app, request

from bot.api import bp, idempotency, requires
from bot.errors import ApiError
from bot.inputguard import first_unstorable, has_unstorable

Schema = dict[str, Any]
MAX_ID = 2**63 - 1  # the largest id a database column holds
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@dataclass
class Endpoint:
    method: str
    rule: str
    role: str | None
    summary: str
    body: Schema | None
    query: dict[str, Schema]
    response: Schema | None
    status: int
    content_type: str = "application/json"
    tags: list[str] = field(default_factory=list)
    idempotent: bool = False
    location: str | Callable[[dict[str, Any]], str | None] | None = None
    errors: dict[int, str] = field(default_factory=dict)
    raw_text: frozenset[str] = frozenset()


ENDPOINTS: list[Endpoint] = []


def check(schema: Schema, value: Any, where: str) -> None:
    """Raise ApiError(422) naming the first field of `value` that breaks `schema`."""
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else types
        ok = any(
            isinstance(value, JSON_TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
            for t in allowed
        )
        if not ok:
            raise ApiError(422, "invalid", f"{where or 'body'} must be {' or '.join(allowed)}", where or None)
    if value is None:
        return
    if "enum" in schema and value not in schema["enum"]:
        raise ApiError(422, "invalid", f"{where} must be one of {', '.join(map(str, schema['enum']))}", where)
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise ApiError(422, "invalid", f"{where} is too short", where)
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ApiError(422, "invalid", f"{where} is longer than {schema['maxLength']} characters", where)
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise ApiError(422, "invalid", f"{where} has the wrong format", where)
        if schema.get("format") == "email" and not EMAIL.fullmatch(value):
            raise ApiError(422, "invalid", f"{where} must be an e-mail address", where)
    if isinstance(value, float) and not math.isfinite(value):
        raise ApiError(422, "invalid", f"{where or 'body'} must be a finite number", where or None)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise ApiError(422, "invalid", f"{where} must be at least {schema['minimum']}", where)
        if "maximum" in schema and value > schema["maximum"]:
            raise ApiError(422, "invalid", f"{where} must be at most {schema['maximum']}", where)
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise ApiError(422, "invalid", f"{where} has more than {schema['maxItems']} items", where)
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise ApiError(422, "invalid", f"{where} needs at least {schema['minItems']} items", where)
        for index, item in enumerate(value):
            check(schema.get("items", {}), item, f"{where}[{index}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                path = f"{where}.{name}" if where else name
                raise ApiError(422, "required", f"{path} is required", path)
        for name, item in value.items():
            if name in properties:
                check(properties[name], item, f"{where}.{name}" if where else name)
            elif schema.get("additionalProperties") is False:
                raise ApiError(422, "unknown_field", f"{name} is not a known field", name)
            elif isinstance(schema.get("additionalProperties"), dict):
                check(schema["additionalProperties"], item, f"{where}.{name}" if where else name)


def integral(value: Any) -> Any:
    """JSON numbers like 5.0 are integers to JSON Schema; make them Python ints, everywhere in a body."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_ID:
        return int(value)
    if isinstance(value, list):
        return [integral(item) for item in value]
    if isinstance(value, dict):
        return {key: integral(item) for key, item in value.items()}
    return value


def query_value(schema: Schema, raw: str, name: str) -> Any:
    """A query string value in the type its schema declares."""
    if schema.get("type") == "integer":
        try:
            return int(raw)
        except ValueError:
            raise ApiError(422, "invalid", f"{name} must be an integer", name) from None
    return raw


def route(
    method: str,
    rule: str,
    *,
    role: str | None,
    summary: str,
    body: Schema | None = None,
    query: dict[str, Schema] | None = None,
    response: Schema | None = None,
    status: int = 200,
    content_type: str = "application/json",
    idempotent: bool = False,
    location: str | Callable[[dict[str, Any]], str | None] | None = None,
    secret_fields: tuple[str, ...] = (),
    errors: dict[int, str] | None = None,
    raw_text: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare, guard and validate one API endpoint (see the module docstring).

    `secret_fields` of the answer are left out of what an idempotent replay stores; `errors` documents
    statuses beyond the common 4xx. Every string of the path, query and body that holds NUL or a lone
    surrogate is a 422 naming it, except the body fields in `raw_text`, which the view stores safely
    itself (a message's text).
    """
    endpoint = Endpoint(
        method,
        rule,
        role,
        summary,
        body,
        query or {},
        response,
        status,
        content_type,
        idempotent=idempotent,
        location=location,
        errors=errors or {},
        raw_text=frozenset(raw_text),
    )
    ENDPOINTS.append(endpoint)

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def handle(*args: Any, **kwargs: Any) -> Any:
            if any(isinstance(value, int) and value > MAX_ID for value in kwargs.values()):
                raise ApiError(404, "not_found", "no such object")
            refuse_unstorable_parameters(kwargs)
            unknown = next((name for name in request.args if name not in endpoint.query), None)
            if unknown is not None:
                raise ApiError(422, "unknown_field", f"{unknown} is not a known query parameter", unknown)
            for name, schema in endpoint.query.items():
                if name in request.args:
                    check(schema, query_value(schema, request.args[name], name), name)
            key = idempotency.requested_key() if endpoint.idempotent else None
            data = None
            if endpoint.body is not None:
                data = request.get_json(silent=True)
                if data is None:
                    raise ApiError(400, "bad_request", "the body must be JSON")
                data = integral(data)
                bad = first_unstorable(data, lenient=endpoint.raw_text)
                if bad is not None:
                    raise ApiError(422, "invalid", f"{bad} holds a NUL or an invalid (surrogate) character", bad)
                check(endpoint.body, data, "")

            def answer() -> Response:
                given = {"body": data} if endpoint.body is not None else {}
                return located(endpoint, kwargs, view(*args, **kwargs, **given))

            if key is None:
                return answer()
            return idempotency.once(key, data, answer, secret_fields)

        guarded = requires(role)(handle) if role else handle
        bp.add_url_rule(rule, view.__name__, guarded, methods=[method])
        return guarded

    return decorate


def located(endpoint: Endpoint, path_args: dict[str, Any], result: Any) -> Response:
    """The view's answer as a response, with `Location` on a 201/202 that created something."""
    response = current_app.make_response(result)
    if endpoint.location is None or response.status_code not in (201, 202):
        return response
    answer = response.get_json(silent=True) or {}
    if callable(endpoint.location):
        path = endpoint.location(answer)
    else:
        values = {name: quote(str(value), safe="+@") for name, value in {**answer, **path_args}.items()}
        path = endpoint.location.format(**values)
    if path is not None:
        response.headers["Location"] = bp.url_prefix + path
    return response


def refuse_unstorable_parameters(path_values: dict[str, Any]) -> None:
    """NUL in a path or query parameter (URL-decoded %00) is a 422 naming it, never a database error."""
    parameters = [*path_values.items(), *request.args.items(multi=True)]
    for name, value in parameters:
        if isinstance(value, str) and (has_unstorable(value) or has_unstorable(name)):
            raise ApiError(422, "invalid", f"{name} holds a NUL or an invalid character", name)


def openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    parameters = []
    for converter, name in re.findall(r"<(?:(\w+):)?(\w+)>", rule):
        kind = {"type": "integer", "minimum": 0, "maximum": MAX_ID} if converter == "int" else {"type": "string"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": kind})
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule), parameters


ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}


def openapi(server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared endpoint."""
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        path, parameters = openapi_path(endpoint.rule)
        parameters += [{"name": n, "in": "query", "required": False, "schema": s} for n, s in endpoint.query.items()]
        if endpoint.idempotent:
            parameters.append(
                {"name": idempotency.HEADER, "in": "header", "required": False, "schema": idempotency.HEADER_SCHEMA}
            )
        errors = {
            str(code): {"description": text, "content": {"application/json": {"schema": ERROR}}}
            for code, text in [
                (400, "bad request"),
                (401, "no valid API key"),
                (403, "role too low"),
                (404, "not found"),
                (409, "conflict"),
                (413, "body too large"),
                (422, "invalid field"),
                *endpoint.errors.items(),
            ]
        }
        content = (
            {endpoint.content_type: {"schema": endpoint.response}}
            if endpoint.response is not None
            else {endpoint.content_type: {"schema": {"type": "string"}}}
        )
        operation: dict[str, Any] = {
            "operationId": f"{endpoint.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
            "summary": endpoint.summary,
            "description": f"Needs the `{endpoint.role}` role." if endpoint.role else "Public.",
            "parameters": parameters,
            "responses": {str(endpoint.status): {"description": "success", "content": content}, **errors},
            "security": [{"apiKey": []}] if endpoint.role else [],
        }
        if endpoint.status == 204:
            operation["responses"]["204"] = {"description": "done"}
        if endpoint.location is not None:
            operation["responses"][str(endpoint.status)]["headers"] = {
                "Location": {"description": "the created resource", "schema": {"type": "string"}}
            }
        if endpoint.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": endpoint.body}}}
        paths.setdefault(path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "smsbot business API", "version": "1"},
        "servers": [{"url": server_url}],
        "components": {"securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
