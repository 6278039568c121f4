"""The list services read search words in SQL (`q`, case-insensitive, anywhere in the text that
matters, `%` and `_` taken literally) and page in the database: micro-wishes, activity sessions
and sign-ups, claims and dispatches, and stock movements — through the service and through the
API's `q` argument."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import NOW
from tests.factories import category_id, claim, make_demand
from tests.integration.lovebank_helpers import goods
from tests.pages.test_resident_pages import become_volunteer, coming_session
from web.services import activities, assignments, market, wishes

pytestmark = pytest.mark.db


def titles(page) -> list[str]:
    return [row.title for row in page.items]


# ---- micro-wishes ---------------------------------------------------------------------------

def send(world, title: str, description: str = "", name: str = "res_a1"):
    return wishes.submit_wish(world.session, actor=world.actor(name), title=title,
                              description=description, category_id=category_id(world.session),
                              now=NOW)


def test_wishes_are_searched_in_their_title_and_description_in_sql(world):
    send(world, "楼道灯坏了")
    send(world, "想学手机", "用微信视频")
    send(world, "100% 满意的理发")
    secretary = world.actor("sec_a1")
    found = wishes.list_wishes(world.session, actor=secretary, filters={"q": "微信"})
    assert titles(found) == ["想学手机"] and found.total == 1
    assert titles(wishes.list_wishes(world.session, actor=secretary,
                                     filters={"q": "灯"})) == ["楼道灯坏了"]
    assert titles(wishes.list_wishes(world.session, actor=secretary,
                                     filters={"q": "100%"})) == ["100% 满意的理发"]
    assert wishes.list_wishes(world.session, actor=secretary, filters={"q": "0_"}).total == 0


def test_wishes_filter_by_several_statuses_and_page_in_the_database(world):
    for n in range(5):
        send(world, f"心愿{n}")
    first = send(world, "先撤回的")
    wishes.withdraw_wish(world.session, actor=world.actor("res_a1"), wish_id=first.id, now=NOW)
    secretary = world.actor("sec_a1")
    second = wishes.list_wishes(world.session, actor=secretary, filters={}, page=2, per_page=4)
    assert second.total == 6 and titles(second) == ["心愿1", "心愿0"]
    both = wishes.list_wishes(world.session, actor=secretary,
                              filters={"status": "submitted,withdrawn"})
    assert both.total == 6
    assert titles(wishes.list_wishes(world.session, actor=secretary,
                                     filters={"status": "withdrawn"})) == ["先撤回的"]


def test_the_wish_api_takes_q(client, world):
    send(world, "楼道灯坏了")
    send(world, "想学手机")
    found = client.get("/api/v1/micro-wishes?q=手机", headers=world.headers("sec_a1")).json
    assert [w["title"] for w in found["items"]] == ["想学手机"] and found["total"] == 1
    too_long = client.get("/api/v1/micro-wishes?q=" + "长" * 101,
                          headers=world.headers("sec_a1"))
    assert too_long.status_code == 422


# ---- activity sessions and sign-ups -----------------------------------------------------------

def test_sessions_are_searched_in_their_title_and_place(world):
    coming_session(world, title="周六探访")
    coming_session(world, title="垃圾分类宣传")
    me = world.actor("res_a1")
    found = activities.list_sessions(world.session, actor=me, filters={"q": "垃圾"})
    assert titles(found) == ["垃圾分类宣传"]
    assert activities.list_sessions(world.session, actor=me,
                                    filters={"q": "活动室"}).total == 2
    assert activities.list_sessions(world.session, actor=me, filters={"q": "图书馆"}).total == 0


def test_sign_ups_are_searched_by_the_sessions_words_and_the_persons_name(world):
    visit = coming_session(world, title="周六探访")
    sorting = coming_session(world, title="垃圾分类宣传")
    become_volunteer(world)
    for act in (visit, sorting):
        activities.sign_up(world.session, actor=world.actor("res_a1"), session_id=act.id)
    secretary = world.actor("sec_a1")
    found = activities.list_signups(world.session, actor=secretary, filters={"q": "探访"})
    assert [s.session_id for s in found.items] == [visit.id]
    by_name = activities.list_signups(world.session, actor=secretary, filters={"q": "res_a"})
    assert by_name.total == 2
    assert activities.list_signups(world.session, actor=secretary,
                                   filters={"q": "res_b"}).total == 0


def test_places_taken_are_counted_for_a_whole_page_at_once(world):
    visit = coming_session(world, headcount=5)
    empty = coming_session(world, title="空场次")
    become_volunteer(world)
    activities.sign_up(world.session, actor=world.actor("res_a1"), session_id=visit.id)
    assert activities.places_taken(world.session, [visit.id, empty.id]) == {visit.id: 1,
                                                                           empty.id: 0}


def test_the_activity_apis_take_q(client, world):
    visit = coming_session(world, title="周六探访")
    coming_session(world, title="垃圾分类宣传")
    become_volunteer(world)
    activities.sign_up(world.session, actor=world.actor("res_a1"), session_id=visit.id)
    headers = world.headers("sec_a1")
    sessions = client.get("/api/v1/sessions?q=探访", headers=headers).json
    assert [s["title"] for s in sessions["items"]] == ["周六探访"]
    signups = client.get("/api/v1/signups?q=垃圾", headers=headers).json
    assert signups["total"] == 0


# ---- claims and dispatches ----------------------------------------------------------------------

def test_claims_are_searched_by_the_items_title_the_units_name_and_the_note(world):
    repair = make_demand(world.session, world, "a1", "sec_a1", title="修理水管")
    world.ids["d_repair"] = repair
    claim(world, "x", "d_a1")
    claim(world, "y", "d_repair")
    secretary = world.actor("sec_a1")

    def found(q):
        return [a.demand.title for a in assignments.list_assignments(
            world.session, actor=secretary, filters={"q": q}).items]

    assert found("水管") == ["修理水管"]
    assert found("Unit x") == ["独居老人探访"]
    assert sorted(found("unit")) == ["修理水管", "独居老人探访"]  # case-insensitive
    assert found("50%") == []


def test_claims_filter_by_the_leads_share_and_the_items_status(world):
    share = claim(world, "x", "d_a1")
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                              assignment_id=share.id, now=NOW)
    unit = world.actor("unit_x")
    leading = assignments.list_assignments(world.session, actor=unit, filters={
        "is_lead": True, "demand_status": "partly_covered,covered,in_progress"})
    assert [a.id for a in leading.items] == [share.id]
    assert assignments.list_assignments(world.session, actor=unit, filters={
        "is_lead": False}).total == 0
    assert assignments.list_assignments(world.session, actor=unit, filters={
        "demand_status": "closed"}).total == 0


def test_the_assignment_api_takes_q(client, world):
    claim(world, "x", "d_a1")
    headers = world.headers("sec_a1")
    assert client.get("/api/v1/assignments?q=独居", headers=headers).json["total"] == 1
    assert client.get("/api/v1/assignments?q=理发", headers=headers).json["total"] == 0


# ---- stock movements ------------------------------------------------------------------------------

def test_stock_movements_are_searched_by_goods_reason_and_donor(world):
    rice = goods(world, "大米", stock=5)
    goods(world, "食用油", stock=3)
    market.receive_donation(world.session, actor=world.actor("sec_a1"), item_id=rice.id,
                            quantity=2, value_fen=100, unit_id=world["x"], reason="中秋慰问",
                            now=NOW + timedelta(minutes=1))
    clerk = world.actor("clerk_a1")

    def kinds(q):
        return sorted((m.item_id, m.delta) for m in market.list_stock_movements(
            world.session, actor=clerk, community_id=world["a1"], filters={"q": q}).items)

    assert kinds("大米") == [(rice.id, 2), (rice.id, 5)]
    assert kinds("中秋") == [(rice.id, 2)]
    assert kinds("Unit x") == [(rice.id, 2)]
    assert len(kinds("爱心居民")) == 2  # the residents' donations, by the donor's name
    assert kinds("面粉") == []


def test_the_stock_movement_api_takes_q(client, world):
    goods(world, "大米", stock=5)
    goods(world, "食用油", stock=3)
    found = client.get(f"/api/v1/market/stock-movements?community_id={world['a1']}&q=食用油",
                       headers=world.headers("clerk_a1")).json
    assert found["total"] == 1 and found["items"][0]["delta"] == 3
