"""Every role's lists page in the database and read search words there: the unit's work queue
(first rows, totals, links) and its work list; the grid worker's home and the grid's wishes;
the resident's wishes, activities and sign-ups; the clerk's stock movements; the secretary's
demand list by due time and light; the subdistrict's red list searched by unit name."""

from __future__ import annotations

import re

import pytest

from tests.conftest import NOW
from tests.factories import category_id, claim, make_demand
from tests.integration.lovebank_helpers import goods
from tests.integration.test_figures import build_known
from tests.pages.helpers import csrf, sign_in
from tests.pages.test_paging_queue import rows_of, section
from tests.pages.test_resident_pages import become_volunteer, coming_session
from web.models import Assignment, MicroWish
from web.services import activities, assignments, wishes

pytestmark = pytest.mark.db


def new_items(world, n: int, prefix: str = "事项", grid: str | None = None) -> list[str]:
    keys = []
    for i in range(n):
        key = f"d_{prefix}_{i}"
        world.ids[key] = make_demand(world.session, world, "a1", "sec_a1", grid=grid,
                                     title=f"{prefix}{i:02d}")
        keys.append(key)
    return keys


# ---- the unit -------------------------------------------------------------------------------

def test_the_units_queue_shows_the_first_rows_how_many_in_all_and_links_to_each_list(
        client, world):
    for key in new_items(world, 12):
        claim(world, "x", key)
    agreed = claim(world, "x", "d_a1")
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                              assignment_id=agreed.id, now=NOW)
    home = sign_in(client, "unit_x").text
    claims = section(home, "claims")
    assert 'data-testid="claims-total">13<' in claims and claims.count("<li") == 10
    assert 'href="/unit/work?origin=claim"' in claims
    to_report = section(home, "to-report")
    assert 'data-testid="to-report-total">1<' in to_report
    assert f'data-testid="work-{agreed.id}"' in to_report
    assert 'href="/unit/work?status=to_report"' in to_report
    assert 'href="/unit/work?status=offered"' in section(home, "dispatches")


def test_the_units_work_list_pages_and_searches_in_the_database(client, world):
    for key in new_items(world, 23):
        claim(world, "x", key)
    sign_in(client, "unit_x")
    first = client.get("/unit/work").text
    assert "共 23 条,第 1 / 2 页" in first and first.count('data-testid="work-') == 20
    second = client.get("/unit/work?page=2").text
    assert second.count('data-testid="work-') == 3
    found = client.get("/unit/work?q=事项07").text
    assert "共 1 条" in found and "事项07" in found
    assert "共 0 条" in client.get("/unit/work?status=to_report").text
    rows = rows_of(client.get("/unit/work?format=csv&q=事项1").data)
    assert sorted(r[1] for r in rows[1:]) == [f"事项1{n}" for n in range(10)]


def test_work_to_report_is_the_leads_agreed_share_only(client, world):
    lead = claim(world, "x", "d_a1")
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                              assignment_id=lead.id, now=NOW)
    helper = claim(world, "y", "d_a1")
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                              assignment_id=helper.id, now=NOW)
    world.session.expire_all()
    assert world.session.get(Assignment, helper.id).is_lead is False
    sign_in(client, "unit_y")
    assert "共 0 条" in client.get("/unit/work?status=to_report").text
    sign_in(client, "unit_x")
    listed = client.get("/unit/work?status=to_report").text
    assert "共 1 条" in listed and f'data-testid="report-{lead.id}"' in listed
    assert "Unit y" in listed  # the team, read in one go for the page


# ---- the grid worker ----------------------------------------------------------------------------

def test_the_grid_home_counts_its_wishes_and_items_and_links_to_their_lists(client, world):
    for n in range(12):
        wishes.submit_wish(world.session, actor=world.actor("res_a1"), title=f"心愿{n:02d}",
                           now=NOW)
    new_items(world, 11, grid="g_a1")
    home = sign_in(client, "grid_a1").text
    triage = section(home, "triage")
    assert 'data-testid="wishes-total">12<' in triage
    assert triage.count('data-testid="wish-') == 10
    assert 'href="/grid/wishes?status=submitted"' in triage
    due = section(home, "due")
    assert 'data-testid="items-total">12<' in due  # d_a1 and the eleven
    link = re.search(r'href="(/grid/items\?[^"]+)" data-testid="items-all"', due).group(1)
    assert "共 12 条" in client.get(link.replace("&amp;", "&")).text


def test_the_grids_wish_list_pages_searches_and_declines_from_the_list(client, world):
    for n in range(21):
        wishes.submit_wish(world.session, actor=world.actor("res_a1"), title=f"心愿{n:02d}",
                           now=NOW)
    wishes.submit_wish(world.session, actor=world.actor("res_b1"), title="别的网格", now=NOW)
    sign_in(client, "grid_a1")
    first = client.get("/grid/wishes?status=submitted").text
    assert "共 21 条,第 1 / 2 页" in first and "别的网格" not in first
    assert client.get("/grid/wishes?status=submitted&page=2").text.count(
        'data-testid="wish-') == 1
    found = client.get("/grid/wishes?q=心愿07").text
    assert "共 1 条" in found
    kind = client.get(f"/grid/wishes?category_id={category_id(world.session)}").text
    assert "共 0 条" in kind  # these wishes name no kind
    target = int(re.search(r'data-testid="wish-(\d+)"', found).group(1))
    back = "/grid/wishes?q=心愿07"
    client.post(f"/grid/wishes/{target}/decline", data={
        "reason": "已由物业处理", "confirmed": "1", "next": back, "csrf_token": csrf(found)})
    world.session.expire_all()
    assert world.session.get(MicroWish, target).status == "declined"
    declined = client.get("/grid/wishes?status=declined").text
    assert "已由物业处理" in declined and "accept-wish" not in declined
    rows = rows_of(client.get("/grid/wishes?format=csv").data)
    assert len(rows) == 1 + 21


# ---- the resident --------------------------------------------------------------------------------

def test_my_wishes_page_in_the_database(client, world):
    for n in range(22):
        wishes.submit_wish(world.session, actor=world.actor("res_a1"), title=f"心愿{n:02d}",
                           description="门口" if n == 3 else "", now=NOW)
    sign_in(client, "res_a1")
    assert "共 22 条,第 1 / 2 页" in client.get("/me/wishes").text
    assert len(re.findall(r'data-testid="wish-\d+"', client.get("/me/wishes?page=2").text)) == 2
    assert "共 1 条" in client.get("/me/wishes?q=门口").text


def test_coming_activities_and_my_sign_ups_page_and_search_in_the_database(client, world):
    become_volunteer(world)
    made = [coming_session(world, title=f"活动{n:02d}", headcount=3) for n in range(22)]
    for act in made[:21]:
        activities.sign_up(world.session, actor=world.actor("res_a1"), session_id=act.id)
    sign_in(client, "res_a1")
    coming = client.get("/me/activities").text
    assert "共 22 条,第 1 / 2 页" in coming
    assert coming.count('data-testid="my-status"') == 20
    assert "还剩 2 个名额(共 3 个)" in coming
    last = client.get("/me/activities?page=2").text
    assert last.count('data-testid="sign-up"') == 1  # the one I have not signed up for
    assert "共 1 条" in client.get("/me/activities?q=活动05").text
    mine = client.get("/me/activities/mine").text
    assert "共 21 条,第 1 / 2 页" in mine
    assert "共 1 条" in client.get("/me/activities/mine?q=活动05&status=signed_up").text
    assert "共 0 条" in client.get("/me/activities/mine?status=waitlisted").text
    rows = rows_of(client.get("/me/activities/mine?format=csv").data)
    assert len(rows) == 1 + 21 and rows[1][0] == "活动20"  # newest first


# ---- the clerk ------------------------------------------------------------------------------------

def test_the_clerk_searches_the_stock_movements(client, world):
    goods(world, "大米", stock=5)
    goods(world, "食用油", stock=3)
    sign_in(client, "clerk_a1")
    found = client.get("/counter/movements?q=食用").text
    table = re.search(r'data-testid="movements">(.*?)</table>', found, re.S).group(1)
    assert "食用油" in table and "大米" not in table
    assert 'id="f-q"' in found and "共 1 条" in found
    rows = rows_of(client.get("/counter/movements?format=csv&q=大米").data)
    assert [r[2] for r in rows[1:]] == ["大米"]


# ---- the secretary's books and goods --------------------------------------------------------------

def test_the_books_count_the_goods_and_the_goods_list_pages_searches_and_downloads(
        client, world):
    for n in range(22):
        goods(world, f"商品{n:02d}", stock=1)
    sign_in(client, "sec_a1")
    books = client.get("/secretary/books").text
    shelf = section(books, "goods")
    assert 'data-testid="goods-total">22<' in shelf and 'href="/secretary/goods"' in shelf
    assert shelf.count("<tr>") == 1 + 20
    assert "共 22 条,第 1 / 2 页" in client.get("/secretary/goods").text
    assert "共 1 条" in client.get("/secretary/goods?q=商品07").text
    assert "共 0 条" in client.get("/secretary/goods?kind=service").text
    rows = rows_of(client.get("/secretary/goods?format=csv&q=商品1").data)
    assert sorted(r[1] for r in rows[1:]) == [f"商品1{n}" for n in range(10)]
    sign_in(client, "clerk_a1")
    assert client.get("/secretary/goods").status_code == 403


# ---- the secretary's demand list -------------------------------------------------------------------

def test_the_demand_list_sorts_by_the_next_due_time_and_filters_by_light(client, world):
    from datetime import timedelta

    from web.services import demands
    from web.services.base import utcnow

    now = utcnow()
    for title, published in (("已经超期", now - timedelta(days=30)), ("刚发布", now)):
        made = make_demand(world.session, world, "a1", "sec_a1", title=title, publish=False)
        demands.publish_demand(world.session, actor=world.actor("sec_a1"), demand_id=made,
                               now=published)
    sign_in(client, "sec_a1")
    by_due = client.get("/secretary/demands?sort=next_due").text
    assert by_due.index("已经超期") < by_due.index("独居老人探访") < by_due.index("刚发布")
    red = client.get("/secretary/demands?sla_state=red").text
    assert "共 2 条" in red and "已经超期" in red and "刚发布" not in red
    assert "共 3 条" in client.get("/secretary/demands?sla_state=nonsense").text
    rows = rows_of(client.get("/secretary/demands?format=csv&sort=next_due").data)
    assert [r[1] for r in rows[1:]] == ["已经超期", "独居老人探访", "刚发布"]


# ---- the subdistrict's red list ----------------------------------------------------------------------

def test_the_red_list_is_searched_by_unit_name_and_keeps_each_units_rank(client, world):
    build_known(world)
    sign_in(client, "admin_a")
    found = client.get("/subdistrict/ranking?from=2026-01&to=2026-12&q=unit X").text
    assert re.search(r'data-testid="rank-1">.*?Unit x', found, re.S)
    none = client.get("/subdistrict/ranking?from=2026-01&to=2026-12&q=远方").text
    assert 'data-testid="rank-' not in none
    download = re.search(r'href="([^"]*format=csv[^"]*)"', none).group(1)
    assert "q=%E8%BF%9C%E6%96%B9" in download and "from=2026-01" in download
    rows = rows_of(client.get("/subdistrict/ranking?from=2026-01&to=2026-12&q=远方"
                              "&format=csv").data)
    assert len(rows) == 1
