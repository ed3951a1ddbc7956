"""The audit log and the failed bot deliveries in a real browser (Debian's Chromium through Playwright,
the fixtures of tests/test_console_browser.py): an admin changes a keyword, a forward fails against a
bot that is down, the admin replays it from /console/deliveries once the bot is back, and /console/audit
shows both changes. Screenshots go to SMSBOT_SCREENSHOT_DIR (else a temporary folder)."""

from __future__ import annotations

from playwright.sync_api import expect
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bot.carriers import InboundSms
from bot.pipeline.inbound import receive
from models import Effect
from tests.console_helpers import NUMBER, PHONE, make_user, setup_account
from tests.test_console_browser import browser, log_in, page, shots  # noqa: F401  (fixtures)


def test_an_admin_replays_a_dead_letter_and_reads_the_audit_log(app, page, httpserver: HTTPServer, run_worker, shots):  # noqa: F811
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
