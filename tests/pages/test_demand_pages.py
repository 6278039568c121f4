"""The secretary's demand list through the pages: search and pages, recording an item with
errors shown by field, editing, dispatching by hand, cancelling only after confirming, export,
and no reach into another community."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook

from tests.factories import category_id, make_demand
from tests.pages.helpers import alerts, csrf, field_error, sign_in
from web.models import Assignment, DemandItem

pytestmark = pytest.mark.db


def new_item(client, page, **fields):
    form = {"title": "帮独居老人买菜", "category_id": "", "quantity_needed": "2",
            "urgency": "normal", "csrf_token": csrf(page.text), **fields}
    return client.post("/secretary/demands/new", data=form, follow_redirects=True)


def test_the_demand_list_is_searchable_and_paged(client, world):
    page = sign_in(client, "sec_a1")
    for n in range(25):
        new_item(client, page, title=f"上门理发 {n}", category_id=str(category_id(world.session)))
    listed = client.get("/secretary/demands")
    assert listed.status_code == 200 and "共 26 条,第 1 / 2 页" in listed.text
    found = client.get("/secretary/demands?q=理发 2")
    assert "上门理发 2" in found.text and "上门理发 13" not in found.text
    second = client.get("/secretary/demands?page=2")
    assert "第 2 / 2 页" in second.text
    nonsense = client.get("/secretary/demands?page=abc&category_id=x&status=nope")
    assert nonsense.status_code == 200 and "共 26 条" in nonsense.text


def test_a_form_with_mistakes_shows_each_error_by_its_field_and_saves_nothing(client, world):
    page = sign_in(client, "sec_a1")
    before = world.session.query(DemandItem).count()
    answer = new_item(client, page, title="", quantity_needed="0", category_id="")
    assert answer.status_code == 422
    assert field_error(answer.text, "title") == "请填写此项。"
    assert field_error(answer.text, "category_id") == "请填写此项。"
    assert "请填写" in field_error(answer.text, "quantity_needed")
    assert world.session.query(DemandItem).count() == before


def test_recording_and_publishing_an_item_then_dispatching_it_by_hand(client, world):
    page = sign_in(client, "sec_a1")
    shown = new_item(client, page, category_id=str(category_id(world.session)), publish="1",
                     required_skills="驾驶、买菜", deadline="2026-12-01T18:00")
    assert "事项已发布。" in alerts(shown.text)
    demand = world.session.query(DemandItem).filter_by(title="帮独居老人买菜").one()
    assert demand.status == "open" and sorted(demand.required_skills) == ["买菜", "驾驶"]
    assert demand.deadline.isoformat().startswith("2026-12-01T10:00")  # 18:00 in Shanghai
    sent = client.post(f"/demands/{demand.id}/dispatch", data={
        "unit_id": str(world["x"]), "quantity": "1", "response_hours": "24",
        "csrf_token": csrf(shown.text)}, follow_redirects=True)
    assert "已派单,等待单位接单。" in alerts(sent.text)
    offer = world.session.query(Assignment).filter_by(demand_id=demand.id).one()
    assert offer.status == "offered" and offer.unit_id == world["x"]


def test_a_dispatch_with_a_bad_quantity_is_refused_and_changes_nothing(client, world):
    page = sign_in(client, "sec_a1")
    refused = client.post(f"/demands/{world['d_a1']}/dispatch", data={
        "unit_id": str(world["x"]), "quantity": "0", "csrf_token": csrf(page.text)},
        follow_redirects=True)
    assert any("请检查填写的内容" in text for text in alerts(refused.text))
    assert world.session.query(Assignment).filter_by(demand_id=world["d_a1"]).count() == 0


def test_cancelling_asks_first_then_cancels_with_the_reason(client, world):
    page = sign_in(client, "sec_a1")
    form = {"reason": "居民已自行解决", "csrf_token": csrf(page.text)}
    asked = client.post(f"/demands/{world['d_a1']}/cancel", data=form)
    assert "确定撤销该事项" in asked.text
    world.session.expire_all()
    assert world.session.get(DemandItem, world["d_a1"]).status == "open"
    done = client.post(f"/demands/{world['d_a1']}/cancel", data={**form, "confirmed": "1"},
                       follow_redirects=True)
    assert "事项已撤销。" in alerts(done.text) and "居民已自行解决" in done.text
    world.session.expire_all()
    assert world.session.get(DemandItem, world["d_a1"]).status == "cancelled"


def test_editing_keeps_the_values_and_saves(client, world):
    page = sign_in(client, "sec_a1")
    form = client.get(f"/demands/{world['d_a1']}/edit")
    assert form.status_code == 200
    saved = client.post(f"/demands/{world['d_a1']}/edit", data={
        "title": "改过的标题", "category_id": str(category_id(world.session)),
        "quantity_needed": "3", "urgency": "urgent", "csrf_token": csrf(page.text)},
        follow_redirects=True)
    assert "修改已保存。" in alerts(saved.text)
    world.session.expire_all()
    demand = world.session.get(DemandItem, world["d_a1"])
    assert (demand.title, demand.quantity_needed, demand.urgency) == ("改过的标题", 3, "urgent")


def test_another_communitys_secretary_can_neither_see_nor_act(client, world):
    page = sign_in(client, "sec_b1")
    assert client.get(f"/demands/{world['d_a1']}").status_code == 404
    assert client.get(f"/demands/{world['d_a1']}/edit").status_code == 404
    client.post(f"/demands/{world['d_a1']}/cancel", data={
        "reason": "x", "confirmed": "1", "csrf_token": csrf(page.text)})
    world.session.expire_all()
    assert world.session.get(DemandItem, world["d_a1"]).status == "open"
    listed = client.get("/secretary/demands")
    assert "共 1 条" in listed.text  # b1's own item only


def test_the_list_downloads_as_csv_and_xlsx_with_its_filters(client, world):
    sign_in(client, "sec_a1")
    as_csv = client.get("/secretary/demands?format=csv&status=open")
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(as_csv.data.decode("utf-8-sig"))))
    assert rows[0][:2] == ["编号", "标题"] and len(rows) == 2 and rows[1][3] == "待认领"
    as_xlsx = client.get("/secretary/demands?format=xlsx")
    sheet = load_workbook(io.BytesIO(as_xlsx.data)).active
    assert sheet.max_row == 2 and sheet.cell(1, 2).value == "标题"


def test_the_item_page_shows_its_history_in_words(client, world):
    sign_in(client, "sec_a1")
    shown = client.get(f"/demands/{world['d_a1']}")
    assert shown.status_code == 200 and "办理记录" in shown.text and "事项: 待认领" in shown.text


def test_a_refused_form_keeps_what_was_typed(client, world):
    page = sign_in(client, "sec_a1")
    answer = new_item(client, page, title="修水龙头", quantity_needed="0",
                      category_id=str(category_id(world.session)))
    assert answer.status_code == 422
    assert 'value="修水龙头"' in answer.text
    assert f'<option value="{category_id(world.session)}" selected' in answer.text


def test_opening_and_saving_the_edit_form_keeps_the_times(client, world):
    page = sign_in(client, "sec_a1")
    new_item(client, page, category_id=str(category_id(world.session)),
             deadline="2026-12-01T18:00", window_start="2026-11-30T09:30")
    demand = world.session.query(DemandItem).filter_by(title="帮独居老人买菜").one()
    form = client.get(f"/demands/{demand.id}/edit")
    assert 'value="2026-12-01T18:00"' in form.text and 'value="2026-11-30T09:30"' in form.text
    client.post(f"/demands/{demand.id}/edit", data={
        "title": "帮独居老人买菜", "category_id": str(category_id(world.session)),
        "quantity_needed": "2", "urgency": "normal", "deadline": "2026-12-01T18:00",
        "window_start": "2026-11-30T09:30", "csrf_token": csrf(page.text)})
    world.session.expire_all()
    saved = world.session.get(DemandItem, demand.id)
    assert saved.deadline.isoformat().startswith("2026-12-01T10:00")
    assert saved.window_start.isoformat().startswith("2026-11-30T01:30")


def test_the_item_page_is_for_staff_only(client, world):
    from tests.factories import claim

    claim(world, "x", "d_a1")
    sign_in(client, "unit_x")
    assert client.get(f"/demands/{world['d_a1']}").status_code == 404
    sign_in(client, "res_a1")
    assert client.get(f"/demands/{world['d_a1']}").status_code == 404
    sign_in(client, "admin_a")
    assert client.get(f"/demands/{world['d_a1']}").status_code == 200


def test_an_exported_title_that_looks_like_a_formula_stays_text(client, world):
    page = sign_in(client, "sec_a1")
    new_item(client, page, title="=HYPERLINK(\"http://evil.example\",\"x\")",
             category_id=str(category_id(world.session)))
    data = client.get("/secretary/demands?format=csv").data.decode("utf-8-sig")
    assert "'=HYPERLINK" in data
    sheet = load_workbook(io.BytesIO(client.get("/secretary/demands?format=xlsx").data)).active
    titles = [sheet.cell(row, 2).value for row in range(2, sheet.max_row + 1)]
    assert "'=HYPERLINK(\"http://evil.example\",\"x\")" in titles
    assert sheet.cell(2, 2).data_type == "s"


# ---- service levels on the item's page ---------------------------------------------------------

def test_the_item_page_shows_its_due_times_light_and_level_in_shanghai_time(client, world):
    sign_in(client, "sec_a1")
    shown = client.get(f"/demands/{world['d_a1']}").text
    section = shown[shown.index('data-testid="service-level"'):]
    assert "当日受理、三日办结" in section
    # Published on Friday 20 November at 10:00 in Shanghai: 24 h to accept, 3 days to close.
    assert "2026-11-21 10:00" in re.search(r'data-testid="accept-due">([^<]*)<', section)[1]
    assert "2026-11-23 10:00" in re.search(r'data-testid="close-due">([^<]*)<', section)[1]
    assert "网格办理" in re.search(r'data-testid="escalation">([^<]*)<', section)[1]
    assert re.search(r'data-rag="(red|amber|green)"', section)
    assert "暂停计时" in section


def test_pausing_asks_first_then_stops_the_clocks_and_resuming_moves_the_due_times(client, world):
    page = sign_in(client, "sec_a1")
    token = csrf(page.text)
    asked = client.post(f"/demands/{world['d_a1']}/pause",
                        data={"reason": "等居民出院", "csrf_token": token})
    assert "确定暂停该事项的计时吗" in asked.text
    world.session.expire_all()
    assert world.session.get(DemandItem, world["d_a1"]).paused_at is None
    paused = client.post(f"/demands/{world['d_a1']}/pause", data={
        "reason": "等居民出院", "csrf_token": token, "confirmed": "1"}, follow_redirects=True)
    assert "该事项已暂停计时。" in alerts(paused.text)
    assert "等居民出院" in re.search(r'data-testid="paused">([^<]*)<', paused.text)[1]
    assert "恢复计时" in paused.text
    world.session.expire_all()
    before = world.session.get(DemandItem, world["d_a1"]).accept_due_at
    resumed = client.post(f"/demands/{world['d_a1']}/resume", data={
        "csrf_token": token, "confirmed": "1"}, follow_redirects=True)
    assert "该事项已恢复计时。" in alerts(resumed.text)
    world.session.expire_all()
    demand = world.session.get(DemandItem, world["d_a1"])
    assert demand.paused_at is None and demand.accept_due_at > before
    assert "暂停计时" in resumed.text and "恢复计时" in resumed.text  # the history says both


def test_pausing_without_a_reason_is_refused_and_changes_nothing(client, world):
    page = sign_in(client, "sec_a1")
    refused = client.post(f"/demands/{world['d_a1']}/pause", data={
        "reason": " ", "csrf_token": csrf(page.text), "confirmed": "1"}, follow_redirects=True)
    assert any("请检查填写的内容" in text for text in alerts(refused.text))
    world.session.expire_all()
    assert world.session.get(DemandItem, world["d_a1"]).paused_at is None


def test_the_grid_worker_of_the_items_grid_may_pause_it_and_a_unit_may_not(client, world):
    page = sign_in(client, "grid_a1")
    assert "暂停计时" in client.get(f"/demands/{world['d_a1']}").text
    client.post(f"/demands/{world['d_a1']}/pause", data={
        "reason": "居民外出", "csrf_token": csrf(page.text), "confirmed": "1"})
    world.session.expire_all()
    assert world.session.get(DemandItem, world["d_a1"]).pause_reason == "居民外出"
    page = sign_in(client, "unit_x")
    client.post(f"/demands/{world['d_a1']}/resume", data={
        "csrf_token": csrf(page.text), "confirmed": "1"})
    assert "您的身份无权办理此事。" in alerts(client.get("/unit").text)
    world.session.expire_all()
    assert world.session.get(DemandItem, world["d_a1"]).paused_at is not None


def test_the_list_and_the_work_queue_show_each_items_light_and_due_time(client, world):
    from web.services import demands
    from web.services.base import utcnow

    now = utcnow()
    fresh = make_demand(world.session, world, "a1", "sec_a1", title="刚发布", publish=False)
    demands.publish_demand(world.session, actor=world.actor("sec_a1"), demand_id=fresh, now=now)
    sign_in(client, "sec_a1")
    listed = client.get("/secretary/demands").text
    assert 'data-rag="green"' in re.search(rf'data-testid="sla-{fresh}">(.*?)</td>', listed,
                                           re.S)[1]
    queue = client.get("/secretary").text
    section = queue[queue.index('data-testid="due"'):]
    assert "刚发布" in section and "当日受理" in section


def test_reports_and_wishes_in_the_history_are_said_in_words_not_table_names(app):
    from web.models import AuditEvent
    from web.pages.demand_pages import describe

    with app.test_request_context("/"):
        report = describe(AuditEvent(entity_type="work_reports", action="verified",
                                     to_status="verified"))
        wish = describe(AuditEvent(entity_type="micro_wishes", action="accepted",
                                   to_status="accepted"))
    assert report.startswith("完成报告: ") and "verified" not in report
    assert wish.startswith("微心愿: ") and "accepted" not in wish
