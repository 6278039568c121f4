"""API-level rules: refused fields, validation errors naming each field, 409 on illegal moves,
one error shape, and list endpoints that paginate, filter and sort."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW, TEST_PASSWORD
from tests.factories import category_id, claim, make_demand, make_resource
from web.models import DemandItem, ResourceItem, User
from web.services import assignments, demands

pytestmark = pytest.mark.db


# ---- helpers ----------------------------------------------------------------------------------

def error_of(response, status: int) -> dict:
    """The error body of a response, checked for the one error shape and the expected status."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert err["status"] == status
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    return err


def fields_of(response) -> dict:
    err = error_of(response, 422)
    assert err["code"] == "validation_error"
    return err["fields"]


def count(world, model) -> int:
    return world.session.scalar(select(func.count()).select_from(model))


def demand_body(world, **extra) -> dict:
    return {"community_id": world["a1"], "category_id": category_id(world.session),
            "title": "楼道照明", "quantity_needed": 2, **extra}


def resource_body(world, **extra) -> dict:
    return {"unit_id": world["x"], "kind": "volunteer_service",
            "category_id": category_id(world.session), "title": "义剪",
            "capacity_per_occasion": 2, "quantity_total": 10,
            "service_community_ids": [world["a1"]], **extra}


def covered_by_x(world, quantity: int = 3) -> int:
    """d_a1 claimed by unit x and approved; the claim's id."""
    c = claim(world, "x", "d_a1", quantity)
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"), assignment_id=c.id,
                              now=NOW)
    return c.id


# ---- fields the caller may not set ------------------------------------------------------------

DEMAND_FIELDS_NOT_SETTABLE = {
    "status": "covered", "quantity_open": 0, "quantity_confirmed": 2, "source": "secretary",
    "rating": 5, "beneficiary_user_id": 1, "created_by": 1, "id": 999,
}


def test_creating_a_demand_with_a_field_the_caller_may_not_set_is_refused_naming_it(client, world):
    sec, before = world.headers("sec_a1"), count(world, DemandItem)
    for field, value in DEMAND_FIELDS_NOT_SETTABLE.items():
        r = client.post("/api/v1/demands", headers=sec, json=demand_body(world, **{field: value}))
        assert field in fields_of(r), field
    assert count(world, DemandItem) == before


def test_editing_a_demand_cannot_set_status_quantities_or_community(client, world):
    sec = world.headers("sec_a1")
    for field, value in {"status": "closed", "quantity_open": 0, "quantity_confirmed": 3,
                         "community_id": 999, "rating": 1}.items():
        r = client.patch(f"/api/v1/demands/{world['d_a1']}", headers=sec, json={field: value})
        assert field in fields_of(r), field
    d = world.session.get(DemandItem, world["d_a1"])
    world.session.refresh(d)
    assert (d.status, d.quantity_open, d.quantity_confirmed, d.community_id) == (
        "open", 3, 0, world["a1"])


def test_creating_a_resource_with_a_field_the_caller_may_not_set_is_refused_naming_it(
        client, world):
    unit, before = world.headers("unit_x"), count(world, ResourceItem)
    for field, value in {"quantity_remaining": 5, "status": "published", "created_by": 1}.items():
        r = client.post("/api/v1/resources", headers=unit,
                        json=resource_body(world, **{field: value}))
        assert field in fields_of(r), field
    assert count(world, ResourceItem) == before


def test_editing_a_resource_cannot_set_what_remains(client, world):
    r = client.patch(f"/api/v1/resources/{world['r_x']}", headers=world.headers("unit_x"),
                     json={"quantity_remaining": 1})
    assert "quantity_remaining" in fields_of(r)
    row = world.session.get(ResourceItem, world["r_x"])
    world.session.refresh(row)
    assert row.quantity_remaining == 100


def test_a_claim_cannot_set_its_own_status_or_lead(client, world):
    r = client.post(f"/api/v1/demands/{world['d_a1']}/claims", headers=world.headers("unit_x"),
                    json={"unit_id": world["x"], "resource_id": world["r_x"], "quantity": 1,
                          "status": "approved", "is_lead": True})
    assert {"status", "is_lead"} <= set(fields_of(r))


def test_applying_as_a_unit_cannot_set_its_status(client, world):
    r = client.post("/api/v1/units", headers=world.headers("res_a1"),
                    json={"subdistrict_id": world["A"], "name": "新单位", "type": "enterprise",
                          "contact_name": "赵", "contact_phone": "13900000001",
                          "status": "approved"})
    assert "status" in fields_of(r)


def test_a_new_user_cannot_be_created_active_or_with_a_password_hash(client, world):
    r = client.post("/api/v1/users", headers=world.headers("sec_a1"), json={
        "username": "res_new", "password": TEST_PASSWORD, "display_name": "新居民",
        "roles": [{"role": "resident", "community_id": world["a1"]}],
        "is_active": True, "password_hash": "x"})
    assert {"is_active", "password_hash"} <= set(fields_of(r))


OUT_OF_SCOPE_ROLES = [
    ("sec_a1", {"role": "secretary", "community_id": "a1"}),
    ("sec_a1", {"role": "subdistrict_admin", "subdistrict_id": "A"}),
    ("sec_a1", {"role": "resident", "community_id": "b1"}),
    ("sec_a1", {"role": "unit_admin", "unit_id": "x"}),
    ("admin_a", {"role": "secretary", "community_id": "b1"}),
    ("unit_x", {"role": "unit_admin", "unit_id": "y"}),
    ("res_a1", {"role": "resident", "community_id": "a1"}),
]


def test_creating_a_user_with_a_role_outside_the_callers_scope_is_forbidden(client, world):
    for who, role in OUT_OF_SCOPE_ROLES:
        spec = {k: (world[v] if k != "role" else v) for k, v in role.items()}
        r = client.post("/api/v1/users", headers=world.headers(who), json={
            "username": "someone_new", "password": TEST_PASSWORD, "display_name": "某人",
            "roles": [spec]})
        assert error_of(r, 403)["code"] == "forbidden", (who, role)
    assert world.session.scalar(select(User.id).where(User.username == "someone_new")) is None


def test_a_secretary_creates_a_resident_of_their_own_community(client, world):
    r = client.post("/api/v1/users", headers=world.headers("sec_a1"), json={
        "username": "someone_new", "password": TEST_PASSWORD, "display_name": "某人",
        "roles": [{"role": "resident", "community_id": world["a1"], "grid_id": world["g_a1"]}]})
    assert r.status_code == 201, r.json
    assert r.json["roles"][0]["role"] == "resident"


# ---- validation errors name each bad field ----------------------------------------------------

def test_missing_required_fields_are_each_named(client, world):
    r = client.post("/api/v1/demands", headers=world.headers("sec_a1"),
                    json={"community_id": world["a1"]})
    assert {"category_id", "title", "quantity_needed"} <= set(fields_of(r))


def test_a_field_of_the_wrong_type_is_named(client, world):
    r = client.post("/api/v1/demands", headers=world.headers("sec_a1"),
                    json=demand_body(world, quantity_needed="three", required_skills="陪护"))
    assert {"quantity_needed", "required_skills"} <= set(fields_of(r))


OUT_OF_RANGE = [
    ("quantity_needed", 0), ("quantity_needed", 100_001), ("lat", 91.0), ("lng", -181.0),
    ("urgency", "extreme"), ("title", ""), ("beneficiaries_count", -1),
]


def test_a_value_out_of_range_is_named(client, world):
    sec, before = world.headers("sec_a1"), count(world, DemandItem)
    for field, value in OUT_OF_RANGE:
        r = client.post("/api/v1/demands", headers=sec, json=demand_body(world, **{field: value}))
        assert field in fields_of(r), (field, value)
    assert count(world, DemandItem) == before


def test_a_window_that_ends_before_it_starts_names_window_end(client, world):
    r = client.post("/api/v1/demands", headers=world.headers("sec_a1"), json=demand_body(
        world, window_start="2026-11-25T10:00:00+08:00", window_end="2026-11-25T09:00:00+08:00"))
    assert "window_end" in fields_of(r)


def test_a_naive_date_time_is_refused_naming_the_field(client, world):
    r = client.post("/api/v1/demands", headers=world.headers("sec_a1"),
                    json=demand_body(world, deadline="2026-11-25T10:00:00"))
    assert "deadline" in fields_of(r)


def test_several_bad_fields_are_all_named_at_once(client, world):
    r = client.post("/api/v1/resources", headers=world.headers("unit_x"), json=resource_body(
        world, kind="spaceship", capacity_per_occasion=0, quantity_total="lots", lat=95))
    assert {"kind", "capacity_per_occasion", "quantity_total", "lat"} <= set(fields_of(r))


def test_a_bad_volunteer_line_in_a_report_is_named_by_its_position(client, world):
    covered_by_x(world)
    r = client.post(f"/api/v1/demands/{world['d_a1']}/reports", headers=world.headers("unit_x"),
                    json={"started_on": "2026-11-18", "ended_on": "2026-11-19",
                          "beneficiaries_served": 1, "value_fen": 100,
                          "volunteers": [{"name": "张三", "phone": "135", "hours": "0"},
                                         {"name": "李四", "phone": "136", "hours": "abc"},
                                         {"name": "王五", "phone": "137", "hours": "2"},
                                         {"name": "赵六", "phone": "138"}]})
    fields = fields_of(r)
    assert {"volunteers.0.hours", "volunteers.1.hours", "volunteers.3.hours"} <= set(fields)
    assert not any(k.startswith("volunteers.2") for k in fields)


def test_a_rule_broken_inside_the_service_is_also_a_422_naming_the_field(client, world):
    r = client.post("/api/v1/demands", headers=world.headers("sec_a1"),
                    json=demand_body(world, grid_id=world["g_a2"]))
    assert "grid_id" in fields_of(r)
    r = client.post(f"/api/v1/demands/{world['d_a1']}/claims", headers=world.headers("unit_x"),
                    json={"unit_id": world["x"], "resource_id": world["r_x"], "quantity": 3,
                          "note": "x" * 501})
    assert "note" in fields_of(r)


def test_a_report_ending_in_the_future_is_a_422_naming_ended_on(client, world):
    covered_by_x(world)
    r = client.post(f"/api/v1/demands/{world['d_a1']}/reports", headers=world.headers("unit_x"),
                    json={"started_on": "2026-11-18", "ended_on": "2999-12-31",
                          "beneficiaries_served": 1, "value_fen": 100,
                          "volunteers": [{"name": "张三", "phone": "135", "hours": "1"}]})
    assert "ended_on" in fields_of(r)


def test_a_rating_outside_one_to_five_is_named(client, world):
    r = client.post(f"/api/v1/demands/{world['d_a1']}/confirmation",
                    headers=world.headers("res_a1"), json={"rating": 6})
    assert "rating" in fields_of(r)


def test_a_body_that_is_not_json_is_refused_in_the_error_shape(client, world):
    r = client.post("/api/v1/demands", headers={**world.headers("sec_a1"),
                                                "Content-Type": "application/json"},
                    data="{not json")
    assert r.status_code in (400, 422)
    error_of(r, r.status_code)


# ---- illegal transitions answer 409 -----------------------------------------------------------

def test_approving_a_claim_twice_answers_409_illegal_transition(client, world):
    c = claim(world, "x", "d_a1", 2)
    sec = world.headers("sec_a1")
    assert client.post(f"/api/v1/assignments/{c.id}/approve", headers=sec).status_code == 200
    err = error_of(client.post(f"/api/v1/assignments/{c.id}/approve", headers=sec), 409)
    assert err["code"] == "illegal_transition"
    assert (err["current"], err["target"]) == ("approved", "approved")


def test_approving_a_rejected_claim_answers_409_and_changes_nothing(client, world):
    c = claim(world, "x", "d_a1", 2)
    sec = world.headers("sec_a1")
    r = client.post(f"/api/v1/assignments/{c.id}/reject", headers=sec, json={"reason": "重复"})
    assert r.status_code == 200, r.json
    err = error_of(client.post(f"/api/v1/assignments/{c.id}/approve", headers=sec), 409)
    assert err["code"] == "illegal_transition"
    d = client.get(f"/api/v1/demands/{world['d_a1']}", headers=sec).json
    assert (d["status"], d["quantity_open"], d["quantity_confirmed"]) == ("open", 3, 0)


def test_publishing_an_open_demand_answers_409_illegal_transition(client, world):
    r = client.post(f"/api/v1/demands/{world['d_a1']}/publish", headers=world.headers("sec_a1"))
    assert error_of(r, 409)["code"] == "illegal_transition"


def test_confirming_unverified_work_answers_409_illegal_transition(client, world):
    covered_by_x(world)
    r = client.post(f"/api/v1/demands/{world['d_a1']}/confirmation",
                    headers=world.headers("res_a1"), json={"rating": 5})
    assert error_of(r, 409)["code"] == "illegal_transition"


def test_verifying_a_report_twice_answers_409_illegal_transition(client, world):
    covered_by_x(world)
    unit, sec = world.headers("unit_x"), world.headers("sec_a1")
    report = client.post(f"/api/v1/demands/{world['d_a1']}/reports", headers=unit, json={
        "started_on": "2026-11-18", "ended_on": "2026-11-19", "beneficiaries_served": 1,
        "value_fen": 100, "volunteers": [{"name": "张三", "phone": "135", "hours": "1.5"}]}).json
    assert client.post(f"/api/v1/reports/{report['id']}/verify", headers=sec).status_code == 200
    r = client.post(f"/api/v1/reports/{report['id']}/verify", headers=sec)
    assert error_of(r, 409)["code"] == "illegal_transition"
    assert client.get("/api/v1/service-records", headers=sec).json["total"] == 1


def test_withdrawing_a_declined_wish_answers_409_illegal_transition(client, world):
    res = world.headers("res_a1")
    wish = client.post("/api/v1/micro-wishes", headers=res, json={"title": "换灯泡"}).json
    r = client.post(f"/api/v1/micro-wishes/{wish['id']}/decline", headers=world.headers("sec_a1"),
                    json={"reason": "物业负责"})
    assert r.status_code == 200, r.json
    r = client.post(f"/api/v1/micro-wishes/{wish['id']}/withdraw", headers=res)
    assert error_of(r, 409)["code"] == "illegal_transition"
    seen = client.get(f"/api/v1/micro-wishes/{wish['id']}", headers=res).json
    assert (seen["status"], seen["decision_reason"]) == ("declined", "物业负责")


def test_a_conflict_that_is_no_illegal_move_answers_409_conflict(client, world):
    claim(world, "y", "d_a1", 3)
    r = client.post(f"/api/v1/demands/{world['d_a1']}/claims", headers=world.headers("unit_x"),
                    json={"unit_id": world["x"], "resource_id": world["r_x"], "quantity": 1})
    assert error_of(r, 409)["code"] == "conflict"


# ---- one error shape --------------------------------------------------------------------------

def test_every_kind_of_error_has_the_one_error_shape(client, world):
    sec = world.headers("sec_a1")
    assert error_of(client.get("/api/v1/demands"), 401)["code"] == "unauthenticated"
    assert error_of(client.get(f"/api/v1/demands/{world['d_b1']}", headers=sec), 404)[
        "code"] == "not_found"
    error_of(client.get("/api/v1/no-such-thing", headers=sec), 404)
    error_of(client.delete(f"/api/v1/demands/{world['d_a1']}", headers=sec), 405)
    r = client.post(f"/api/v1/demands/{world['d_a1']}/dispatches", headers=world.headers("unit_x"),
                    json={"unit_id": world["x"], "quantity": 1})
    assert error_of(r, 403)["code"] == "forbidden"


def test_an_object_outside_the_callers_scope_answers_404_and_an_action_outside_the_role_403(
        client, world):
    c = claim(world, "x", "d_a1", 1)
    assert error_of(client.post(f"/api/v1/assignments/{c.id}/approve",
                                headers=world.headers("sec_b1")), 404)["code"] == "not_found"
    assert error_of(client.post(f"/api/v1/assignments/{c.id}/approve",
                                headers=world.headers("unit_x")), 403)["code"] == "forbidden"


# ---- lists: pagination, filters, sorting ------------------------------------------------------

@pytest.fixture
def board(world):
    """Five demands in community a2, made at different times, in different states."""
    s, sec = world.session, "sec_a2"
    ids = {}

    def make(name, hours_ago, code="elderly_care", publish=True, **extra):
        data = {"category_id": category_id(s, code), "title": name, "quantity_needed":
                extra.pop("quantity", 2), **extra}
        d = demands.create_demand(s, actor=world.actor(sec), community_id=world["a2"], data=data,
                                  publish=publish, now=NOW - timedelta(hours=hours_ago))
        ids[name] = d.id

    make("Alpha 探访独居老人", 240, required_skills=["陪护"], grid_id=world["g_a2"])
    make("Bravo 修水管", 120, code="repairs", required_skills=["水电"])
    make("Charlie 法律讲座", 24, code="legal", publish=False, required_skills=["法律"])
    make("Delta 打扫", 2, code="environment", description="清理三号楼楼道杂物")
    make("Echo 陪老人聊天", 1, quantity=1)
    demands.cancel_demand(s, actor=world.actor(sec), demand_id=ids["Delta 打扫"],
                          reason="已由物业处理", now=NOW)
    echo = assignments.claim_demand(s, actor=world.actor("unit_x"), demand_id=ids["Echo 陪老人聊天"],
                                    unit_id=world["x"], resource_id=world["r_x"], quantity=1,
                                    now=NOW)
    assignments.approve_claim(s, actor=world.actor(sec), assignment_id=echo.id, now=NOW)
    return ids


def titles(client, world, who="sec_a2", **query) -> list[str]:
    r = client.get("/api/v1/demands", headers=world.headers(who), query_string=query)
    assert r.status_code == 200, r.json
    return [d["title"] for d in r.json["items"]]


def test_a_list_says_its_page_per_page_total_and_pages(client, world, board):
    r = client.get("/api/v1/demands", headers=world.headers("sec_a2"),
                   query_string={"per_page": 2, "page": 1, "sort": "title"})
    body = r.json
    assert (body["page"], body["per_page"], body["total"], body["pages"]) == (1, 2, 5, 3)
    assert [d["title"] for d in body["items"]] == ["Alpha 探访独居老人", "Bravo 修水管"]
    last = client.get("/api/v1/demands", headers=world.headers("sec_a2"),
                      query_string={"per_page": 2, "page": 3, "sort": "title"}).json
    assert [d["title"] for d in last["items"]] == ["Echo 陪老人聊天"]
    beyond = client.get("/api/v1/demands", headers=world.headers("sec_a2"),
                        query_string={"per_page": 2, "page": 4}).json
    assert (beyond["items"], beyond["total"]) == ([], 5)


def test_the_default_page_is_the_first_twenty(client, world, board):
    body = client.get("/api/v1/demands", headers=world.headers("sec_a2")).json
    assert (body["page"], body["per_page"], body["total"], body["pages"]) == (1, 20, 5, 1)


def test_an_empty_list_has_no_pages(client, world):
    body = client.get("/api/v1/demands", headers=world.headers("sec_a2")).json
    assert (body["items"], body["total"], body["pages"]) == ([], 0, 0)


BAD_LIST_ARGS = [
    ({"page": 0}, "page"), ({"per_page": 0}, "per_page"), ({"per_page": 101}, "per_page"),
    ({"page": "x"}, "page"), ({"sort": "beneficiary_phone"}, "sort"), ({"sort": "-id;"}, "sort"),
    ({"status": "open,nonsense"}, "status"), ({"category_id": "elderly"}, "category_id"),
    ({"created_from": "yesterday"}, "created_from"), ({"claimable": "maybe"}, "claimable"),
]


def test_a_bad_list_argument_is_a_422_naming_it(client, world):
    sec = world.headers("sec_a2")
    for query, field in BAD_LIST_ARGS:
        r = client.get("/api/v1/demands", headers=sec, query_string=query)
        assert any(name.split(".")[-1] == field for name in fields_of(r)), (query, r.json)


def test_demands_sort_by_newest_first_by_default_and_on_request(client, world, board):
    newest_first = ["Echo 陪老人聊天", "Delta 打扫", "Charlie 法律讲座", "Bravo 修水管",
                    "Alpha 探访独居老人"]
    assert titles(client, world) == newest_first
    assert titles(client, world, sort="-created_at") == newest_first
    assert titles(client, world, sort="created_at") == newest_first[::-1]


def test_demands_sort_by_title(client, world, board):
    assert titles(client, world, sort="title") == sorted(board)
    assert titles(client, world, sort="-title") == sorted(board, reverse=True)


def test_demands_filter_by_one_status_or_several_comma_separated(client, world, board):
    assert titles(client, world, status="open") == ["Bravo 修水管", "Alpha 探访独居老人"]
    assert sorted(titles(client, world, status="draft,cancelled")) == [
        "Charlie 法律讲座", "Delta 打扫"]
    assert titles(client, world, status="covered,closed") == ["Echo 陪老人聊天"]


def test_demands_filter_by_category(client, world, board):
    repairs = category_id(world.session, "repairs")
    assert titles(client, world, category_id=repairs) == ["Bravo 修水管"]


def test_demands_filter_by_community(client, world, board):
    a1 = titles(client, world, who="admin_a", community_id=world["a1"])
    a2 = titles(client, world, who="admin_a", community_id=world["a2"])
    assert a1 == ["独居老人探访"]
    assert sorted(a2) == sorted(board)


def test_demands_filter_by_grid(client, world, board):
    assert titles(client, world, grid_id=world["g_a2"]) == ["Alpha 探访独居老人"]


def test_demands_filter_by_unit_working_on_them(client, world, board):
    assert titles(client, world, unit_id=world["x"]) == ["Echo 陪老人聊天"]
    assert titles(client, world, unit_id=world["y"]) == []


def test_demands_filter_by_required_skill(client, world, board):
    assert titles(client, world, skill="水电") == ["Bravo 修水管"]
    assert titles(client, world, skill="水") == []


def test_demands_filter_by_text_in_title_or_description(client, world, board):
    assert titles(client, world, q="楼道") == ["Delta 打扫"]
    assert titles(client, world, q="alpha") == ["Alpha 探访独居老人"]
    assert sorted(titles(client, world, q="老人")) == ["Alpha 探访独居老人", "Echo 陪老人聊天"]


def test_demands_filter_by_creation_date_range(client, world, board):
    start = (NOW - timedelta(hours=130)).isoformat()
    end = (NOW - timedelta(hours=20)).isoformat()
    assert titles(client, world, created_from=start, created_to=end) == [
        "Charlie 法律讲座", "Bravo 修水管"]
    assert titles(client, world, created_from=(NOW - timedelta(hours=1)).isoformat()) == [
        "Echo 陪老人聊天"]


def test_demands_filter_to_those_still_claimable(client, world, board):
    assert titles(client, world, claimable="true") == ["Bravo 修水管", "Alpha 探访独居老人"]


def test_a_text_search_matches_wildcard_characters_literally(client, world, board):
    assert titles(client, world, q="%") == []
    assert titles(client, world, q="_") == []


def test_sorting_by_urgency_ranks_critical_above_urgent_above_normal(client, world):
    for title, urgency in (("A", "urgent"), ("B", "critical"), ("C", "normal")):
        make_demand(world.session, world, "a2", "sec_a2", urgency=urgency, title=title)
    assert titles(client, world, sort="-urgency") == ["B", "A", "C"]
    assert titles(client, world, sort="urgency") == ["C", "A", "B"]


def test_filters_combine(client, world, board):
    assert titles(client, world, status="open,draft", q="Charlie") == ["Charlie 法律讲座"]
    assert titles(client, world, status="open", skill="法律") == []


def test_a_unit_sees_only_published_demands_on_the_board(client, world, board):
    seen = titles(client, world, who="unit_y", community_id=world["a2"])
    assert "Charlie 法律讲座" not in seen and "Delta 打扫" not in seen
    assert sorted(seen) == ["Alpha 探访独居老人", "Bravo 修水管", "Echo 陪老人聊天"]


def test_resources_paginate_filter_and_sort(client, world):
    make_resource(world.session, world, "y", "unit_y", ["a2"], title="Aaa 义剪")
    unit = world.headers("unit_y")
    body = client.get("/api/v1/resources", headers=unit,
                      query_string={"per_page": 2, "sort": "title"}).json
    assert (body["total"], body["pages"], body["per_page"]) == (4, 2, 2)
    assert [x["title"] for x in body["items"]] == ["Aaa 义剪", "x 志愿服务"]
    r = client.get("/api/v1/resources", headers=unit, query_string={"sort": "-title"}).json
    assert [x["title"] for x in r["items"]] == ["z 志愿服务", "y 志愿服务", "x 志愿服务", "Aaa 义剪"]
    r = client.get("/api/v1/resources", headers=unit,
                   query_string={"community_id": world["b1"]}).json
    assert [x["id"] for x in r["items"]] == [world["r_z"]]
    r = client.get("/api/v1/resources", headers=unit, query_string={"unit_id": world["x"]}).json
    assert [x["id"] for x in r["items"]] == [world["r_x"]]
    r = client.get("/api/v1/resources", headers=unit, query_string={"q": "义剪"}).json
    assert [x["title"] for x in r["items"]] == ["Aaa 义剪"]
    bad = fields_of(client.get("/api/v1/resources", headers=unit,
                               query_string={"sort": "unit_id"}))
    assert any(name.split(".")[-1] == "sort" for name in bad), bad


def test_resources_filter_by_skill(client, world):
    make_resource(world.session, world, "y", "unit_y", ["a2"], skills=("理发", "按摩"),
                  title="Aaa 义剪")
    unit = world.headers("unit_y")
    r = client.get("/api/v1/resources", headers=unit, query_string={"skill": "理发"}).json
    assert [x["title"] for x in r["items"]] == ["Aaa 义剪"]
    r = client.get("/api/v1/resources", headers=unit, query_string={"skill": "陪护"}).json
    assert sorted(x["id"] for x in r["items"]) == sorted(
        [world["r_x"], world["r_y"], world["r_z"]])


def test_resources_filter_by_several_statuses_comma_separated(client, world):
    draft = make_resource(world.session, world, "x", "unit_x", ["a1"], publish=False)
    r = client.get("/api/v1/resources", headers=world.headers("unit_x"),
                   query_string={"status": "draft,published", "unit_id": world["x"]})
    assert r.status_code == 200, r.json
    assert sorted(x["id"] for x in r.json["items"]) == sorted([world["r_x"], draft])
    r = client.get("/api/v1/resources", headers=world.headers("unit_x"),
                   query_string={"status": "draft"})
    assert [x["id"] for x in r.json["items"]] == [draft]


@pytest.mark.parametrize("path,who", [
    ("/api/v1/assignments", "sec_a1"), ("/api/v1/reports", "sec_a1"),
    ("/api/v1/service-records", "sec_a1"), ("/api/v1/units", "admin_a"),
    ("/api/v1/users", "admin_a"), ("/api/v1/micro-wishes", "sec_a1"),
    ("/api/v1/resources", "unit_x"), ("/api/v1/demands", "sec_a1"),
])
def test_every_list_endpoint_answers_with_the_same_page_envelope(client, world, path, who):
    claim(world, "x", "d_a1", 1)
    body = client.get(path, headers=world.headers(who), query_string={"per_page": 1}).json
    assert set(body) == {"items", "total", "page", "per_page", "pages"}
    assert body["per_page"] == 1 and body["page"] == 1
    assert body["pages"] == body["total"]
    assert len(body["items"]) == min(1, body["total"])


def test_a_draft_demand_is_not_claimable_through_the_api(client, world):
    draft = make_demand(world.session, world, "a1", "sec_a1", publish=False)
    r = client.post(f"/api/v1/demands/{draft}/claims", headers=world.headers("unit_x"),
                    json={"unit_id": world["x"], "resource_id": world["r_x"], "quantity": 1})
    assert error_of(r, 404)["code"] == "not_found"


def test_the_claimable_board_leaves_out_items_the_units_own_share_already_holds(client, world):
    from tests.factories import claim

    claim(world, "x", "d_a1", 1)
    board = client.get("/api/v1/demands?claimable=true", headers=world.headers("unit_x")).json
    others = client.get("/api/v1/demands?claimable=true", headers=world.headers("unit_y")).json
    assert world["d_a1"] not in [d["id"] for d in board["items"]]
    assert world["d_a1"] in [d["id"] for d in others["items"]]
