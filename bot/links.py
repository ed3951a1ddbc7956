"""Tracked links: each URL of a send becomes a short link of ours per recipient, counting its clicks.

`shorten` replaces every http(s) URL of a text with `<SHORT_LINK_BASE_URL>/l/<code>` (the base defaults
to PUBLIC_BASE_URL; an operator with a short domain sets it, and with a base of at most 12 characters a
link is at most 22). Our own links (unsubscribe pages) stay as they are. The text is shortened before
its segments are counted, so the price and the preview are those of what is sent. A code is 7 letters
and digits (62^7 ≈ 3.5·10^12); new codes are checked against the table before use and the unique index
refuses the astronomically rare race. `GET /l/<code>` counts the click and redirects with 302. Link
previews by messaging apps count as clicks too, as with every SMS link tracker.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field

from flask import Blueprint, Flask, abort, current_app, redirect
from peewee import fn
from werkzeug.wrappers import Response

from bot import rows
from models import TrackedLink, utcnow

bp = Blueprint("links", __name__)
URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
TRAILING = ".,;:!?)]}'\""
ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 7


@dataclass
class Shortened:
    text: str
    links: list[tuple[str, str]] = field(default_factory=list)  # (code, original URL)


def base_url() -> str:
    config = current_app.config
    return (config.get("SHORT_LINK_BASE_URL") or config["PUBLIC_BASE_URL"]).rstrip("/")


def urls(text: str) -> list[re.Match[str]]:
    """The URLs of `text` that become short links (not our own links)."""
    base, own = base_url(), current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return [match for match in URL.finditer(text) if not match.group(0).startswith((own + "/", base + "/"))]


def shorten_many(texts: list[str]) -> list[Shortened]:
    """Replace each URL of each text with a new short link, checking all the new codes in one query (a
    chunk of a group send); the caller saves the links with its messages."""
    found = [urls(text) for text in texts]
    codes = iter(fresh_codes(sum(map(len, found))))
    return [replaced(text, matches, [next(codes) for _ in matches]) for text, matches in zip(texts, found, strict=True)]


def as_sent(text: str) -> str:
    """`text` with each URL replaced by a short link of the same length as a real one (for a preview)."""
    found = urls(text)
    return replaced(text, found, ["x" * CODE_LENGTH] * len(found)).text if found else text


def replaced(text: str, found: list[re.Match[str]], codes: list[str]) -> Shortened:
    base = base_url()
    pieces, links, cursor = [], [], 0
    for match, code in zip(found, codes, strict=True):
        url = match.group(0).rstrip(TRAILING)
        pieces += [text[cursor : match.start()], f"{base}/l/{code}"]
        links.append((code, url))
        cursor = match.start() + len(url)
    pieces.append(text[cursor:])
    return Shortened("".join(pieces), links)


def fresh_codes(count: int) -> list[str]:
    """`count` random codes that no stored link has."""
    codes: set[str] = set()
    while len(codes) < count:
        wanted = {"".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH)) for _ in range(count - len(codes))}
        taken = {code for (code,) in TrackedLink.select(TrackedLink.code).where(TrackedLink.code.in_(wanted)).tuples()}
        codes |= wanted - taken
    return sorted(codes)


def entries(shortened: Shortened, account_id: int, message_id: int | None, batch: str | None) -> list[dict]:
    """The TrackedLink rows of one shortened text, for `save`."""
    return [
        {"code": code, "url": url, "account": account_id, "message": message_id, "batch": batch}
        for code, url in shortened.links
    ]


def save(link_entries: list[dict]) -> None:
    """Store the links of one or many messages (`entries`) in one INSERT."""
    rows.insert(TrackedLink, link_entries)


@bp.get("/l/<code>")
def follow(code: str) -> Response:
    """Count the click and send the browser on to the original URL."""
    link = TrackedLink.get_or_none(TrackedLink.code == code)
    if link is None:
        abort(404)
    now = utcnow()
    TrackedLink.update(
        clicks=TrackedLink.clicks + 1,
        last_clicked_at=now,
        first_clicked_at=fn.COALESCE(TrackedLink.first_clicked_at, now),
    ).where(TrackedLink.id == link.id).execute()
    return redirect(link.url, code=302)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
