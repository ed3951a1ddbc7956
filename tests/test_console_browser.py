"""The console in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium, installed by
.ci/run; nothing is downloaded at run time). A business logs in, a phone texts a keyword through the
simulator carrier over real HTTP, the open thread shows it and then the reply's statuses as they arrive,
the timeline explains each event, the send form previews encoding and price, the API docs render, and a
weekly schedule is made and deleted.
Every page is screenshotted into a folder (SMSBOT_SCREENSHOT_DIR, else a temporary one)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot import blocklist
from bot.consent import Evidence
from bot.pipeline.statuses import Status
from models import (
    Account,
    BlockEntry,
    Contact,
    Group,
    GroupMember,
    InboundMessage,
    Keyword,
    OutboundMessage,
    Schedule,
    utcnow,
)
from tests.console_helpers import NUMBER, PASSWORD, PHONE, make_user, setup_account

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("SMSBOT_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh browser context that may only reach the live server: anything else is refused and noted."""
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    outside: list[str] = []
    local = urlsplit(live_server).netloc

    def only_local(route, request) -> None:  # type: ignore[no-untyped-def]
        if urlsplit(request.url).netloc in (local, "") or request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(request.url)
            route.abort()

    context.route("**/*", only_local)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    opened.outside_requests = outside  # type: ignore[attr-defined]
    yield opened
    context.close()


def log_in(page: Page, email: str) -> None:
    page.goto("/console/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    expect(page.locator("h1")).to_have_text("Dashboard")


def seed_history(account) -> None:  # type: ignore[no-untyped-def]
    """Thirty days of sends with a realistic mix of outcomes, so the dashboard has something to draw."""
    now = utcnow()
    for day in range(30):
        for n in range(8 + day % 5):
            code = Status.DELIVERED_TO_HANDSET
            if n == 0 and day % 3 == 0:
                code = Status.UNKNOWN_SUBSCRIBER
            elif n == 1 and day % 7 == 2:
                code = Status.EXPIRED
            OutboundMessage.create(
                account=account,
                sender=NUMBER,
                recipient=f"+4673100{day:02d}{n:02d}",
                body="Weekly offer",
                segments=1,
                price=35,
                status=code,
                created_at=now - timedelta(days=day, hours=1),
            )
    for day in (1, 4, 5, 12):
        BlockEntry.create(account=account, phone=f"+467320000{day:02d}", created_at=now - timedelta(days=day))
    number = account.numbers[0]
    for n, word in enumerate(["HOURS"] * 9 + ["JOIN"] * 6 + ["STOP"] * 4 + ["MENU"] * 2):
        InboundMessage.create(
            carrier=number.carrier,
            carrier_message_id=f"seed-{n}",
            sender=f"+4673300{n:04d}",
            recipient=NUMBER,
            body=word,
            number=number,
            keyword=word,
            received_at=now - timedelta(days=n % 20, hours=2),
        )


def text_the_number(base: str, body: str, message_id: str) -> None:
    payload = {"id": message_id, "from": PHONE, "to": NUMBER, "text": body}
    assert requests.post(f"{base}/webhooks/sim/inbound", json=payload, timeout=5).status_code == 200


def test_a_business_watches_a_conversation_and_reads_a_timeline(page, live_server, run_worker, shots):
    account = setup_account()
    number = account.numbers[0]
    Keyword.create(number=number, word="hours", action="reply", reply="We are open 10-18, {first_name}!")
    Contact.create(account=account, phone=PHONE, first_name="Anna", last_name="Berg")
    seed_history(account)
    make_user(account, "ann@acme.se", role="user")

    log_in(page, "ann@acme.se")
    expect(page.locator("svg.chart").first).to_be_visible()
    expect(page.locator("#money")).to_contain_text("100.00")
    page.screenshot(path=str(shots / "console.png"), full_page=True)

    text_the_number(live_server, "Hours?", "b1")
    page.click("nav >> text=Inbox")
    row = page.locator("tr.unread", has_text=PHONE)
    expect(row).to_contain_text("We are open 10-18, Anna!")  # the newest message: the keyword's reply
    page.screenshot(path=str(shots / "inbox.png"))
    row.locator("a").first.click()
    expect(page.locator(".bubble.in")).to_contain_text("Hours?")
    expect(page.locator(".bubble.out")).to_contain_text("102 Queued")

    text_the_number(live_server, "HOURS", "b2")  # a second text arrives while the page is open
    expect(page.locator(".bubble.in", has_text="HOURS")).to_be_visible()
    run_worker()  # sends the replies; the simulator posts 112, 113, 201 back over HTTP; the page polls
    delivered = page.locator(".bubble.out a.status", has_text="201 DeliveredToHandset")
    expect(delivered).to_have_count(2, timeout=15_000)  # both texts were the keyword: two replies
    expect(page.locator(".bubble.out").last).to_contain_text("We are open 10-18, Anna!")
    page.screenshot(path=str(shots / "thread.png"), full_page=True)

    page.locator(".bubble.out a.status").last.click()
    expect(page.locator("h1")).to_contain_text("DeliveredToHandset")
    timeline = page.locator("ol.timeline li")
    expect(timeline).to_have_count(8)  # 101 103 102 110 111 112 113 201
    expect(timeline.nth(4)).to_contain_text("111 DeliveredToGateway")
    expect(timeline.nth(7)).to_contain_text("The phone confirmed delivery.")
    page.screenshot(path=str(shots / "timeline.png"), full_page=True)

    replies = OutboundMessage.select().where(OutboundMessage.body == "We are open 10-18, Anna!")
    assert [reply.status for reply in replies] == [Status.DELIVERED_TO_HANDSET] * 2
    assert InboundMessage.select().where(InboundMessage.carrier_message_id.in_(["b1", "b2"])).count() == 2
    assert page.outside_requests == []


def test_the_send_form_previews_and_every_page_renders(page, live_server, shots):
    account = setup_account()
    group = Group.create(account=account, name="VIP", name_key="vip")
    for n in range(3):
        GroupMember.create(group=group, contact=Contact.create(account=account, phone=f"+4673123456{n}"))
    make_user(account, "adm@acme.se", role="admin")
    log_in(page, "adm@acme.se")

    page.click("nav >> text=Send")
    page.fill("textarea[name=to]", "+46731234567, +46731234568")
    page.fill("textarea[name=text]", "Hej! 20 € off today \u2013 it\u2019s our birthday")
    expect(page.locator("#pv-encoding")).to_have_text("UCS-2")
    expect(page.locator("#pv-ucs2")).to_contain_text("U+2013")
    expect(page.locator("#pv-ucs2")).to_contain_text("U+2019")
    expect(page.locator("#pv-segments")).to_have_text("1")
    expect(page.locator("#pv-recipients")).to_have_text("2")
    expect(page.locator("#pv-price")).to_have_text("0.70 SEK")
    expect(page.locator("#pv-balance")).to_have_text("99.30 SEK")
    page.check("input[name=mode][value=group]")
    expect(page.locator("#pv-recipients")).to_have_text("3")
    expect(page.locator("textarea[name=to]")).to_be_hidden()
    page.screenshot(path=str(shots / "send.png"), full_page=True)
    page.check("input[name=mode][value=phones]")
    page.fill("textarea[name=text]", "Hej! 20 € off today")
    expect(page.locator("#pv-encoding")).to_have_text("GSM-7")
    expect(page.locator("#pv-ucs2")).to_be_hidden()
    page.click("button:has-text('Send')")
    expect(page.locator("h1")).to_have_text("2 messages")
    page.click("text=Follow the batch")
    expect(page.locator("#batch-progress")).to_have_text("2 of 2 recipients accepted")
    expect(page.locator("#group-info")).to_have_text("2")
    page.screenshot(path=str(shots / "batch.png"), full_page=True)

    for nav, heading, name in [
        ("Keywords", "Keywords", "keywords"),
        ("Contacts", "Contacts", "contacts"),
        ("Block list", "Block list", "blocklist"),
        ("Flows", "Flows and surveys", "flows"),
    ]:
        page.click(f"nav >> text={nav}")
        expect(page.locator("h1")).to_contain_text(heading)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    blocklist.block(account, "+46731234560", "keyword", evidence=Evidence(text="STOPP"))
    page.click("nav >> text=Block list")
    page.click("text=+46731234560")
    expect(page.locator("h1")).to_have_text("Consent of +46731234560")
    expect(page.locator("#consent-events tbody tr")).to_have_count(1)
    expect(page.locator("#consent-events")).to_contain_text("STOPP")
    page.screenshot(path=str(shots / "consent.png"), full_page=True)

    page.click("text=Security")
    expect(page.locator("h1")).to_contain_text("Two-factor login")
    expect(page.locator(".qr svg")).to_be_visible()
    page.screenshot(path=str(shots / "security.png"), full_page=True)

    page.click("nav >> text=API docs")
    expect(page.locator("h1", has_text="smsbot business API")).to_be_visible(timeout=20_000)
    expect(page.get_by_text("Encoding, segments, price and balance after").first).to_be_attached()
    page.screenshot(path=str(shots / "api-docs.png"))
    assert all("redoc.ly" in url for url in page.outside_requests)  # at most Redoc's own logo, refused


def test_a_user_makes_and_deletes_a_weekly_schedule(page, live_server, shots):
    account = setup_account()
    Account.update(timezone="Europe/Stockholm").where(Account.id == account.id).execute()
    group = Group.create(account=account, name="VIP", name_key="vip")
    GroupMember.create(group=group, contact=Contact.create(account=account, phone="+46731234567"))
    make_user(account, "ann@acme.se", role="user")
    log_in(page, "ann@acme.se")

    page.click("nav >> text=Schedules")
    expect(page.locator("h1")).to_contain_text("Schedules")
    form = page.locator("#schedule-form")
    form.locator("textarea[name=text]").fill("Fresh bread on the shelves!")
    form.locator("select[name=frequency]").select_option("weekly")
    form.locator("input[name=days][value=mon]").check()
    form.locator("input[name=days][value=thu]").check()
    form.locator("input[name=time]").fill("09:00")
    form.locator("input[name=start_date]").fill("2030-03-28")
    form.locator("input[name=count]").fill("3")
    form.locator("button:has-text('Create schedule')").click()
    expect(page.locator(".flash.ok")).to_contain_text("made: its first run is 2030-03-28 09:00 Europe/Stockholm.")
    row = page.locator("#schedules tbody tr").first
    expect(row).to_contain_text("Weekly on Mon, Thu at 09:00")
    expect(row).to_contain_text("2030-03-28 08:00:00 UTC")  # still CET: summer time starts on 2030-03-31
    expect(row).to_contain_text("0 of 3")
    page.screenshot(path=str(shots / "schedules.png"), full_page=True)

    row.locator("button:has-text('Delete')").click()
    expect(page.locator(".flash.ok")).to_contain_text("deleted: no more runs")
    expect(page.locator("#schedules tbody")).to_contain_text("No schedules yet.")
    assert Schedule.select().count() == 0


def test_an_admin_replays_a_dead_letter_and_reads_the_audit_log(app, page, httpserver, run_worker, shots):
    """A forward fails against a bot that is down; the admin changes a keyword, previews a tracked-links
    send, replays the dead letter from /console/deliveries once the bot is back, and reads /console/audit."""
    from werkzeug import Request, Response

    from bot.carriers import InboundSms
    from bot.pipeline.inbound import receive
    from models import Effect

    app.config.update(FORWARD_ALLOW_PRIVATE=True, FORWARD_TIMEOUT_SECONDS=1, FORWARD_RETRY_INTERVALS=[0])
    state = {"up": False}

    def bot(request: Request) -> Response:
        if not state["up"]:
            return Response("<html><h1>502 Bad Gateway</h1></html>", status=502, content_type="text/html")
        return Response('{"reply": "Your order ships today"}', content_type="application/json")

    httpserver.expect_request("/bot").respond_with_handler(bot)
    account = setup_account()
    number = account.numbers[0]
    number.forward_url = httpserver.url_for("/bot")
    number.save()
    make_user(account, "adm@acme.se", role="admin")
    receive(number.carrier, InboundSms("d1", PHONE, NUMBER, "Where is order 1234?"))
    for _ in range(3):
        run_worker(with_scheduler=True)
    effect = Effect.get()
    assert effect.state == "failed"

    log_in(page, "adm@acme.se")
    page.click("nav >> text=Keywords")
    page.fill("input[name=word]", "hours")
    page.fill("input[name=reply]", "Open 9-17")
    page.click("button:has-text('Add')")
    expect(page.locator("table.list")).to_contain_text("HOURS")

    page.click("nav >> text=Send")
    page.fill("textarea[name=to]", PHONE)
    page.fill("textarea[name=text]", "Your order: https://shop.example/orders/" + "a" * 150)
    expect(page.locator("#pv-segments")).to_have_text("2")
    page.check("input[name=track_links]")
    expect(page.locator("#pv-segments")).to_have_text("1")  # counted as the short link it becomes
    page.screenshot(path=str(shots / "send-tracked.png"), full_page=True)

    page.click("nav >> text=Deliveries")
    card = page.locator(f"#delivery-{effect.id}")
    expect(card).to_contain_text("Where is order 1234?")
    expect(card.locator("table.tries tbody tr")).to_have_count(2)
    expect(card.locator("pre.answer").first).to_have_text("<html><h1>502 Bad Gateway</h1></html>")
    page.screenshot(path=str(shots / "deliveries.png"), full_page=True)
    state["up"] = True
    card.locator("button:has-text('Replay')").click()
    expect(page.locator(".flash.ok")).to_contain_text(f"Delivery {effect.id} is on its way again.")
    run_worker(with_scheduler=True)
    assert Effect.get_by_id(effect.id).state == "done"

    page.click("nav >> text=Audit")
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("delivery.replay")
    expect(rows.nth(0)).to_contain_text("failed → pending")
    expect(rows.nth(1)).to_contain_text("keyword.create")
    expect(rows.nth(1)).to_contain_text(f"HOURS on {NUMBER}")
    expect(rows.nth(1)).to_contain_text("adm@acme.se")
    page.screenshot(path=str(shots / "audit.png"), full_page=True)
    assert page.outside_requests == []
