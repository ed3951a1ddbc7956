"""`GET /healthz`: 200 when the database and Redis answer, else 503 naming what is down."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify
from redis.exceptions import RedisError

from bot.redis_conn import get_redis
from models import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    checks = {"database": "ok", "redis": "ok"}
    try:
        db.execute_sql("SELECT 1")
    except Exception as exc:
        checks["database"] = f"down: {exc.__class__.__name__}"
    try:
        get_redis(current_app).ping()
    except RedisError as exc:
        checks["redis"] = f"down: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if healthy else "unavailable", **checks), 200 if healthy else 503


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
