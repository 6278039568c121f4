"""The secretary's work queue stays short but says how many there are in all, and each section
links to its full list: claims, proposals, reports and micro-wishes, each paged in the
database, filtered, searched (where its service reads words), downloadable, and with each
waiting row's action one click away, coming back to the same page of the list."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from urllib.parse import unquote

import pytest

from tests.conftest import NOW
from tests.factories import category_id, claim, make_demand
from tests.pages.helpers import alerts, csrf, sign_in
from web.models import Assignment, MicroWish, WorkReport
from web.pages.secretary import OPEN_STATES, QUEUE_ROWS
from web.services import assignments, reports, wishes

pytestmark = pytest.mark.db


def rows_of(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def section(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start:html.index("</section>", start)]


def claims_on_new_items(world, n: int, unit: str = "x") -> list[int]:
    """`n` items of a1, each claimed by `unit` (pending: the unit is not paired)."""
    ids = []
    for i in range(n):
        key = f"d_many_{unit}_{i}"
        world.ids[key] = make_demand(world.session, world, "a1", "sec_a1", title=f"探访第{i:02d}户")
        ids.append(claim(world, unit, key).id)
    return ids


def test_the_queue_shows_the_first_claims_says_how_many_in_all_and_links_to_them(client, world):
    claims_on_new_items(world, QUEUE_ROWS + 5)
    page = sign_in(client, "sec_a1").text
    claims = section(page, "claims")
    assert claims.count('data-testid="claim-') == QUEUE_ROWS
    assert 'data-testid="claims-total">15<' in claims and "查看全部(15 条)" in claims
    assert 'href="/secretary/claims?status=pending"' in claims


def test_the_full_claim_list_pages_in_the_database_and_keeps_its_filters(client, world):
    made = claims_on_new_items(world, 25)
    sign_in(client, "sec_a1")
    first = client.get("/secretary/claims?status=pending")
    assert first.status_code == 200 and "共 25 条,第 1 / 2 页" in first.text
    assert 'href="/secretary/claims?status=pending&amp;page=2"' in first.text
    second = client.get("/secretary/claims?status=pending&page=2").text
    assert "第 2 / 2 页" in second
    shown = {int(n) for n in re.findall(r'data-testid="claim-(\d+)"', second)}
    assert shown == set(made[:5])  # newest first: the five made first are on page 2


def test_the_claim_list_is_searched_filtered_and_downloaded(client, world):
    claims_on_new_items(world, 3, "x")
    claims_on_new_items(world, 2, "y")
    other = make_demand(world.session, world, "a2", "sec_a2", title="别的社区的事项")
    world.ids["d_other"] = other
    claim(world, "x", "d_other")
    sign_in(client, "sec_a1")
    by_unit = client.get("/secretary/claims?q=Unit y").text
    assert "共 2 条" in by_unit and "别的社区的事项" not in by_unit
    by_title = client.get("/secretary/claims?q=第01户").text
    assert "共 2 条" in by_title  # one claim by each unit on 探访第01户
    assert "共 0 条" in client.get("/secretary/claims?origin=dispatch").text
    assert "共 5 条" in client.get("/secretary/claims?status=nonsense").text
    rows = rows_of(client.get("/secretary/claims?format=csv&q=Unit x").data)
    assert rows[0][:3] == ["编号", "事项", "单位"]
    assert len(rows) == 1 + 3 and {r[2] for r in rows[1:]} == {"Unit x"}
    xlsx = client.get("/secretary/claims?format=xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


def test_approving_from_the_full_list_comes_back_to_the_same_page_of_it(client, world):
    made = claims_on_new_items(world, 22)
    sign_in(client, "sec_a1")
    page = client.get("/secretary/claims?status=pending&page=2").text
    target = made[0]
    assert f'action="/secretary/claims/{target}"' in page
    back = "/secretary/claims?status=pending&page=2"
    assert f'name="next" value="{back.replace("&", "&amp;")}"' in page
    done = client.post(f"/secretary/claims/{target}", data={
        "decision": "approve", "next": back, "csrf_token": csrf(page)})
    assert done.status_code == 302 and done.headers["Location"] == back
    world.session.expire_all()
    assert world.session.get(Assignment, target).status == "approved"
    assert "认领已批准。" in alerts(client.get(back).text)


def test_the_lists_are_the_secretarys_own_community_and_hers_alone(client, world):
    claims_on_new_items(world, 2)
    sign_in(client, "sec_a2")
    assert "共 0 条" in client.get("/secretary/claims").text
    sign_in(client, "unit_x")
    for path in ("/secretary/claims", "/secretary/proposals", "/secretary/reports",
                 "/secretary/wishes"):
        assert client.get(path).status_code == 403


# ---- micro-wishes ---------------------------------------------------------------------------

def test_the_wish_list_is_searched_and_a_wish_is_declined_from_it(client, world):
    for n in range(QUEUE_ROWS + 2):
        wishes.submit_wish(world.session, actor=world.actor("res_a1"), title=f"心愿{n:02d}",
                           category_id=category_id(world.session), now=NOW)
    special = wishes.submit_wish(world.session, actor=world.actor("res_a1"),
                                 title="想学用智能手机", now=NOW)
    queue = sign_in(client, "sec_a1").text
    assert 'data-testid="wishes-total">13<' in queue
    assert 'href="/secretary/wishes?status=submitted"' in queue
    found = client.get("/secretary/wishes?status=submitted&q=手机").text
    assert "共 1 条" in found and "想学用智能手机" in found
    back = "/secretary/wishes?status=submitted&q=手机"
    done = client.post(f"/secretary/wishes/{special.id}/decline", data={
        "reason": "请到社区报名", "confirmed": "1", "next": back, "csrf_token": csrf(found)})
    assert unquote(done.headers["Location"]) == back
    world.session.expire_all()
    assert world.session.get(MicroWish, special.id).status == "declined"
    assert "共 0 条" in client.get(back).text
    declined = client.get("/secretary/wishes?status=declined").text
    assert "想学用智能手机" in declined and 'action="/secretary/wishes/' not in declined
    rows = rows_of(client.get("/secretary/wishes?format=csv").data)
    assert len(rows) == 1 + 13


# ---- reports and proposals ------------------------------------------------------------------------

def reported(world, unit: str, key: str) -> WorkReport:
    share = claim(world, unit, key)
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                              assignment_id=share.id, now=NOW)
    return reports.submit_report(
        world.session, actor=world.actor(f"unit_{unit}"), demand_id=world[key],
        started_on=date(2026, 11, 18), ended_on=date(2026, 11, 19),
        volunteers=[{"name": "李四", "phone": "13600000000", "minutes": 90}],
        beneficiaries_served=1, value_fen=1000, now=NOW)


def test_the_report_list_filters_by_status_and_unit_and_verifies_from_the_list(client, world):
    world.ids["d_two"] = make_demand(world.session, world, "a1", "sec_a1", title="第二件")
    by_x = reported(world, "x", "d_a1")
    by_y = reported(world, "y", "d_two")
    queue = sign_in(client, "sec_a1").text
    assert 'data-testid="reports-total">2<' in queue and "志愿者 1 人,共 1.5 小时" in queue
    only_y = client.get(f"/secretary/reports?status=submitted&unit_id={world['y']}").text
    assert f'data-testid="report-{by_y.id}"' in only_y
    assert f'data-testid="report-{by_x.id}"' not in only_y
    back = f"/secretary/reports?status=submitted&unit_id={world['y']}"
    client.post(f"/secretary/reports/{by_y.id}", data={
        "decision": "verify", "confirmed": "1", "next": back, "csrf_token": csrf(only_y)})
    world.session.expire_all()
    assert world.session.get(WorkReport, by_y.id).status == "verified"
    assert "共 1 条" in client.get("/secretary/reports?status=verified").text
    rows = rows_of(client.get("/secretary/reports?format=csv").data)
    assert sorted(r[1] for r in rows[1:]) == ["独居老人探访", "第二件"]
    assert {r[3] for r in rows[1:]} == {"1"} and {r[4] for r in rows[1:]} == {"1.5"}


def test_the_proposal_list_shows_a_runs_proposals_by_status_with_reasons(client, world):
    page = sign_in(client, "sec_a1")
    client.post("/secretary/match", data={"csrf_token": csrf(page.text)})
    queue = client.get("/secretary").text
    total = int(re.search(r'data-testid="proposals-total">(\d+)<', queue).group(1))
    assert total >= 1 and 'href="/secretary/proposals?status=proposed"' in queue
    listed = client.get("/secretary/proposals?status=proposed").text
    assert f"共 {total} 条" in listed and "能够承接该事项" in listed
    assert 'name="q"' in listed  # searched by the item's title or the unit's name
    assert "共 0 条" in client.get("/secretary/proposals?status=approved").text
    rows = rows_of(client.get("/secretary/proposals?format=csv").data)
    assert len(rows) == 1 + total


# ---- items by due time ------------------------------------------------------------------------------

def test_the_due_section_counts_every_unfinished_item_and_links_to_them_by_due_time(
        client, world):
    for n in range(QUEUE_ROWS + 3):
        make_demand(world.session, world, "a1", "sec_a1", title=f"到期{n:02d}")
    queue = sign_in(client, "sec_a1").text
    due = section(queue, "due")
    assert 'data-testid="due-total">14<' in due  # d_a1 and the thirteen
    link = re.search(r'href="(/secretary/demands\?[^"]+)" data-testid="due-all"', due).group(1)
    link = link.replace("&amp;", "&")
    assert "sort=next_due" in link and "status=" in link
    listed = client.get(link).text
    assert "共 14 条" in listed
    draft = make_demand(world.session, world, "a1", "sec_a1", title="草稿", publish=False)
    assert f"/demands/{draft}\"" not in client.get(link).text
    status = OPEN_STATES.replace(",", "%2C")
    assert f'<option value="{OPEN_STATES}" selected' in client.get(
        f"/secretary/demands?status={status}").text
