"""Volunteers end to end through the HTTP API: profiles and reports (报到), the member map,
service posts and claims, sessions with a waiting list and check-in by code, confirmed hours in
the love bank, teams, and matching people to posts.

The world is set up through the services (tests/factories.py, at the fixed NOW); everything
under test is a request, sent at the real time as a client's would be. Every refusal is checked
for the one error shape and, where it could write, for having changed nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from tests.api.error_shape import refused
from tests.factories import category_id, make_user
from tests.integration.lovebank_helpers import RULES
from web.db import Base

pytestmark = pytest.mark.db

API = "/api/v1"


# ---- helpers ------------------------------------------------------------------------------------

def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.get_json(silent=True))
    return response.json


def table_counts(world) -> dict:
    """Row counts of every table: what a refused request must leave as it was (the bearer
    tokens the test client issues itself aside)."""
    session = world.session
    session.expire_all()
    return {t.name: session.scalar(select(func.count()).select_from(t))
            for t in Base.metadata.sorted_tables if t.name != "api_tokens"}


class Api:
    """Requests as one named user of the world."""

    def __init__(self, client, world):
        self.client, self.world, self.tokens = client, world, {}

    def __call__(self, who: str, method: str, path: str, **kwargs):
        if who not in self.tokens:
            self.tokens[who] = self.world.headers(who)
        return self.client.open(f"{API}{path}", method=method, headers=self.tokens[who],
                                **kwargs)


@pytest.fixture
def api(client, world) -> Api:
    return Api(client, world)


def new_resident(world, name: str, community: str = "a1") -> int:
    user = make_user(world.session, name, {"role": "resident", "community_id": world[community],
                                           "grid_id": world[f"g_{community}"]})
    world.users[name] = user.id
    return user.id


def become_volunteer(api: Api, name: str, **data) -> dict:
    if name not in api.world.users:
        new_resident(api.world, name)
    return ok(api(name, "PUT", "/volunteers/me", json={"skills": ["陪护"], **data}))


def publish_post(api: Api, headcount: int = 2, **extra) -> dict:
    body = {"community_id": api.world["a1"], "kind": "elderly_visiting", "title": "探访独居老人",
            "category_id": category_id(api.world.session), "headcount": headcount, **extra}
    return ok(api("sec_a1", "POST", "/posts", json=body), 201)


def schedule(api: Api, post_id: int, headcount: int = 5) -> dict:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return ok(api("sec_a1", "POST", "/sessions", json={
        "post_id": post_id, "title": "周六探访", "place": "社区活动室",
        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "headcount": headcount}), 201)


def sign_up(api: Api, name: str, session_id: int, **body) -> list[dict]:
    return ok(api(name, "POST", f"/sessions/{session_id}/signups", json=body), 201)


def shanghai_today() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()


# ---- profiles, reports and the member map ---------------------------------------------------

def test_a_unit_employee_reports_the_secretary_confirms_and_the_unit_sees_where_its_people_went(
        api, world):
    mine = become_volunteer(api, "res_a1", unit_id=world["x"], profession="doctor",
                            skills=["陪护", "急救"], is_party_member=True, contact_consent=False)
    assert (mine["community_id"], mine["grid_id"]) == (world["a1"], world["g_a1"])
    assert (mine["unit_id"], mine["report_status"]) == (world["x"], "pending")
    assert ok(api("res_a1", "GET", "/volunteers/me"))["id"] == mine["id"]
    become_volunteer(api, "vol_2")
    # The unit's admin sees who of its people reported where; another unit sees no one.
    seen = ok(api("unit_x", "GET", "/volunteers"))["items"]
    assert [(v["id"], v["community_id"], v["report_status"]) for v in seen] == \
        [(mine["id"], world["a1"], "pending")]
    assert ok(api("unit_y", "GET", "/volunteers"))["items"] == []
    # Only the secretary of the home community decides.
    refused(api("admin_a", "POST", f"/volunteers/{mine['id']}/report", json={"confirm": True}),
            403)
    done = ok(api("sec_a1", "POST", f"/volunteers/{mine['id']}/report", json={"confirm": True}))
    assert done["report_status"] == "confirmed"
    confirmed = ok(api("unit_x", "GET", "/volunteers", query_string={"report_status": "confirmed"}))
    assert [v["id"] for v in confirmed["items"]] == [mine["id"]]
    # Without consent the phone is not shown, not even to the secretary.
    assert ok(api("sec_a1", "GET", f"/volunteers/{mine['id']}"))["phone"] is None


def test_a_report_is_rejected_only_with_a_reason(api, world):
    mine = become_volunteer(api, "res_a1", unit_id=world["y"])
    url = f"/volunteers/{mine['id']}/report"
    before = table_counts(world)
    refused(api("sec_a1", "POST", url, json={"confirm": False}), 422)
    assert table_counts(world) == before
    done = ok(api("sec_a1", "POST", url, json={"confirm": False, "reason": "单位信息有误"}))
    assert (done["report_status"], done["report_reason"]) == ("rejected", "单位信息有误")


def test_the_member_map_shows_counts_by_grid_skill_and_party_membership_and_no_names(api, world):
    become_volunteer(api, "res_a1", unit_id=world["x"], profession="doctor", is_party_member=True,
                     skills=["陪护", "急救"], contact_consent=True)
    become_volunteer(api, "vol_2", profession="lawyer")
    become_volunteer(api, "vol_3")
    url = f"/communities/{world['a1']}/volunteer-map"
    counts = ok(api("sec_a1", "GET", url))
    assert counts["volunteers"] == 3 and counts["party_members"] == 1
    assert counts["reported"] == {"pending": 1}
    assert counts["by_grid"] == [{"grid_id": world["g_a1"], "name": "a1第一网格",
                                  "volunteers": 3, "party_members": 1}]
    assert counts["by_skill"] == {"陪护": 3, "急救": 1}
    assert counts["by_profession"] == {"doctor": 1, "lawyer": 1, "unknown": 1}
    shown = str(counts)
    for personal in ("res_a1", "vol_2", "vol_3", "13800000000", "user_id"):
        assert personal not in shown
    assert ok(api("admin_a", "GET", url)) == counts  # the subdistrict's admin reads it too
    for outsider in ("admin_b", "sec_a2", "sec_b1", "unit_x", "res_a1"):
        refused(api(outsider, "GET", url), 403)


# ---- service posts and claims ----------------------------------------------------------------

def test_a_post_takes_no_more_people_than_its_headcount_and_a_rejection_frees_the_place(
        api, world):
    post = publish_post(api, headcount=2)
    assert (post["taken"], post["places_left"], post["status"]) == (0, 2, "open")
    for name in ("res_a1", "vol_2", "vol_3"):
        become_volunteer(api, name)
    first = ok(api("res_a1", "POST", f"/posts/{post['id']}/claims"), 201)
    second = ok(api("vol_2", "POST", f"/posts/{post['id']}/claims"), 201)
    assert first["status"] == second["status"] == "pending"

    before = table_counts(world)
    refused(api("vol_3", "POST", f"/posts/{post['id']}/claims"), 409, "post_full")
    assert table_counts(world) == before
    assert ok(api("vol_3", "GET", f"/posts/{post['id']}"))["taken"] == 2
    unfilled = ok(api("vol_3", "GET", "/posts", query_string={"unfilled": "true"}))["items"]
    assert post["id"] not in {p["id"] for p in unfilled}

    decide = f"/post-claims/{first['id']}/decide"
    refused(api("sec_a1", "POST", decide, json={"confirm": False}), 422)
    assert table_counts(world) == before
    rejected = ok(api("sec_a1", "POST", decide, json={"confirm": False, "reason": "时间不合适"}))
    assert (rejected["status"], rejected["reason"]) == ("rejected", "时间不合适")
    assert ok(api("vol_3", "GET", f"/posts/{post['id']}"))["places_left"] == 1
    unfilled = ok(api("vol_3", "GET", "/posts", query_string={"unfilled": "true"}))["items"]
    assert [p["id"] for p in unfilled] == [post["id"]]

    third = ok(api("vol_3", "POST", f"/posts/{post['id']}/claims"), 201)
    confirmed = ok(api("sec_a1", "POST", f"/post-claims/{third['id']}/decide",
                       json={"confirm": True}))
    assert confirmed["status"] == "confirmed"
    mine = ok(api("res_a1", "GET", "/post-claims"))["items"]
    assert [(c["id"], c["status"]) for c in mine] == [(first["id"], "rejected")]


# ---- sessions, the waiting list, check-in and hours ------------------------------------------

def test_a_full_session_keeps_a_waiting_list_that_moves_up_when_someone_withdraws(api, world):
    post = publish_post(api)
    act = schedule(api, post["id"], headcount=1)
    shown = ok(api("res_a1", "GET", f"/sessions/{act['id']}"))
    assert "checkin_code" not in shown  # the code is shown at the venue, not in the listing
    for name in ("res_a1", "vol_2", "vol_3"):
        become_volunteer(api, name)
    [first] = sign_up(api, "res_a1", act["id"])
    [second] = sign_up(api, "vol_2", act["id"])
    [third] = sign_up(api, "vol_3", act["id"])
    assert [s["status"] for s in (first, second, third)] == ["signed_up", "waitlisted",
                                                            "waitlisted"]
    refused(api("res_a1", "POST", f"/sessions/{act['id']}/signups", json={}), 409)

    withdrawn = ok(api("res_a1", "POST", f"/signups/{first['id']}/withdraw"))
    assert withdrawn["status"] == "withdrawn"
    listed = ok(api("sec_a1", "GET", "/signups", query_string={"session_id": act["id"]}))
    assert {s["id"]: s["status"] for s in listed["items"]} == {
        first["id"]: "withdrawn", second["id"]: "signed_up", third["id"]: "waitlisted"}


def test_hours_checked_in_with_the_venue_code_and_confirmed_are_credited_once(api, world):
    rules = ok(api("sec_a1", "POST", f"/communities/{world['a1']}/points-rules",
                   json={"document": RULES, "effective_from": shanghai_today()}), 201)
    assert rules["version"] == 1
    post = publish_post(api)
    act = schedule(api, post["id"])
    become_volunteer(api, "res_a1")
    [signup] = sign_up(api, "res_a1", act["id"])

    before = table_counts(world)
    refused(api("res_a1", "POST", f"/sessions/{act['id']}/check-in", json={"code": "WRONG1"}),
            422)
    assert table_counts(world) == before
    checked_in = ok(api("res_a1", "POST", f"/sessions/{act['id']}/check-in",
                        json={"code": act["checkin_code"].lower()}))
    assert checked_in["status"] == "checked_in" and checked_in["checked_in_at"]
    checked_out = ok(api("res_a1", "POST", f"/sessions/{act['id']}/check-out",
                         json={"code": act["checkin_code"]}))
    assert checked_out["status"] == "checked_out" and checked_out["minutes"] >= 1

    url = f"/signups/{signup['id']}/confirm"
    confirmed = ok(api("sec_a1", "POST", url, json={"minutes": 120}))
    assert confirmed["status"] == "confirmed" and confirmed["minutes"] == 120
    assert confirmed["service_record_id"]
    refused(api("sec_a1", "POST", url, json={"minutes": 120}), 409)

    [wallet] = ok(api("res_a1", "GET", "/ledger/statement"))
    credits = [line for line in wallet["lines"]
               if line["source_id"] == confirmed["service_record_id"]]
    assert [(c["kind"], c["amount"], c["source_type"]) for c in credits] == \
        [("credit", 20, "service_record")]  # 2 h × 10 points an hour for elderly care
    assert wallet["balance"] == 20


def test_a_team_leader_signs_the_team_up_together_and_its_hours_count_per_member(api, world):
    post = publish_post(api)
    act = schedule(api, post["id"], headcount=2)
    for name in ("res_a1", "vol_2", "vol_3"):
        become_volunteer(api, name)
    users = world.users
    team = ok(api("sec_a1", "POST", "/teams", json={
        "name": "银发服务队", "community_id": world["a1"], "leader_id": users["res_a1"],
        "member_ids": [users["vol_2"], users["vol_3"]], "speciality": "助老"}), 201)
    assert sorted(team["member_ids"]) == sorted(users[n] for n in ("res_a1", "vol_2", "vol_3"))
    refused(api("vol_2", "POST", f"/sessions/{act['id']}/signups", json={"team_id": team["id"]}),
            403)

    signups = sign_up(api, "res_a1", act["id"], team_id=team["id"])
    assert {s["team_id"] for s in signups} == {team["id"]}
    assert sorted(s["status"] for s in signups) == ["signed_up", "signed_up", "waitlisted"]
    for s in signups:
        if s["status"] != "signed_up":
            continue
        for step in ("check-in", "check-out"):
            ok(api("sec_a1", "POST", f"/sessions/{act['id']}/{step}", json={"user_id": s["user_id"]}))
        ok(api("sec_a1", "POST", f"/signups/{s['id']}/confirm", json={"minutes": 90}))
    hours = ok(api("res_a1", "GET", f"/teams/{team['id']}/hours"))
    assert hours["minutes"] == 180
    assert sorted((m["sessions"], m["minutes"]) for m in hours["members"]) == [(1, 90), (1, 90)]


# ---- matching people to posts ------------------------------------------------------------------

def test_a_volunteer_run_proposes_people_with_reasons_and_the_volunteer_accepts_the_offered_place(
        api, world):
    post = publish_post(api, headcount=2)
    become_volunteer(api, "res_a1")
    become_volunteer(api, "vol_2")
    become_volunteer(api, "vol_3", preferred_categories=["legal"])  # not for elderly care
    run = ok(api("sec_a1", "POST", "/matching/volunteer-runs",
                 json={"community_id": world["a1"], "time_limit": 1}), 201)
    assert (run["status"], run["subject"]) == ("done", "volunteers")
    assert ok(api("sec_a1", "GET", f"/matching/volunteer-runs/{run['id']}"))["id"] == run["id"]
    proposals = ok(api("sec_a1", "GET", "/matching/volunteer-proposals",
                       query_string={"run_id": run["id"]}))["items"]
    assert {p["user_id"] for p in proposals} == {world.users["res_a1"], world.users["vol_2"]}
    for p in proposals:
        assert p["post_id"] == post["id"] and p["status"] == "proposed"
        assert p["why"] and all(w["term"] and w["text"] and w["points"] for w in p["why"])
    first, second = proposals

    approved = ok(api("sec_a1", "POST", f"/matching/volunteer-proposals/{first['id']}/approve"))
    assert approved["status"] == "approved" and approved["claim_id"]
    name = next(n for n, u in world.users.items() if u == first["user_id"])
    other = next(n for n, u in world.users.items() if u == second["user_id"])
    offered = ok(api(name, "GET", "/post-claims"))["items"]
    assert [(c["id"], c["status"], c["origin"]) for c in offered] == \
        [(approved["claim_id"], "offered", "proposal")]
    answer = f"/post-claims/{approved['claim_id']}/answer"
    refused(api(other, "POST", answer, json={"accept": True}), 404)  # not theirs to see
    accepted = ok(api(name, "POST", answer, json={"accept": True}))
    assert accepted["status"] == "confirmed"

    reject = f"/matching/volunteer-proposals/{second['id']}/reject"
    refused(api("sec_a1", "POST", reject, json={}), 422)
    rejected = ok(api("sec_a1", "POST", reject, json={"reason": "本人近期外出"}))
    assert (rejected["status"], rejected["reason"]) == ("rejected", "本人近期外出")
    assert ok(api("sec_a1", "GET", f"/posts/{post['id']}"))["taken"] == 1
    # The rejected pair is not proposed again unless a run asks for it.
    again = ok(api("sec_a1", "POST", "/matching/volunteer-runs",
                   json={"community_id": world["a1"], "time_limit": 1}), 201)
    assert ok(api("sec_a1", "GET", "/matching/volunteer-proposals",
                  query_string={"run_id": again["id"]}))["total"] == 0
    asked = ok(api("sec_a1", "POST", "/matching/volunteer-runs",
                   json={"community_id": world["a1"], "time_limit": 1,
                         "include_rejected": True}), 201)
    proposed = ok(api("sec_a1", "GET", "/matching/volunteer-proposals",
                      query_string={"run_id": asked["id"]}))["items"]
    assert [p["user_id"] for p in proposed] == [second["user_id"]]


def test_a_proposal_whose_post_changed_since_the_run_is_refused_as_stale(api, world):
    post = publish_post(api, headcount=1)
    become_volunteer(api, "res_a1")
    run = ok(api("sec_a1", "POST", "/matching/volunteer-runs",
                 json={"community_id": world["a1"], "time_limit": 1}), 201)
    [proposal] = ok(api("sec_a1", "GET", "/matching/volunteer-proposals",
                        query_string={"run_id": run["id"]}))["items"]
    ok(api("sec_a1", "PATCH", f"/posts/{post['id']}", json={"required_skills": ["陪护"]}))
    before = table_counts(world)
    refused(api("sec_a1", "POST", f"/matching/volunteer-proposals/{proposal['id']}/approve"),
            409, "stale_proposal")
    after = table_counts(world)
    assert after["post_claims"] == before["post_claims"]
    assert ok(api("sec_a1", "GET", f"/posts/{post['id']}"))["taken"] == 0


# ---- bad input -----------------------------------------------------------------------------------

def _session_body(world, **changes) -> dict:
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return {"title": "周六探访", "place": "社区活动室", "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(), "headcount": 3, **changes}


def _post_body(world, **changes) -> dict:
    return {"community_id": world["a1"], "kind": "patrol", "title": "夜间巡逻",
            "category_id": category_id(world.session), "headcount": 3, **changes}


BAD_INPUT = [
    pytest.param("res_a1", "PUT", "/volunteers/me", lambda w, ids: {"profession": "astronaut"},
                 "profession", id="an unknown profession"),
    pytest.param("res_a1", "PUT", "/volunteers/me",
                 lambda w, ids: {"preferred_categories": ["no_such_category"]},
                 "preferred_categories", id="an unknown preferred category"),
    pytest.param("sec_a1", "POST", "/posts", lambda w, ids: _post_body(w, headcount=0),
                 "headcount", id="a post with headcount 0"),
    pytest.param("sec_a1", "POST", "/posts", lambda w, ids: _post_body(w, headcount=2.5),
                 "headcount", id="a post with a fractional headcount"),
    pytest.param("sec_a1", "POST", "/posts", lambda w, ids: _post_body(w, kind="karaoke"),
                 "kind", id="a post of an unknown kind"),
    pytest.param("sec_a1", "PATCH", "/posts/{post}", lambda w, ids: {"headcount": 0},
                 "headcount", id="a post changed to headcount 0"),
    pytest.param("sec_a1", "POST", "/sessions", lambda w, ids: _session_body(
        w, post_id=ids["post"], ends_at=datetime.now(UTC).isoformat()),
        "ends_at", id="a session ending before it starts"),
    pytest.param("sec_a1", "POST", "/sessions",
                 lambda w, ids: _session_body(w, post_id=ids["post"], headcount=1.5),
                 "headcount", id="a session with a fractional headcount"),
    pytest.param("sec_a1", "POST", "/sessions",
                 lambda w, ids: _session_body(w, post_id=ids["post"], headcount=0),
                 "headcount", id="a session with headcount 0"),
    pytest.param("sec_a1", "POST", "/signups/{signup}/confirm", lambda w, ids: {"minutes": 0},
                 "minutes", id="confirming zero minutes"),
]


@pytest.mark.parametrize(("who", "method", "path", "body", "field"), BAD_INPUT)
def test_bad_input_is_a_422_in_the_one_error_shape_and_changes_nothing(api, world, who, method,
                                                                       path, body, field):
    post = publish_post(api)
    act = schedule(api, post["id"])
    become_volunteer(api, "vol_2")
    [signup] = sign_up(api, "vol_2", act["id"])
    ids = {"post": post["id"], "signup": signup["id"]}
    before = table_counts(world)
    response = api(who, method, path.format(**ids), json=body(world, ids))
    error = refused(response, 422, "validation_error")
    assert field in str(error.get("fields", error["message"])), error
    assert table_counts(world) == before
    assert ok(api("sec_a1", "GET", f"/posts/{post['id']}"))["headcount"] == post["headcount"]


# ---- known product bugs ----------------------------------------------------------------------------

def test_a_resident_cannot_schedule_a_session_and_confirm_her_own_hours(api, world):
    ok(api("sec_a1", "POST", f"/communities/{world['a1']}/points-rules",
           json={"document": RULES, "effective_from": shanghai_today()}), 201)
    post = publish_post(api)
    become_volunteer(api, "res_a1")
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    response = api("res_a1", "POST", "/sessions", json={
        "post_id": post["id"], "title": "我自己的活动", "place": "家里",
        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=8)).isoformat(),
        "headcount": 1})
    refused(response, 403)
