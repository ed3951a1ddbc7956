"""The schedules page in a real browser (the fixtures of tests/test_console_browser.py): a user makes a
weekly schedule from the form, sees its next run in the account's zone and in UTC, and deletes it."""

from __future__ import annotations

from playwright.sync_api import expect

from models import Account, Contact, Group, GroupMember, Schedule
from tests.console_helpers import make_user, setup_account
from tests.test_console_browser import browser, log_in, page, shots  # noqa: F401  (fixtures)


def test_a_user_makes_and_deletes_a_weekly_schedule(page, live_server, shots):  # noqa: F811
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
    expect(page.locator(".flash.ok")).to_have_text(
        "Schedule 1 made: its first run is 2030-03-28 09:00 Europe/Stockholm."
    )
    row = page.locator("#schedules tbody tr").first
    expect(row).to_contain_text("Weekly on Mon, Thu at 09:00")
    expect(row).to_contain_text("2030-03-28 08:00:00 UTC")  # still CET: summer time starts on 2030-03-31
    expect(row).to_contain_text("0 of 3")
    page.screenshot(path=str(shots / "schedules.png"), full_page=True)

    row.locator("button:has-text('Delete')").click()
    expect(page.locator(".flash.ok")).to_contain_text("Schedule 1 deleted")
    expect(page.locator("#schedules tbody")).to_contain_text("No schedules yet.")
    assert Schedule.select().count() == 0
