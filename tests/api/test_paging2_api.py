"""The API lists' new filters: `q` on reports and proposals (the item's title or the unit's
name), category, year and `q` on service records, kind and `q` on notifications, and a
statement's lines paged with kind, dates and `q`."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.api.error_shape import refused
from tests.conftest import NOW
from tests.factories import category_id, claim, make_demand
from tests.integration.lovebank_helpers import key
from web.services import assignments, lovebank, reports
from web.services.notifications import notify

pytestmark = pytest.mark.db

API = "/api/v1"


def get(client, world, path: str, name: str, **query):
    return client.get(f"{API}{path}", headers=world.headers(name), query_string=query)


def reported(world, unit: str, key_: str, verify: bool = False):
    share = claim(world, unit, key_)
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                              assignment_id=share.id, now=NOW)
    report = reports.submit_report(
        world.session, actor=world.actor(f"unit_{unit}"), demand_id=world[key_],
        started_on=date(2026, 11, 18), ended_on=date(2026, 11, 19),
        volunteers=[{"user_id": world.users["res_a1"], "minutes": 90}],
        beneficiaries_served=1, value_fen=1000, now=NOW)
    if verify:
        reports.verify_report(world.session, actor=world.actor("sec_a1"), report_id=report.id,
                              now=NOW)
    return report


def test_reports_are_searched_by_item_title_or_unit_name(client, world):
    world.ids["d_lamp"] = make_demand(world.session, world, "a1", "sec_a1", title="修楼道灯")
    reported(world, "x", "d_a1")
    lamp = reported(world, "y", "d_lamp")
    r = get(client, world, "/reports", "sec_a1", q="楼道")
    assert r.status_code == 200 and [i["id"] for i in r.json["items"]] == [lamp.id]
    assert get(client, world, "/reports", "sec_a1", q="Unit y").json["total"] == 1
    assert get(client, world, "/reports", "sec_a1", q="%").json["total"] == 0


def test_proposals_are_searched_by_item_title_or_unit_name(client, world):
    run = client.post(f"{API}/matching/runs", headers=world.headers("sec_a1"),
                      json={"community_id": world["a1"]})
    assert run.status_code == 201, run.json
    every = get(client, world, "/matching/proposals", "sec_a1").json["total"]
    assert every >= 1
    assert get(client, world, "/matching/proposals", "sec_a1", q="独居").json["total"] == every
    assert get(client, world, "/matching/proposals", "sec_a1", q="没有这个").json["total"] == 0


def test_a_search_longer_than_a_hundred_characters_is_refused(client, world):
    r = get(client, world, "/reports", "sec_a1", q="字" * 101)
    assert r.status_code == 422 and "query.q" in refused(r, 422)["fields"]


def test_service_records_are_filtered_by_category_year_and_words(client, world):
    reported(world, "x", "d_a1", verify=True)
    mine = {"user_id": world.users["res_a1"]}
    care = category_id(world.session)
    assert get(client, world, "/service-records", "res_a1", category_id=care,
               **mine).json["total"] == 1
    assert get(client, world, "/service-records", "res_a1",
               category_id=category_id(world.session, "repairs"), **mine).json["total"] == 0
    assert get(client, world, "/service-records", "res_a1", year=2026).json["total"] == 1
    assert get(client, world, "/service-records", "res_a1", year=2025).json["total"] == 0
    assert get(client, world, "/service-records", "res_a1", q="独居").json["total"] == 1
    assert get(client, world, "/service-records", "res_a1", q="Unit y").json["total"] == 0
    assert get(client, world, "/service-records", "res_a1", year=0).status_code == 422


def tell(world, kind: str, params: dict, demand_id=None):
    notify(world.session, user_ids=[world.users["res_a1"]], kind=kind, params=params, now=NOW,
           demand_id=demand_id)
    world.session.commit()


def test_notifications_are_filtered_by_one_or_several_kinds(client, world):
    tell(world, "wish_accepted", {"title": "修楼道灯"})
    tell(world, "wish_declined", {"title": "装电梯", "reason": "超出范围"})
    tell(world, "points_expired", {"points": 3})
    one = get(client, world, "/notifications", "res_a1", kind="wish_declined")
    assert [i["kind"] for i in one.json["items"]] == ["wish_declined"]
    two = get(client, world, "/notifications", "res_a1", kind="wish_declined,points_expired")
    assert two.json["total"] == 2


def test_an_unknown_notification_kind_is_refused(client, world):
    r = get(client, world, "/notifications", "res_a1", kind="wish_accepted,nonsense")
    assert "query.kind" in refused(r, 422)["fields"]


def test_notifications_are_searched_in_their_params_and_their_items_title(client, world):
    tell(world, "wish_declined", {"title": "装电梯", "reason": "超出范围"})
    tell(world, "confirm_requested", {"title": "别的"}, demand_id=world["d_a1"])
    assert get(client, world, "/notifications", "res_a1", q="超出").json["total"] == 1
    assert get(client, world, "/notifications", "res_a1", q="独居老人").json["total"] == 1
    assert get(client, world, "/notifications", "res_a1", q="_").json["total"] == 0


def test_statement_lines_are_paged_and_filtered_by_kind_day_and_reason(client, world):
    for n in range(3):
        lovebank.adjust_points(world.session, actor=world.actor("sec_a1"),
                               community_id=world["a1"], user_id=world.users["res_a1"],
                               points=2, reason=f"第{n}次清扫", idempotency_key=key("adj"),
                               now=NOW - timedelta(days=n))
    r = get(client, world, "/ledger/statement/lines", "res_a1", per_page=2)
    assert (r.json["total"], r.json["pages"], len(r.json["items"])) == (3, 2, 2)
    assert r.json["items"][0]["reason"] == "第0次清扫"
    assert r.json["items"][0]["community_id"] == world["a1"]
    assert get(client, world, "/ledger/statement/lines", "res_a1",
               kind="adjustment").json["total"] == 3
    assert get(client, world, "/ledger/statement/lines", "res_a1",
               kind="gift").json["total"] == 0
    assert get(client, world, "/ledger/statement/lines", "res_a1", on_from="2026-11-19",
               on_to="2026-11-19").json["total"] == 1
    assert get(client, world, "/ledger/statement/lines", "res_a1", q="第2次").json["total"] == 1
    assert get(client, world, "/ledger/statement/lines", "res_a1",
               kind="donation").status_code == 422
    assert get(client, world, "/ledger/statement", "res_a1").json[0]["balance"] == 6


def test_someone_elses_statement_lines_are_not_found(client, world):
    lovebank.adjust_points(world.session, actor=world.actor("sec_a1"), community_id=world["a1"],
                           user_id=world.users["res_a1"], points=2, reason="测试",
                           idempotency_key=key("adj"), now=NOW)
    r = get(client, world, "/ledger/statement/lines", "res_b1", user_id=world.users["res_a1"])
    assert r.status_code == 404
