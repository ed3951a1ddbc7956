"""Tracked links: URLs become short links of ours, a click is counted and redirected."""

from __future__ import annotations

import re

from bot import links
from models import TrackedLink


def test_each_url_becomes_a_short_link_and_punctuation_stays_outside(app, make_account) -> None:
    app.config["SHORT_LINK_BASE_URL"] = "https://x.se"
    shortened = links.shorten_many(["Sale! https://shop.example/a?b=1, and (https://shop.example/c). Bye"])[0]
    first, second = (code for code, _ in shortened.links)
    assert shortened.text == f"Sale! https://x.se/l/{first}, and (https://x.se/l/{second}). Bye"
    assert [url for _, url in shortened.links] == ["https://shop.example/a?b=1", "https://shop.example/c"]
    assert all(re.fullmatch(r"[A-Za-z0-9]{7}", code) for code in (first, second))
    assert len(f"https://x.se/l/{first}") <= 22


def test_our_own_links_and_plain_text_stay(app) -> None:
    own = f"{app.config['PUBLIC_BASE_URL']}/u/abcdefghijklmnopqrstuvwx"
    assert links.shorten_many([f"Stop: {own}"])[0].text == f"Stop: {own}"
    assert links.shorten_many(["no links here"])[0].links == []


def test_a_click_is_counted_and_redirected(client, make_account) -> None:
    account = make_account()
    shortened = links.shorten_many(["Read https://news.example/story"])[0]
    links.save(links.entries(shortened, account.id, None, "batch-1"))
    code = shortened.links[0][0]
    for _ in range(2):
        answer = client.get(f"/l/{code}")
        assert answer.status_code == 302
        assert answer.headers["Location"] == "https://news.example/story"
    link = TrackedLink.get(TrackedLink.code == code)
    assert (link.clicks, link.batch) == (2, "batch-1")
    assert link.first_clicked_at <= link.last_clicked_at
    assert client.get("/l/unknown").status_code == 404


def test_a_send_with_tracked_links_counts_what_is_sent_and_each_recipients_clicks(
    app, client, make_account, make_carrier, make_number
):
    from bot.apikeys import create_key
    from models import OutboundMessage

    app.config["SHORT_LINK_BASE_URL"] = "https://x.se"
    account = make_account(balance=1000, price_per_segment=10)
    make_number(account, make_carrier("generic", name="gw"))
    headers = {"Authorization": f"Bearer {create_key(account, 'user')[1]}"}
    long_url = "https://shop.example/" + "a" * 200  # alone it would take two segments
    send = {"to": ["+46731234567", "+46731234568"], "from": "Shop", "text": f"Sale {long_url}", "track_links": True}
    answer = client.post("/api/v1/messages", json=send, headers=headers)
    assert answer.status_code == 202
    first, second = answer.json["messages"]
    assert first["segments"] == 1 and first["price"] == 10
    assert first["text"].startswith("Sale https://x.se/l/") and first["text"] != second["text"]
    code = first["text"].rsplit("/", 1)[1]
    assert client.get(f"/l/{code}").headers["Location"] == long_url
    clicked = client.get(f"/api/v1/messages/{first['id']}", headers=headers).json
    assert clicked["clicks"] == 1
    assert client.get(f"/api/v1/messages/{second['id']}", headers=headers).json["clicks"] == 0
    assert OutboundMessage.get_by_id(first["id"]).body == first["text"]


def test_without_track_links_urls_stay_as_written(client, make_account, make_carrier, make_number):
    from bot.apikeys import create_key

    account = make_account(balance=1000, price_per_segment=10)
    make_number(account, make_carrier("generic", name="gw"))
    headers = {"Authorization": f"Bearer {create_key(account, 'user')[1]}"}
    send = {"to": "+46731234567", "from": "Shop", "text": "Sale https://shop.example/a"}
    (message,) = client.post("/api/v1/messages", json=send, headers=headers).json["messages"]
    assert message["text"] == "Sale https://shop.example/a" and message["clicks"] == 0
    assert TrackedLink.select().count() == 0
