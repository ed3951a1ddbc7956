"""The app under benchmark: smsbot itself plus a bare Flask endpoint served by the same process."""

from __future__ import annotations

from bot import create_app

app = create_app()


@app.post("/bare")
def bare() -> dict[str, str]:
    return {"status": "ok"}
