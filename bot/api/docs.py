"""`/api/v1/docs`: the OpenAPI description rendered for people by Redoc, vendored (no CDN)."""

from __future__ import annotations

from flask import render_template

from bot.api import bp


@bp.get("/docs")
def api_docs() -> str:
    return render_template("console/api_docs.html")
