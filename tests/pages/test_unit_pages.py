"""The co-building unit admin's pages through Flask's test client: the work queue, the resource
list, the demand board and claiming, dispatches, 1+N teams, reporting work done, and the
contribution record with its annual report. Refused input changes nothing; another unit sees
and does nothing on our unit's things."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from tests.factories import category_id, claim, make_resource
from tests.pages.helpers import alerts, csrf, field_error, sign_in
from web.models import Assignment, DemandItem, ResourceItem, WorkReport
from web.services import assignments, reports
from web.services.base import local_date, utcnow

pytestmark = pytest.mark.db


def count(world, model, **where) -> int:
    world.session.expire_all()
    return world.session.scalar(select(func.count()).select_from(model).filter_by(**where))


def token(client, path: str = "/unit") -> str:
    return csrf(client.get(path).text)


def approved_claim(world, unit: str = "x", quantity: int = 1) -> Assignment:
    """A claim of `unit` on d_a1 that the secretary approved (the unit leads if first)."""
    found = claim(world, unit, "d_a1", quantity)
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"), assignment_id=found.id)
    return found


def report_form(client, assignment_id: int, **fields) -> dict:
    today = local_date(utcnow()).isoformat()
    form = {"csrf_token": token(client, "/unit/work"), "rows": "5", "action": "send",
            "started_on": today, "ended_on": today, "beneficiaries_served": "3",
            "value_yuan": "120.50", "summary": "上门探访",
            "v-0-name": "李明", "v-0-phone": "13912345678", "v-0-hours": "2.5"}
    form.update(fields)
    return form


# ---- landing, menu, who may enter ---------------------------------------------------------------

def test_a_unit_admin_lands_on_the_unit_work_queue_with_the_unit_menu(client, world):
    page = sign_in(client, "unit_x")
    assert page.request.path == "/unit"
    assert "Unit x" in page.text and "工作台" in page.text
    for link in ("/unit/board", "/unit/resources", "/unit/work", "/unit/contribution"):
        assert f'href="{link}"' in page.text


def test_someone_who_runs_no_unit_is_refused_the_unit_pages(client, world):
    sign_in(client, "res_a1")
    for path in ("/unit", "/unit/board", "/unit/resources", "/unit/contribution"):
        assert client.get(path).status_code == 403


def test_the_unit_pages_ask_to_sign_in_first(client, world):
    found = client.get("/unit/board")
    assert found.status_code == 302 and "/login" in found.headers["Location"]


# ---- the resource list ---------------------------------------------------------------------

def test_the_resource_list_shows_only_our_units_items_and_filters_and_exports_them(client, world):
    make_resource(world.session, world, "x", "unit_x", ["a1"], publish=False, title="草稿资源")
    sign_in(client, "unit_x")
    page = client.get("/unit/resources")
    assert "x 志愿服务" in page.text and "草稿资源" in page.text
    assert "y 志愿服务" not in page.text
    drafts = client.get("/unit/resources?status=draft")
    assert "草稿资源" in drafts.text and "x 志愿服务" not in drafts.text
    searched = client.get("/unit/resources?q=草稿")
    assert "草稿资源" in searched.text and "x 志愿服务" not in searched.text
    exported = client.get("/unit/resources?format=csv")
    rows = list(csv.reader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert rows[0][1] == "标题" and {r[1] for r in rows[1:]} == {"x 志愿服务", "草稿资源"}
    assert client.get("/unit/resources?format=xlsx").data[:2] == b"PK"


def test_a_new_resource_with_mistakes_shows_each_error_under_its_field_and_saves_nothing(
        client, world):
    sign_in(client, "unit_x")
    before = count(world, ResourceItem)
    page = client.post("/unit/resources/new", data={
        "csrf_token": token(client, "/unit/resources/new"), "kind": "volunteer_service",
        "category_id": str(category_id(world.session)), "title": "", "quantity_total": "0",
        "capacity_per_occasion": "abc", "value_yuan": "八十",
        "available_from": "2026-12-31", "available_to": "2026-12-01"})
    assert page.status_code == 422
    assert field_error(page.text, "title") == "请填写此项。"
    assert field_error(page.text, "quantity_total")
    assert field_error(page.text, "capacity_per_occasion") == "请输入整数。"
    assert "请填写金额" in field_error(page.text, "value_yuan")
    assert field_error(page.text, "available_to") == "结束时间早于开始时间。"
    assert count(world, ResourceItem) == before


def test_a_service_refusal_on_a_new_resource_sits_under_its_field_and_saves_nothing(
        client, world):
    sign_in(client, "unit_x")
    before = count(world, ResourceItem)
    page = client.post("/unit/resources/new", data={
        "csrf_token": token(client, "/unit/resources/new"), "kind": "skill",
        "category_id": str(category_id(world.session)), "title": "法律咨询",
        "quantity_total": "5", "capacity_per_occasion": "2", "publish": "1"})
    assert page.status_code == 422
    assert "请勾选服务的社区" in field_error(page.text, "service_community_ids")
    assert count(world, ResourceItem) == before


def test_a_new_resource_is_published_with_its_value_in_fen(client, world):
    sign_in(client, "unit_x")
    page = client.post("/unit/resources/new", data={
        "csrf_token": token(client, "/unit/resources/new"), "kind": "skill",
        "category_id": str(category_id(world.session)), "title": "法律咨询",
        "skills": "法律、调解", "quantity_total": "20", "capacity_per_occasion": "2",
        "value_yuan": "150.5", "service_community_ids": [str(world["a1"]), str(world["a2"])],
        "available_from": "2026-01-01", "available_to": "2027-06-30", "publish": "1"},
        follow_redirects=True)
    assert page.request.path == "/unit/resources" and "法律咨询" in page.text
    item = world.session.scalar(select(ResourceItem).where(ResourceItem.title == "法律咨询"))
    assert item.unit_id == world["x"] and item.status == "published"
    assert item.value_fen_per_unit == 15050 and item.skills == ["法律", "调解"]
    assert item.availability["date_ranges"] == [{"start": "2026-01-01", "end": "2027-06-30"}]
    assert {c.id for c in item.service_communities} == {world["a1"], world["a2"]}


def test_editing_a_resource_keeps_what_is_not_on_the_form(client, world):
    item = world.session.get(ResourceItem, world["r_x"])
    item.availability = {"weekly": [{"weekday": 5, "start": "09:00", "end": "12:00"}]}
    world.session.commit()
    sign_in(client, "unit_x")
    form = client.get(f"/unit/resources/{world['r_x']}/edit")
    assert 'value="x 志愿服务"' in form.text and 'value="50.00"' in form.text
    page = client.post(f"/unit/resources/{world['r_x']}/edit", data={
        "csrf_token": csrf(form.text), "kind": "volunteer_service",
        "category_id": str(category_id(world.session)), "title": "陪伴老人",
        "quantity_total": "100", "capacity_per_occasion": "10", "value_yuan": "60",
        "service_community_ids": [str(world["a1"])]}, follow_redirects=True)
    assert page.request.path == "/unit/resources"
    world.session.expire_all()
    item = world.session.get(ResourceItem, world["r_x"])
    assert item.title == "陪伴老人" and item.value_fen_per_unit == 6000
    assert item.availability["weekly"] == [{"weekday": 5, "start": "09:00", "end": "12:00"}]
    assert [c.id for c in item.service_communities] == [world["a1"]]


def test_another_units_resource_cannot_be_opened_edited_or_withdrawn(client, world):
    sign_in(client, "unit_x")
    other = world["r_y"]
    assert client.get(f"/unit/resources/{other}/edit").status_code == 404
    sent = {"csrf_token": token(client), "title": "偷改", "confirmed": "1", "reason": "x"}
    assert client.post(f"/unit/resources/{other}/edit", data=sent).status_code == 404
    assert client.post(f"/unit/resources/{other}/withdraw", data=sent).status_code == 404
    world.session.expire_all()
    item = world.session.get(ResourceItem, other)
    assert item.title == "y 志愿服务" and item.status == "published"


def test_withdrawing_a_resource_asks_first_and_needs_a_reason(client, world):
    sign_in(client, "unit_x")
    path = f"/unit/resources/{world['r_x']}/withdraw"
    asked = client.post(path, data={"csrf_token": token(client), "reason": "人手不够"})
    assert asked.status_code == 200 and "确定撤回这项资源吗" in asked.text
    assert world.session.get(ResourceItem, world["r_x"]).status == "published"
    blank = client.post(path, data={"csrf_token": token(client), "confirmed": "1",
                                    "reason": " "}, follow_redirects=True)
    assert "请填写理由" in alerts(blank.text)[0]
    world.session.expire_all()
    assert world.session.get(ResourceItem, world["r_x"]).status == "published"
    done = client.post(path, data={"csrf_token": token(client), "confirmed": "1",
                                   "reason": "人手不够"}, follow_redirects=True)
    assert alerts(done.text) == ["已撤回。"]
    world.session.expire_all()
    assert world.session.get(ResourceItem, world["r_x"]).status == "withdrawn"


# ---- the demand board and claiming ---------------------------------------------------------

def test_the_board_lists_open_items_with_what_is_still_needed_and_filters_them(client, world):
    sign_in(client, "unit_x")
    board = client.get("/unit/board")
    assert f'data-testid="demand-{world["d_a1"]}"' in board.text
    assert f'data-testid="demand-{world["d_b1"]}"' in board.text
    assert "还缺 3 / 共需 3" in board.text
    only_a1 = client.get(f"/unit/board?community_id={world['a1']}")
    assert f'demand-{world["d_a1"]}"' in only_a1.text and f'demand-{world["d_b1"]}"' not in \
        only_a1.text
    assert 'demand-' not in client.get("/unit/board?skill=电工").text
    assert 'demand-' not in client.get(
        f"/unit/board?category_id={category_id(world.session, 'repairs')}").text
    assert 'demand-' not in client.get("/unit/board?urgency=critical").text
    assert 'demand-' not in client.get("/unit/board?q=理发").text
    assert f'demand-{world["d_a1"]}"' in client.get("/unit/board?q=独居").text
    exported = client.get(f"/unit/board?format=csv&community_id={world['a1']}")
    rows = list(csv.reader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert len(rows) == 2 and rows[1][1] == "独居老人探访" and rows[1][6] == "3"


def test_an_item_our_unit_already_holds_leaves_the_board(client, world):
    claim(world, "x", "d_a1")
    sign_in(client, "unit_x")
    assert f'demand-{world["d_a1"]}"' not in client.get("/unit/board").text


def test_a_claim_on_the_page_reaches_our_work_list_waiting_for_the_secretary(client, world):
    sign_in(client, "unit_x")
    path = f"/unit/board/{world['d_a1']}/claim"
    form = client.get(path)
    assert f'<option value="{world["r_x"]}" selected' in form.text
    done = client.post(path, data={"csrf_token": csrf(form.text), "resource_id": world["r_x"],
                                   "quantity": "2", "note": "周末上门"}, follow_redirects=True)
    assert done.request.path == "/unit/work"
    assert alerts(done.text) == ["已认领。由社区书记审核,结果会显示在这里。"]
    assert "独居老人探访" in done.text and "等待社区审核" in done.text
    found = world.session.scalar(select(Assignment).where(Assignment.unit_id == world["x"]))
    assert (found.quantity, found.status, found.note) == (2, "pending", "周末上门")


def test_claiming_more_than_is_still_open_says_how_many_are_left_and_claims_nothing(
        client, world):
    claim(world, "y", "d_a1", 2)
    sign_in(client, "unit_x")
    path = f"/unit/board/{world['d_a1']}/claim"
    page = client.post(path, data={"csrf_token": token(client, path),
                                   "resource_id": world["r_x"], "quantity": "2"})
    assert page.status_code == 409
    assert field_error(page.text, "quantity") == "这项需求已经用不了这么多了,现在只剩 1 个名额。"
    assert count(world, Assignment, unit_id=world["x"]) == 0


def test_the_last_place_goes_to_the_first_unit_and_the_second_is_told_it_is_gone(client, world):
    claim(world, "y", "d_a1", 3)
    sign_in(client, "unit_x")
    path = f"/unit/board/{world['d_a1']}/claim"
    page = client.post(path, data={"csrf_token": token(client, path),
                                   "resource_id": world["r_x"], "quantity": "1"})
    assert page.status_code == 409 and "只剩 0 个名额" in page.text
    assert 'data-testid="not-open"' in page.text
    assert count(world, Assignment, unit_id=world["x"]) == 0


def test_claiming_with_another_units_resource_or_a_bad_quantity_is_refused_by_field(
        client, world):
    sign_in(client, "unit_x")
    path = f"/unit/board/{world['d_a1']}/claim"
    theirs = client.post(path, data={"csrf_token": token(client, path),
                                     "resource_id": world["r_y"], "quantity": "1"})
    assert theirs.status_code == 422
    assert field_error(theirs.text, "resource_id") == "这不是本单位的资源"
    zero = client.post(path, data={"csrf_token": token(client, path),
                                   "resource_id": world["r_x"], "quantity": "0"})
    assert zero.status_code == 422 and field_error(zero.text, "quantity")
    too_many = client.post(path, data={"csrf_token": token(client, path),
                                       "resource_id": world["r_x"], "quantity": "11"})
    assert too_many.status_code == 422
    assert field_error(too_many.text, "quantity") == "超过了这项资源每次能提供的数量(10)。"
    assert count(world, Assignment) == 0


def test_an_item_outside_what_a_unit_may_see_is_not_found(client, world):
    demand = world.session.get(DemandItem, world["d_a1"])
    demand.status = "draft"
    world.session.commit()
    sign_in(client, "unit_x")
    assert client.get(f"/unit/board/{world['d_a1']}/claim").status_code == 404


# ---- dispatches, claims and teams ----------------------------------------------------------

def dispatch(world, unit: str = "x", quantity: int = 1) -> Assignment:
    return assignments.dispatch_demand(world.session, actor=world.actor("sec_a1"),
                                       demand_id=world["d_a1"], unit_id=world[unit],
                                       quantity=quantity)


def test_a_dispatch_waits_on_the_work_queue_and_is_accepted_with_our_resource(client, world):
    sent = dispatch(world)
    sign_in(client, "unit_x")
    home = client.get("/unit")
    assert f'data-testid="work-{sent.id}"' in home.text and "请在" in home.text
    done = client.post(f"/unit/work/{sent.id}/accept", data={
        "csrf_token": csrf(home.text), "resource_id": world["r_x"], "next": "/unit"},
        follow_redirects=True)
    assert done.request.path == "/unit"
    assert alerts(done.text) == ["已接单,这项任务已加入您的任务清单。"]
    world.session.expire_all()
    accepted = world.session.get(Assignment, sent.id)
    assert (accepted.status, accepted.resource_id, accepted.is_lead) == \
        ("accepted", world["r_x"], True)


def test_declining_a_dispatch_asks_first_needs_a_reason_and_then_declines(client, world):
    sent = dispatch(world)
    sign_in(client, "unit_x")
    path = f"/unit/work/{sent.id}/decline"
    asked = client.post(path, data={"csrf_token": token(client), "reason": "本周人手不足"})
    assert "确定婉拒这次派单吗" in asked.text
    no_reason = client.post(path, data={"csrf_token": token(client), "confirmed": "1"},
                            follow_redirects=True)
    assert "请填写理由" in alerts(no_reason.text)[0]
    world.session.expire_all()
    assert world.session.get(Assignment, sent.id).status == "offered"
    client.post(path, data={"csrf_token": token(client), "confirmed": "1",
                            "reason": "本周人手不足"})
    world.session.expire_all()
    assert world.session.get(Assignment, sent.id).status == "declined"
    assert world.session.get(DemandItem, world["d_a1"]).quantity_open == 3


def test_another_unit_can_neither_see_nor_answer_our_dispatch(client, world):
    sent = dispatch(world)
    sign_in(client, "unit_y")
    assert f"work-{sent.id}" not in client.get("/unit").text
    for action in ("accept", "decline", "withdraw", "release", "start", "report"):
        refused = client.post(f"/unit/work/{sent.id}/{action}", data={
            "csrf_token": token(client), "confirmed": "1", "reason": "x"})
        assert refused.status_code == 404, action
    world.session.expire_all()
    assert world.session.get(Assignment, sent.id).status == "offered"


def test_withdrawing_a_pending_claim_asks_first_then_gives_the_quantity_back(client, world):
    found = claim(world, "x", "d_a1", 2)
    sign_in(client, "unit_x")
    path = f"/unit/work/{found.id}/withdraw"
    asked = client.post(path, data={"csrf_token": token(client)})
    assert "确定撤回这次认领吗" in asked.text
    assert world.session.get(Assignment, found.id).status == "pending"
    client.post(path, data={"csrf_token": token(client), "confirmed": "1"})
    world.session.expire_all()
    assert world.session.get(Assignment, found.id).status == "withdrawn"
    assert world.session.get(DemandItem, world["d_a1"]).quantity_open == 3


def test_our_work_shows_the_1_plus_n_team_with_its_lead_and_filters_by_status(client, world):
    lead = approved_claim(world, "x")
    helper = approved_claim(world, "y")
    sign_in(client, "unit_y")
    page = client.get("/unit/work")
    card = re.search(rf'data-testid="work-{helper.id}".*?data-testid="team">(.*?)</div>',
                     page.text, re.S).group(1)
    assert "Unit x · 牵头" in card and "Unit y · 协助" in card
    assert "由牵头单位替整个队伍报告完成情况" in page.text
    assert f"report-{helper.id}" not in page.text
    assert f"work-{helper.id}" in client.get("/unit/work?status=approved,accepted").text
    assert f"work-{helper.id}" not in client.get("/unit/work?status=pending").text
    assert f"work-{helper.id}" not in client.get("/unit/work?q=理发").text
    exported = client.get("/unit/work?format=csv")
    rows = list(csv.reader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert rows[1][6] == "协助单位" and "Unit x" in rows[1][7] and "Unit y" in rows[1][7]
    sign_in(client, "unit_x")
    assert f'data-testid="report-{lead.id}"' in client.get("/unit/work").text


# ---- reporting work done -----------------------------------------------------------------

def test_the_lead_reports_work_with_volunteers_and_hours_and_the_value_in_fen(client, world):
    lead = approved_claim(world)
    sign_in(client, "unit_x")
    form = report_form(client, lead.id, **{"v-1-name": "王芳", "v-1-phone": "13700000000",
                                           "v-1-hours": "1"})
    done = client.post(f"/unit/work/{lead.id}/report", data=form, follow_redirects=True)
    assert done.request.path == "/unit/work"
    assert alerts(done.text) == ["报告已提交。社区书记核实后,服务时长才计入。"]
    report = world.session.scalar(select(WorkReport))
    assert (report.value_fen, report.beneficiaries_served, report.unit_id) == \
        (12050, 3, world["x"])
    assert [(v.name, v.phone, v.minutes) for v in report.volunteers] == [
        ("李明", "13912345678", 150), ("王芳", "13700000000", 60)]
    world.session.expire_all()
    assert world.session.get(DemandItem, world["d_a1"]).status == "reported"


def test_a_report_with_mistakes_shows_errors_by_field_and_by_volunteer_line_and_saves_nothing(
        client, world):
    lead = approved_claim(world)
    sign_in(client, "unit_x")
    form = report_form(client, lead.id, **{
        "value_yuan": "一百", "beneficiaries_served": "-1", "ended_on": "2026-01-01",
        "started_on": "2026-02-01", "v-0-hours": "0", "v-3-name": "赵强",
        "v-3-phone": "13600000000", "v-3-hours": "两小时"})
    page = client.post(f"/unit/work/{lead.id}/report", data=form)
    assert page.status_code == 422
    assert "请填写金额" in field_error(page.text, "value_yuan")
    assert field_error(page.text, "beneficiaries_served") == "请填写不小于 0 的数。"
    assert field_error(page.text, "v-0-hours")
    assert field_error(page.text, "v-3-hours") == "请输入数字。"
    assert 'value="赵强"' in page.text and 'value="一百"' in page.text  # kept as typed
    assert count(world, WorkReport) == 0


def test_the_service_refusals_of_a_report_sit_under_their_fields(client, world):
    lead = approved_claim(world)
    sign_in(client, "unit_x")
    form = report_form(client, lead.id, **{"v-0-phone": "", "started_on": "2026-02-01",
                                           "ended_on": "2026-01-01"})
    dates = client.post(f"/unit/work/{lead.id}/report", data=form)
    assert dates.status_code == 422
    assert field_error(dates.text, "ended_on") == "结束时间早于开始时间。"
    form = report_form(client, lead.id, **{"v-0-phone": ""})
    phone = client.post(f"/unit/work/{lead.id}/report", data=form)
    assert phone.status_code == 422
    assert field_error(phone.text, "v-0-phone") == "没有账号的志愿者要填写姓名和电话"
    assert count(world, WorkReport) == 0


def test_a_report_without_any_volunteer_is_refused(client, world):
    lead = approved_claim(world)
    sign_in(client, "unit_x")
    form = report_form(client, lead.id, **{"v-0-name": "", "v-0-phone": "", "v-0-hours": ""})
    page = client.post(f"/unit/work/{lead.id}/report", data=form)
    assert page.status_code == 422 and "请至少填写一名志愿者" in page.text
    assert count(world, WorkReport) == 0


def test_more_lines_are_added_without_losing_what_was_typed(client, world):
    lead = approved_claim(world)
    sign_in(client, "unit_x")
    form = report_form(client, lead.id, action="more")
    page = client.post(f"/unit/work/{lead.id}/report", data=form)
    assert page.status_code == 200 and 'name="rows" value="10"' in page.text
    assert 'id="v-9-name"' in page.text and 'value="李明"' in page.text
    assert count(world, WorkReport) == 0


def test_a_helper_unit_cannot_report_for_the_team(client, world):
    approved_claim(world, "x")
    helper = approved_claim(world, "y")
    sign_in(client, "unit_y")
    sent = client.get(f"/unit/work/{helper.id}/report", follow_redirects=True)
    assert sent.request.path == "/unit/work" and "由牵头单位报告" in alerts(sent.text)[0]
    page = client.post(f"/unit/work/{helper.id}/report", data=report_form(client, helper.id))
    assert page.status_code == 403 and "只有牵头单位能替整个队伍报告" in page.text
    assert count(world, WorkReport) == 0


# ---- the contribution record and the annual report ----------------------------------------

def verified_work(client, world) -> None:
    lead = approved_claim(world)
    sign_in(client, "unit_x")
    client.post(f"/unit/work/{lead.id}/report", data=report_form(client, lead.id))
    report = world.session.scalar(select(WorkReport))
    reports.verify_report(world.session, actor=world.actor("sec_a1"), report_id=report.id)


def test_the_contribution_record_counts_verified_work_only(client, world):
    lead = approved_claim(world)
    sign_in(client, "unit_x")
    client.post(f"/unit/work/{lead.id}/report", data=report_form(client, lead.id))
    waiting = client.get("/unit/contribution")
    assert re.search(r'data-testid="total-items">0<', waiting.text)
    report = world.session.scalar(select(WorkReport))
    reports.verify_report(world.session, actor=world.actor("sec_a1"), report_id=report.id)
    page = client.get("/unit/contribution")
    assert re.search(r'data-testid="total-items">1<', page.text)
    assert re.search(r'data-testid="total-hours">2.5<', page.text)
    assert re.search(r'data-testid="total-value">120.50<', page.text)
    assert "养老助老" in page.text and "独居老人探访" in page.text


def test_the_contribution_record_exports_its_items_and_its_tables(client, world):
    verified_work(client, world)
    year = local_date(utcnow()).year
    items = client.get(f"/unit/contribution?year={year}&format=csv")
    rows = list(csv.reader(io.StringIO(items.data.decode("utf-8-sig"))))
    assert rows[0][:4] == ["核实日期", "完成日期", "开始日期", "事项"]
    assert rows[1][3:6] == ["独居老人探访", "a1社区", "养老助老"]
    assert rows[1][-1] == "120.50" and rows[1][-3] == "2.5"
    months = client.get(f"/unit/contribution?year={year}&format=csv&table=month")
    month_rows = list(csv.reader(io.StringIO(months.data.decode("utf-8-sig"))))
    assert len(month_rows) == 13
    done = [r for r in month_rows[1:] if r[1] == "1"]
    assert len(done) == 1 and done[0][2] == "2.5" and done[0][-1] == "120.50"
    xlsx = client.get(f"/unit/contribution?year={year}&format=xlsx&table=category")
    assert xlsx.data[:2] == b"PK"
    other_year = client.get(f"/unit/contribution?year={year - 1}")
    assert re.search(r'data-testid="total-items">0<', other_year.text)


def test_the_annual_report_prints_without_the_menu_and_states_the_figures(client, world):
    verified_work(client, world)
    year = local_date(utcnow()).year
    page = client.get(f"/unit/contribution/annual?year={year}")
    assert page.status_code == 200 and "@media print" in page.text
    assert re.search(r"@media print \{\s*nav\.navbar", page.text)
    summary = re.search(r'data-testid="summary">([^<]+)<', page.text).group(1)
    assert f"{year} 年" in summary and "办结共建事项 1 项" in summary
    assert "共 2.5 小时" in summary and "折合资金 120.50 元" in summary
    assert f"{year} 年度共建报告" in page.text


def test_another_units_work_does_not_count_in_our_record(client, world):
    verified_work(client, world)
    sign_in(client, "unit_y")
    page = client.get("/unit/contribution")
    assert re.search(r'data-testid="total-items">0<', page.text)
    assert "独居老人探访" not in page.text


def test_the_unit_pages_speak_english_when_asked(client, world):
    sign_in(client, "unit_x")
    client.post("/language", data={"lang": "en", "csrf_token": token(client)})
    path = f"/unit/board/{world['d_a1']}/claim"
    page = client.post(path, data={"csrf_token": token(client, path),
                                   "resource_id": world["r_x"], "quantity": "0"})
    assert "Claim an item" in page.text
    assert field_error(page.text, "quantity") == "At least 1, please."


# ---- found on the way ---------------------------------------------------------------------

def test_the_api_stores_a_resource_with_dates_of_availability(client, world):
    answer = client.post("/api/v1/resources", headers=world.headers("unit_x"), json={
        "unit_id": world["x"], "kind": "skill", "category_id": category_id(world.session),
        "title": "法律咨询", "quantity_total": 5, "capacity_per_occasion": 1,
        "service_community_ids": [world["a1"]],
        "availability": {"date_ranges": [{"start": "2026-01-01", "end": "2026-12-31"}]}})
    assert answer.status_code == 201
