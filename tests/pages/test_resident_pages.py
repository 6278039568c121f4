"""The resident's pages through the test client: a micro-wish sent, followed and withdrawn; an
activity signed up for (the waiting list when full) and withdrawn; a verified service confirmed
with a rating; the volunteer record with its certificate and downloads. Other residents see and
change none of it."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest

from tests.conftest import NOW
from tests.factories import category_id, claim
from tests.pages.helpers import alerts, csrf, field_error, sign_in
from web.models import DemandItem, MicroWish, SessionSignup
from web.services import activities, assignments, reports, volunteers, wishes
from web.services.base import utcnow

pytestmark = pytest.mark.db


def signed_in(client, name: str = "res_a1") -> str:
    """Sign in and return a page's CSRF token."""
    return csrf(sign_in(client, name).text)


def wish(world, name: str = "res_a1", title: str = "楼道灯坏了") -> MicroWish:
    return wishes.submit_wish(world.session, actor=world.actor(name), title=title,
                              description="三楼", category_id=category_id(world.session),
                              now=NOW)


def become_volunteer(world, name: str = "res_a1") -> None:
    volunteers.save_profile(world.session, actor=world.actor(name), data={"skills": ["陪护"]},
                            now=NOW)


def coming_session(world, community: str = "a1", headcount: int = 2, title: str = "周六探访"):
    """A session of a post in `community`, starting tomorrow (real time: sign-ups use it)."""
    secretary = f"sec_{community}"
    post = volunteers.create_post(world.session, actor=world.actor(secretary),
                                  community_id=world[community], data={
                                      "kind": "elderly_visiting", "title": "探访独居老人",
                                      "category_id": category_id(world.session),
                                      "headcount": 5})
    start = utcnow() + timedelta(days=1)
    return activities.create_session(world.session, actor=world.actor(secretary), data={
        "post_id": post.id, "title": title, "place": "社区活动室", "starts_at": start,
        "ends_at": start + timedelta(hours=2), "headcount": headcount})


def verified_for_res_a1(world) -> int:
    """d_a1 (res_a1 is its beneficiary) worked by unit x and verified; res_a1 served 150 min."""
    share = claim(world, "x", "d_a1", 3)
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                              assignment_id=share.id, now=NOW)
    report = reports.submit_report(
        world.session, actor=world.actor("unit_x"), demand_id=world["d_a1"],
        started_on=date(2026, 11, 18), ended_on=date(2026, 11, 19),
        volunteers=[{"user_id": world.users["res_a1"], "minutes": 150}],
        beneficiaries_served=1, value_fen=15000, now=NOW)
    reports.verify_report(world.session, actor=world.actor("sec_a1"), report_id=report.id,
                          now=NOW)
    return world["d_a1"]


# ---- menus and who may come in ----------------------------------------------------------------

def test_the_residents_menu_lists_wishes_activities_services_and_the_volunteer_record(client,
                                                                                     world):
    page = sign_in(client, "res_a1")
    for label in ("我的积分", "公益超市", "我的微心愿", "志愿活动", "为我服务", "我的志愿服务"):
        assert label in page.text, label


def test_someone_who_is_not_a_resident_is_refused_the_residents_pages(client, world):
    sign_in(client, "unit_x")
    for path in ("/me/wishes", "/me/activities", "/me/services", "/me/volunteering",
                 "/me/volunteering/certificate"):
        assert client.get(path).status_code == 403, path


# ---- micro-wishes -----------------------------------------------------------------------------

def test_a_resident_sends_a_wish_and_sees_it_listed_as_sent(client, world):
    token = signed_in(client)
    sent = client.post("/me/wishes", data={"title": "想请人帮忙换灯泡", "description": "二楼",
                                            "category_id": str(category_id(world.session)),
                                            "csrf_token": token}, follow_redirects=True)
    stored = world.session.query(MicroWish).one()
    assert sent.request.path == f"/me/wishes/{stored.id}"
    assert "微心愿已提交" in " ".join(alerts(sent.text))
    assert stored.title == "想请人帮忙换灯泡" and stored.grid_id == world["g_a1"]
    listed = client.get("/me/wishes")
    assert "想请人帮忙换灯泡" in listed.text and "已提交" in listed.text


def test_a_wish_without_a_title_is_refused_next_to_the_field_and_nothing_is_saved(client, world):
    token = signed_in(client)
    refused = client.post("/me/wishes", data={"title": "  ", "description": "x" * 2001,
                                               "csrf_token": token})
    assert refused.status_code == 422
    assert field_error(refused.text, "title") == "请填写此项。"
    assert "2000" in field_error(refused.text, "description")
    assert 'value="' in refused.text and "x" * 2001 in refused.text  # what she typed stays
    assert world.session.query(MicroWish).count() == 0


def test_my_wishes_are_searchable_filterable_and_downloadable(client, world):
    wish(world, title="楼道灯坏了")
    second = wish(world, title="想学用手机")
    wishes.decline_wish(world.session, actor=world.actor("sec_a1"), wish_id=second.id,
                        reason="已转社区培训班")
    signed_in(client)
    assert "想学用手机" in client.get("/me/wishes?q=手机").text
    assert "楼道灯坏了" not in client.get("/me/wishes?q=手机").text
    declined = client.get("/me/wishes?status=declined").text
    assert "想学用手机" in declined and "楼道灯坏了" not in declined
    assert "已转社区培训班" in declined
    download = client.get("/me/wishes?format=csv&status=declined")
    rows = list(csv.reader(io.StringIO(download.data.decode("utf-8-sig"))))
    assert rows[0][:2] == ["编号", "微心愿"] and [r[1] for r in rows[1:]] == ["想学用手机"]


def test_the_wish_page_shows_what_became_of_it(client, world):
    mine = wish(world)
    wishes.accept_wish(world.session, actor=world.actor("grid_a1"), wish_id=mine.id, demand={})
    signed_in(client)
    page = client.get(f"/me/wishes/{mine.id}")
    assert page.status_code == 200
    assert "已受理" in page.text and "已列入社区需求清单" in page.text


def test_withdrawing_a_wish_asks_first_and_then_withdraws_it(client, world):
    mine = wish(world)
    token = signed_in(client)
    asked = client.post(f"/me/wishes/{mine.id}/withdraw", data={"csrf_token": token})
    assert asked.status_code == 200 and "确定撤回这个微心愿吗" in asked.text
    world.session.refresh(mine)
    assert mine.status == "submitted"
    done = client.post(f"/me/wishes/{mine.id}/withdraw",
                       data={"csrf_token": token, "confirmed": "1"}, follow_redirects=True)
    assert "微心愿已撤回。" in alerts(done.text)
    world.session.refresh(mine)
    assert mine.status == "withdrawn"


def test_another_resident_can_neither_see_nor_withdraw_my_wish(client, world):
    mine = wish(world)
    token = signed_in(client, "res_b1")
    assert client.get(f"/me/wishes/{mine.id}").status_code == 404
    assert "楼道灯坏了" not in client.get("/me/wishes").text
    refused = client.post(f"/me/wishes/{mine.id}/withdraw",
                          data={"csrf_token": token, "confirmed": "1"})
    assert refused.status_code == 404
    world.session.refresh(mine)
    assert mine.status == "submitted"


# ---- activities -------------------------------------------------------------------------------

def test_coming_activities_of_my_community_are_listed_and_others_are_not(client, world):
    coming_session(world, "a1", title="周六探访")
    coming_session(world, "b1", title="别处的活动")
    signed_in(client)
    page = client.get("/me/activities")
    assert "周六探访" in page.text and "别处的活动" not in page.text
    assert "还剩 2 个名额" in page.text


def test_a_resident_who_is_not_a_volunteer_is_told_how_to_become_one(client, world):
    act = coming_session(world)
    token = signed_in(client)
    assert "登记为志愿者后才能报名" in client.get("/me/activities").text
    client.post(f"/me/activities/{act.id}/sign-up", data={"csrf_token": token})
    assert world.session.query(SessionSignup).count() == 0


def test_a_volunteer_signs_up_then_a_full_session_puts_the_next_on_the_waiting_list(
        app, client, world):
    become_volunteer(world, "res_a1")
    act = coming_session(world, headcount=1)
    token = signed_in(client)
    done = client.post(f"/me/activities/{act.id}/sign-up", data={"csrf_token": token},
                       follow_redirects=True)
    assert done.request.path == "/me/activities/mine"
    assert "您已报名“周六探访”。" in alerts(done.text) and "已报名" in done.text
    again = client.post(f"/me/activities/{act.id}/sign-up", data={"csrf_token": token},
                        follow_redirects=True)
    assert "您已经报名了这个活动。" in alerts(again.text)
    assert world.session.query(SessionSignup).count() == 1

    from tests.factories import make_user
    world.users["res_a1b"] = make_user(world.session, "res_a1b", {
        "role": "resident", "community_id": world["a1"], "grid_id": world["g_a1"]}).id
    become_volunteer(world, "res_a1b")
    other = app.test_client()
    waiting = other.post(f"/me/activities/{act.id}/sign-up",
                         data={"csrf_token": signed_in(other, "res_a1b")},
                         follow_redirects=True)
    assert "您已进入候补名单" in " ".join(alerts(waiting.text)) and "候补中" in waiting.text


def test_withdrawing_a_sign_up_asks_first_and_frees_the_place(client, world):
    become_volunteer(world, "res_a1")
    act = coming_session(world)
    signup = activities.sign_up(world.session, actor=world.actor("res_a1"),
                                session_id=act.id)[0]
    token = signed_in(client)
    listed = client.get("/me/activities/mine")
    assert "周六探访" in listed.text and 'data-testid="withdraw-signup"' in listed.text
    asked = client.post(f"/me/signups/{signup.id}/withdraw", data={"csrf_token": token})
    assert "确定取消报名吗" in asked.text
    world.session.refresh(signup)
    assert signup.status == "signed_up"
    client.post(f"/me/signups/{signup.id}/withdraw",
                data={"csrf_token": token, "confirmed": "1"})
    world.session.refresh(signup)
    assert signup.status == "withdrawn"


def test_a_resident_cannot_sign_up_for_another_communitys_session_or_withdraw_anothers_place(
        client, world):
    become_volunteer(world, "res_a1")
    become_volunteer(world, "res_b1")
    elsewhere = coming_session(world, "a1")
    theirs = activities.sign_up(world.session, actor=world.actor("res_a1"),
                                session_id=elsewhere.id)[0]
    token = signed_in(client, "res_b1")
    assert client.post(f"/me/activities/{elsewhere.id}/sign-up",
                       data={"csrf_token": token}).status_code == 404
    assert client.post(f"/me/signups/{theirs.id}/withdraw",
                       data={"csrf_token": token, "confirmed": "1"}).status_code == 404
    world.session.refresh(theirs)
    assert theirs.status == "signed_up"
    assert world.session.query(SessionSignup).count() == 1


# ---- confirming and rating a service ----------------------------------------------------------

def test_a_verified_service_waits_for_my_confirmation_and_a_rating_closes_it(client, world):
    demand_id = verified_for_res_a1(world)
    token = signed_in(client)
    services = client.get("/me/services")
    assert f'data-testid="rate-{demand_id}"' in services.text
    form = client.get(f"/me/services/{demand_id}")
    for n in range(1, 6):  # each star is a labelled radio button
        assert f'id="rating-{n}"' in form.text and f'for="rating-{n}"' in form.text
    done = client.post(f"/me/services/{demand_id}", data={
        "rating": "4", "comment": "来得很及时", "csrf_token": token, "confirmed": "1"},
        follow_redirects=True)
    assert "评价已记录" in " ".join(alerts(done.text))
    demand = world.session.get(DemandItem, demand_id)
    world.session.refresh(demand)
    assert (demand.status, demand.rating, demand.rating_comment) == ("closed", 4, "来得很及时")
    assert "来得很及时" in done.text


def test_confirming_asks_first_and_a_missing_rating_is_refused_next_to_the_stars(client, world):
    demand_id = verified_for_res_a1(world)
    token = signed_in(client)
    asked = client.post(f"/me/services/{demand_id}", data={"rating": "5", "csrf_token": token})
    assert "确认这件事已经办好并提交评价吗" in asked.text
    refused = client.post(f"/me/services/{demand_id}", data={
        "rating": "", "comment": "还行", "csrf_token": token, "confirmed": "1"})
    assert refused.status_code == 422 and field_error(refused.text, "rating") == "请填写此项。"
    assert "还行" in refused.text
    too_high = client.post(f"/me/services/{demand_id}", data={
        "rating": "9", "csrf_token": token, "confirmed": "1"})
    assert too_high.status_code == 422 and "1" in field_error(too_high.text, "rating")
    demand = world.session.get(DemandItem, demand_id)
    world.session.refresh(demand)
    assert demand.status == "verified" and demand.rating is None


def test_another_resident_cannot_see_or_rate_my_service(client, world):
    demand_id = verified_for_res_a1(world)
    token = signed_in(client, "res_b1")
    assert client.get(f"/me/services/{demand_id}").status_code == 404
    refused = client.post(f"/me/services/{demand_id}", data={
        "rating": "1", "csrf_token": token, "confirmed": "1"})
    assert refused.status_code == 404
    demand = world.session.get(DemandItem, demand_id)
    world.session.refresh(demand)
    assert demand.status == "verified"


# ---- the volunteer record ---------------------------------------------------------------------

def test_the_volunteer_record_counts_verified_hours_by_kind_and_year(client, world):
    verified_for_res_a1(world)
    signed_in(client)
    page = client.get("/me/volunteering")
    assert re.search(r'data-testid="total-hours">2\.50<', page.text)
    assert "养老助老" in page.text and "2026" in page.text and "独居老人探访" in page.text
    download = client.get("/me/volunteering?format=csv")
    rows = list(csv.reader(io.StringIO(download.data.decode("utf-8-sig"))))
    assert rows[0] == ["日期", "服务内容", "类别", "时长(小时)", "核实时间"]
    assert rows[1][2:4] == ["养老助老", "2.5"]
    xlsx = client.get("/me/volunteering?format=xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    assert "没有找到" in client.get("/me/volunteering?year=2020").text


def test_the_certificate_shows_hours_by_kind_and_prints_without_the_menu(client, world):
    verified_for_res_a1(world)
    signed_in(client)
    page = client.get("/me/volunteering/certificate")
    assert "志愿服务证明" in page.text and "兹证明 res_a1 同志" in page.text
    assert re.search(r'data-testid="certificate-total">2\.50<', page.text)
    assert "@media print" in page.text and "nav.navbar" in page.text
    assert "a1社区" in page.text
    empty = client.get("/me/volunteering/certificate?year=2020")
    assert "目前还没有可以证明的" in empty.text


def test_another_residents_record_is_not_in_mine(client, world):
    verified_for_res_a1(world)
    signed_in(client, "res_b1")
    page = client.get("/me/volunteering")
    assert re.search(r'data-testid="total-hours">0\.00<', page.text)
    assert "独居老人探访" not in page.text
