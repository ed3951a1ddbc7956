"""Contact imports at scale: POST /contacts/import answers 202 with the import's resource, a real worker
imports the file in chunks, GET /imports/<id> shows progress and row errors; over 20 MiB is a 413; the
sweeper resumes an import whose job was lost or whose worker died."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from bot import imports
from bot.apikeys import create_key
from bot.pipeline.jobs import sweep
from bot.redis_conn import get_redis
from models import Contact, ContactImport, Group, GroupMember, ImportFile, utcnow

MB = 1024 * 1024


@pytest.fixture
def shop(make_account):
    return make_account(name="Shop")


def auth(account, role: str = "user") -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(account, role)[1]}"}


def post_csv(client, account, data: bytes | str, query: str = "", **extra: str):
    headers = {**auth(account), "Content-Type": "text/csv", **extra}
    return client.post(f"/api/v1/contacts/import{query}", data=data, headers=headers)


def progress(client, account, import_id: int) -> dict:
    answer = client.get(f"/api/v1/imports/{import_id}", headers=auth(account, "viewer"))
    assert answer.status_code == 200, answer.json
    return answer.json


def groups_of(phone: str) -> list[str]:
    contact = Contact.get(Contact.phone == phone)
    return sorted(g.name for g in Group.select().join(GroupMember).where(GroupMember.contact == contact))


def test_the_import_is_accepted_with_202_and_location_and_run_by_a_worker(client, shop, run_worker):
    Contact.create(account=shop, phone="+46701112233", first_name="Old", last_name="Name")
    data = (
        "phone,first_name,last_name,groups\n"
        "0731234567,Anna,Berg,VIP;News\n"
        "0701112233,,Ny,news\n"  # existing contact: an empty cell keeps the first name
        "\n"  # a blank line is no row
        "+46731234567,Annie,,Gold\n"  # the same phone again: updated, groups add up
    )
    answer = post_csv(client, shop, data)
    assert answer.status_code == 202, answer.json
    assert answer.headers["Location"] == f"/api/v1/imports/{answer.json['id']}"
    assert answer.json["state"] == "pending" and answer.json["rows_total"] == 3 and answer.json["rows_done"] == 0
    assert Contact.select().count() == 1  # nothing written by the request itself

    run_worker()
    result = progress(client, shop, answer.json["id"])
    assert {k: result[k] for k in ("state", "rows_total", "rows_done", "imported", "updated", "skipped")} == {
        "state": "done",
        "rows_total": 3,
        "rows_done": 3,
        "imported": 1,
        "updated": 2,
        "skipped": 0,
    }
    assert result["errors"] == [] and result["finished_at"]
    anna = Contact.get(Contact.phone == "+46731234567")
    assert (anna.first_name, anna.last_name) == ("Annie", "Berg")
    assert groups_of("+46731234567") == ["Gold", "News", "VIP"]
    old = Contact.get(Contact.phone == "+46701112233")
    assert (old.first_name, old.last_name, groups_of(old.phone)) == ("Old", "Ny", ["News"])
    assert ImportFile.select().count() == 0  # the file goes when the import ends


CSV_WITH_A_BAD_ROW = "phone,first_name,groups\n0731234567,Anna,vip\nnot-a-phone,Bo,\n0701112233,Cy,vip\n"


def test_a_bad_row_fails_the_whole_import_and_writes_nothing(client, shop, run_worker):
    answer = post_csv(client, shop, CSV_WITH_A_BAD_ROW)
    assert answer.status_code == 202
    run_worker()
    result = progress(client, shop, answer.json["id"])
    assert (result["state"], result["imported"], result["skipped"], result["rows_done"]) == ("failed", 0, 1, 0)
    assert result["errors"] == [{"row": 3, "field": "phone", "message": "'not-a-phone' is not a phone number"}]
    assert Contact.select().count() == 0 and Group.select().count() == 0


def test_skip_invalid_imports_the_good_rows_and_counts_the_bad(client, shop, run_worker):
    answer = post_csv(client, shop, CSV_WITH_A_BAD_ROW, "?skip_invalid=true")
    run_worker()
    result = progress(client, shop, answer.json["id"])
    assert (result["state"], result["imported"], result["skipped"], result["rows_done"]) == ("done", 2, 1, 3)
    assert result["errors"] == [{"row": 3, "field": "phone", "message": "'not-a-phone' is not a phone number"}]
    assert sorted(c.phone for c in Contact.select()) == ["+46701112233", "+46731234567"]
    assert groups_of("+46701112233") == ["vip"]


def test_the_file_may_be_20_mib_and_no_more_while_other_bodies_stay_at_64_kib(client, shop):
    row = "0731234567,Anna,Berg,vip\n"
    big = "phone,first_name,last_name,groups\n" + row * (MB // len(row))  # 1 MiB: far over 64 KiB
    assert post_csv(client, shop, big).status_code == 202
    too_big = "phone,first_name,last_name,groups\n" + row * (20 * MB // len(row) + 1)
    refused = post_csv(client, shop, too_big)
    assert refused.status_code == 413 and refused.json["error"]["code"]
    assert ContactImport.select().count() == 1
    contact = {"phone": "0731234567", "first_name": "x" * 70_000}
    other = client.post("/api/v1/contacts", json=contact, headers=auth(shop))
    assert other.status_code == 413 and other.json["error"]["code"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"first_name\nAnna\n", "phone"),
        ("phone\n0731234567\n".encode("utf-16"), "file"),
        (b"phone\n07\x0012\n", "file"),
    ],
)
def test_a_file_that_cannot_be_read_is_a_422_and_starts_nothing(client, shop, data, field):
    answer = post_csv(client, shop, data)
    assert (answer.status_code, answer.json["error"]["field"]) == (422, field)
    assert ContactImport.select().count() == 0


def test_an_import_belongs_to_its_account(client, shop, make_account):
    other = make_account(name="Other")
    mine = post_csv(client, shop, "phone\n0731234567\n").json["id"]
    post_csv(client, other, "phone\n0731234568\n")
    assert client.get(f"/api/v1/imports/{mine}", headers=auth(other, "viewer")).status_code == 404
    listed = client.get("/api/v1/imports", headers=auth(shop, "viewer"))
    assert [item["id"] for item in listed.json["imports"]] == [mine] and listed.json["next"] is None


def test_an_idempotency_key_starts_one_import(client, shop):
    first = post_csv(client, shop, "phone\n0731234567\n", **{"Idempotency-Key": "k1"})
    again = post_csv(client, shop, "phone\n0731234567\n", **{"Idempotency-Key": "k1"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json["id"] == first.json["id"] and again.headers["Location"] == first.headers["Location"]
    assert ContactImport.select().count() == 1


def test_the_sweeper_resumes_an_import_whose_worker_died(app, client, shop, run_worker):
    app.config.update(IMPORT_CHUNK=2, IMPORT_SLICE_SECONDS=0)
    data = "phone,first_name,groups\n" + "".join(f"07312345{i:02d},N{i},g{i % 2}\n" for i in range(7))
    import_id = post_csv(client, shop, data).json["id"]
    assert imports.run_import(import_id) == "slice"  # one chunk committed, the next job enqueued
    get_redis(app).flushdb()  # ... and lost, and the worker died holding a lease
    ContactImport.update(lease_until=utcnow() - timedelta(seconds=1)).execute()
    assert progress(client, shop, import_id)["rows_done"] == 2

    assert sweep()["imports"] == 1
    assert sweep()["imports"] == 0  # enqueued once
    run_worker()
    result = progress(client, shop, import_id)
    assert (result["state"], result["rows_done"], result["imported"], result["updated"]) == ("done", 7, 7, 0)
    assert Contact.select().count() == 7 and groups_of("+46731234506") == ["g0"]


def test_a_job_lost_before_it_started_is_enqueued_again(app, client, shop, run_worker):
    import_id = post_csv(client, shop, "phone\n0731234567\n").json["id"]
    get_redis(app).flushdb()
    assert sweep()["imports"] == 0  # within the grace period its job may still come
    ContactImport.update(updated_at=utcnow() - timedelta(minutes=5)).execute()
    assert sweep()["imports"] == 1
    run_worker()
    assert progress(client, shop, import_id)["state"] == "done"


def test_a_100000_row_file_imports_through_the_worker(client, shop, run_worker):
    rows = 100_000
    lines = [f"+4673{i:07d},First{i},Last{i},group{i % 10};all\n" for i in range(rows)]
    began = time.monotonic()
    answer = post_csv(client, shop, "phone,first_name,last_name,groups\n" + "".join(lines))
    assert answer.status_code == 202 and answer.json["rows_total"] == rows
    run_worker()
    result = progress(client, shop, answer.json["id"])
    elapsed = time.monotonic() - began
    assert (result["state"], result["rows_total"], result["rows_done"]) == ("done", rows, rows)
    assert (result["imported"], result["updated"], result["skipped"]) == (rows, 0, 0)
    assert Contact.select().where(Contact.account == shop).count() == rows
    sample = Contact.get(Contact.phone == "+46730054321")
    assert (sample.first_name, sample.last_name) == ("First54321", "Last54321")
    assert groups_of(sample.phone) == ["all", "group1"]
    assert GroupMember.select().count() == 2 * rows
    assert elapsed < 60, f"took {elapsed:.1f} s"
