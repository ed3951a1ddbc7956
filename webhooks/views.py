"""The one place that routes carrier webhooks: `/webhooks/<carrier name>/inbound|status`.

An adapter only verifies, parses and answers; the pipeline services store and act.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from bot import cache, carriers, environment
from bot.carriers import WebhookError
from bot.errors import ApiError
from bot.pipeline.inbound import receive
from bot.pipeline.reports import apply_reports
from models import Carrier

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger("smsbot.webhooks")


def carrier_and_adapter(name: str) -> tuple[Carrier, carriers.CarrierAdapter]:
    carrier = cache.carrier_named(name) if "\x00" not in name else None
    if carrier is None:
        raise ApiError(404, "not_found", f"no carrier named {name!r}")
    adapter = carriers.adapter_for(carrier.kind)
    if environment.is_production() and (reason := environment.unsigned_reason(carrier)):
        log.warning("carrier %s: refused in production: %s", name, reason)
        raise ApiError(403, "unsigned_carrier", f"refused in production: {reason}")
    try:
        adapter.verify(carrier, request)
    except WebhookError as exc:
        log.warning("carrier %s: rejected %s request: %s", name, request.path.rsplit("/", 1)[-1], exc.message)
        raise ApiError(exc.status, "signature", exc.message, exc.field) from None
    return carrier, adapter


def parsed(parse, carrier: Carrier):  # type: ignore[no-untyped-def]
    try:
        return parse(carrier, request)
    except WebhookError as exc:
        raise ApiError(exc.status, "malformed", exc.message, exc.field) from None


@bp.post("/<name>/inbound")
def inbound(name: str) -> Response:
    carrier, adapter = carrier_and_adapter(name)
    receive(carrier, parsed(adapter.parse_inbound, carrier))
    return adapter.inbound_response()


@bp.post("/<name>/status")
def status(name: str) -> Response:
    carrier, adapter = carrier_and_adapter(name)
    apply_reports(carrier, parsed(adapter.parse_reports, carrier))
    return adapter.report_response()
