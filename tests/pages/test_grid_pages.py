"""The grid worker's pages through the test client: the grid's wishes triaged (accepted into a
draft demand, or declined with a reason after confirming), a need recorded on a resident's
behalf with errors next to the fields, the grid's items red/amber/green by deadline, listed,
searched and downloaded, and a verified item confirmed on the resident's behalf. Another grid's
worker sees and changes none of it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import NOW
from tests.factories import category_id, claim, make_demand
from tests.pages.helpers import alerts, csrf, field_error, sign_in
from tests.pages.test_resident_pages import verified_for_res_a1
from web.models import DemandItem
from web.services import demands, wishes
from web.services.base import utcnow

pytestmark = pytest.mark.db


def signed_in(client, name: str = "grid_a1") -> str:
    return csrf(sign_in(client, name).text)


def wish(world, name: str = "res_a1", title: str = "楼道灯坏了", with_category: bool = True):
    return wishes.submit_wish(world.session, actor=world.actor(name), title=title,
                              description="三楼", now=NOW,
                              category_id=category_id(world.session) if with_category else None)


def demand_row(world, demand_id: int) -> DemandItem:
    row = world.session.get(DemandItem, demand_id)
    world.session.refresh(row)
    return row


# ---- home and triage --------------------------------------------------------------------------

def test_a_grid_worker_lands_on_the_grid_and_sees_only_the_grids_wishes(client, world):
    wish(world, "res_a1", "楼道灯坏了")
    wish(world, "res_b1", "别的网格的心愿")
    page = sign_in(client, "grid_a1")
    assert page.request.path == "/grid"
    for label in ("我的网格", "网格事项", "登记需求"):
        assert label in page.text
    assert "楼道灯坏了" in page.text and "别的网格的心愿" not in page.text


def test_accepting_a_wish_records_a_draft_demand_for_the_resident(client, world):
    mine = wish(world)
    token = signed_in(client)
    done = client.post(f"/grid/wishes/{mine.id}/accept", data={
        "category_id": str(category_id(world.session, "repairs")), "urgency": "urgent",
        "deadline": "2026-12-01T18:00", "csrf_token": token}, follow_redirects=True)
    world.session.refresh(mine)
    assert mine.status == "accepted" and mine.demand_id is not None
    assert "微心愿已受理" in " ".join(alerts(done.text))
    demand = demand_row(world, mine.demand_id)
    assert (demand.status, demand.source, demand.urgency) == ("draft", "micro_wish", "urgent")
    assert demand.beneficiary_user_id == world.users["res_a1"]
    assert demand.category_id == category_id(world.session, "repairs")
    assert demand.deadline == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai


def test_a_wish_accepted_without_a_kind_is_refused_and_stays_waiting(client, world):
    mine = wish(world, with_category=False)
    token = signed_in(client)
    refused = client.post(f"/grid/wishes/{mine.id}/accept", data={
        "category_id": "", "csrf_token": token}, follow_redirects=True)
    assert any("请检查" in a for a in alerts(refused.text))
    world.session.refresh(mine)
    assert mine.status == "submitted" and world.session.query(DemandItem).count() == 2


def test_declining_a_wish_asks_first_and_needs_a_reason(client, world):
    mine = wish(world)
    token = signed_in(client)
    asked = client.post(f"/grid/wishes/{mine.id}/decline", data={
        "reason": "已由家属解决", "csrf_token": token})
    assert "确定不受理该微心愿" in asked.text
    no_reason = client.post(f"/grid/wishes/{mine.id}/decline", data={
        "reason": " ", "csrf_token": token, "confirmed": "1"}, follow_redirects=True)
    assert any("请填写理由" in a for a in alerts(no_reason.text))
    world.session.refresh(mine)
    assert mine.status == "submitted"
    client.post(f"/grid/wishes/{mine.id}/decline", data={
        "reason": "已由家属解决", "csrf_token": token, "confirmed": "1"})
    world.session.refresh(mine)
    assert (mine.status, mine.decision_reason) == ("declined", "已由家属解决")


def test_another_grids_worker_cannot_accept_or_decline_the_wish(client, world):
    mine = wish(world)
    token = signed_in(client, "grid_b1")
    assert client.post(f"/grid/wishes/{mine.id}/accept", data={
        "category_id": str(category_id(world.session)), "csrf_token": token}).status_code == 404
    assert client.post(f"/grid/wishes/{mine.id}/decline", data={
        "reason": "x", "csrf_token": token, "confirmed": "1"}).status_code == 404
    world.session.refresh(mine)
    assert mine.status == "submitted"


def test_someone_who_is_not_a_grid_worker_is_refused_the_grid_pages(client, world):
    sign_in(client, "res_a1")
    for path in ("/grid", "/grid/items", "/grid/demands/new", f"/grid/items/{world['d_a1']}"):
        assert client.get(path).status_code == 403, path


def published_at(world, when, title: str) -> int:
    """An item of grid g_a1 published at `when`: its service-level clocks start then."""
    demand_id = make_demand(world.session, world, "a1", "sec_a1", grid="g_a1", title=title,
                            publish=False)
    demands.publish_demand(world.session, actor=world.actor("sec_a1"), demand_id=demand_id,
                           now=when)
    return demand_id


def test_the_home_shows_the_grids_items_red_amber_green_by_service_level(client, world):
    now = utcnow()  # the page's own clock: 24 h to accept, amber with less than 6 h left
    late = published_at(world, now - timedelta(hours=30), "已经超期")
    soon = published_at(world, now - timedelta(hours=20), "明天到期")
    fresh = published_at(world, now, "刚刚发布")
    signed_in(client)
    page = client.get("/grid").text
    assert "已经超期" in page and "明天到期" in page
    section = page[page.index('data-testid="due"'):]
    assert section.index("已经超期") < section.index("明天到期") < section.index("刚刚发布")
    for demand_id in (late, soon, fresh):
        assert f'href="/grid/items/{demand_id}"' in section
    assert 'data-rag="red"' in section and 'data-rag="amber"' in section
    assert 'data-rag="green"' in section


# ---- recording a need on a resident's behalf --------------------------------------------------

def test_a_need_recorded_for_a_resident_becomes_a_draft_in_the_grid(client, world):
    token = signed_in(client)
    form = client.get("/grid/demands/new")
    assert 'type="datetime-local"' in form.text and 'for="deadline"' in form.text
    done = client.post("/grid/demands/new", data={
        "title": "帮李大爷买药", "description": "每周一次", "quantity_needed": "2",
        "category_id": str(category_id(world.session, "health")), "grid_id": str(world["g_a1"]),
        "urgency": "urgent", "window_start": "2026-12-01T09:00", "window_end": "2026-12-01T11:00",
        "deadline": "2026-12-01T12:00", "beneficiary_name": "李大爷",
        "beneficiary_phone": "13700000000", "beneficiary_address": "5号楼",
        "beneficiary_vulnerable": "1", "required_skills": "驾驶,陪护", "csrf_token": token},
        follow_redirects=True)
    stored = world.session.query(DemandItem).filter_by(title="帮李大爷买药").one()
    assert done.request.path == f"/grid/items/{stored.id}"
    assert (stored.status, stored.source, stored.grid_id) == ("draft", "grid_worker",
                                                              world["g_a1"])
    assert stored.quantity_needed == 2 and stored.beneficiary_vulnerable
    assert sorted(stored.required_skills) == sorted(["驾驶", "陪护"])
    assert stored.window_start == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert "李大爷" in done.text and "13700000000" in done.text


def test_a_need_with_errors_is_refused_next_to_each_field_and_nothing_is_recorded(client, world):
    token = signed_in(client)
    before = world.session.query(DemandItem).count()
    refused = client.post("/grid/demands/new", data={
        "title": "", "quantity_needed": "0", "category_id": "", "grid_id": str(world["g_a1"]),
        "deadline": "明天", "beneficiary_name": "李大爷", "csrf_token": token})
    assert refused.status_code == 422
    assert field_error(refused.text, "title") == "请填写此项。"
    assert field_error(refused.text, "category_id") == "请填写此项。"
    assert field_error(refused.text, "quantity_needed")
    assert field_error(refused.text, "deadline") == "请输入日期和时间。"
    assert 'value="李大爷"' in refused.text
    backwards = client.post("/grid/demands/new", data={
        "title": "帮李大爷买药", "quantity_needed": "1", "grid_id": str(world["g_a1"]),
        "category_id": str(category_id(world.session)), "window_start": "2026-12-01T11:00",
        "window_end": "2026-12-01T09:00", "csrf_token": token})
    assert backwards.status_code == 422
    assert field_error(backwards.text, "window_end") == "结束时间早于开始时间。"
    assert world.session.query(DemandItem).count() == before


def test_a_need_for_another_grid_is_refused_and_nothing_is_recorded(client, world):
    token = signed_in(client)
    before = world.session.query(DemandItem).count()
    refused = client.post("/grid/demands/new", data={
        "title": "别处的事", "quantity_needed": "1",
        "category_id": str(category_id(world.session)), "grid_id": str(world["g_b1"]),
        "csrf_token": token})
    assert refused.status_code == 422 and field_error(refused.text, "grid_id")
    assert world.session.query(DemandItem).count() == before


# ---- the grid's items -------------------------------------------------------------------------

def test_the_items_list_is_the_grids_and_filters_searches_and_downloads(client, world):
    make_demand(world.session, world, "a1", "sec_a1", grid="g_a1", title="修理路灯",
                code="repairs", urgency="urgent")
    signed_in(client)
    page = client.get("/grid/items").text
    assert "修理路灯" in page and "独居老人探访" in page
    assert f'data-testid="item-{world["d_b1"]}"' not in page
    assert "独居老人探访" not in client.get("/grid/items?q=路灯").text
    urgent = client.get("/grid/items?urgency=urgent").text
    assert "修理路灯" in urgent and "独居老人探访" not in urgent
    kind = client.get(f"/grid/items?category_id={category_id(world.session, 'repairs')}").text
    assert "修理路灯" in kind and "独居老人探访" not in kind
    assert "修理路灯" not in client.get("/grid/items?status=closed").text
    rows = list(csv.reader(io.StringIO(client.get("/grid/items?format=csv&q=路灯")
                                       .data.decode("utf-8-sig"))))
    assert rows[0][:2] == ["编号", "事项"] and [r[1] for r in rows[1:]] == ["修理路灯"]


def test_another_grids_item_is_not_found(client, world):
    signed_in(client)
    assert client.get(f"/grid/items/{world['d_b1']}").status_code == 404


def test_the_grid_worker_confirms_a_verified_item_on_the_residents_behalf(client, world):
    demand_id = verified_for_res_a1(world)
    token = signed_in(client)
    page = client.get(f"/grid/items/{demand_id}")
    assert "代居民确认办结" in page.text and 'id="rating-5"' in page.text
    refused = client.post(f"/grid/items/{demand_id}", data={
        "comment": "好", "csrf_token": token, "confirmed": "1"})
    assert refused.status_code == 422 and field_error(refused.text, "rating")
    assert demand_row(world, demand_id).status == "verified"
    client.post(f"/grid/items/{demand_id}", data={
        "rating": "5", "comment": "老人很满意", "csrf_token": token, "confirmed": "1"})
    row = demand_row(world, demand_id)
    assert (row.status, row.rating, row.rated_by) == ("closed", 5, world.users["grid_a1"])


def test_another_grids_worker_cannot_confirm_the_item(client, world):
    demand_id = verified_for_res_a1(world)
    token = signed_in(client, "grid_b1")
    refused = client.post(f"/grid/items/{demand_id}", data={
        "rating": "5", "csrf_token": token, "confirmed": "1"})
    assert refused.status_code == 404
    assert demand_row(world, demand_id).status == "verified"


def test_a_claimed_item_shows_its_steps(client, world):
    claim(world, "x", "d_a1", 1)
    signed_in(client)
    page = client.get(f"/grid/items/{world['d_a1']}")
    assert page.status_code == 200 and "已登记" in page.text and "王奶奶" in page.text
