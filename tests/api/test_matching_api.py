"""The matching API under /api/v1/matching: runs, dry runs, proposals and the secretary's
decisions, the one error shape on bad input, and large runs that go to the background."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from matcher.candidates import TERMS
from tests.factories import make_demand, make_resource
from web.models import Assignment, AuditEvent, MatchProposal, MatchRun
from web.services import matching

pytestmark = pytest.mark.db

API = "/api/v1/matching"


# ---- helpers ----------------------------------------------------------------------------------

def error_of(response, status: int) -> dict:
    """The error body, checked for the one error shape and the expected status."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert err["status"] == status
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    return err


def written(world) -> tuple[int, ...]:
    """Row counts of what matching may write."""
    world.session.expire_all()
    return tuple(world.session.scalar(select(func.count()).select_from(model))
                 for model in (MatchRun, MatchProposal, Assignment, AuditEvent))


def start(client, world, who: str = "sec_a1", status: int = 201, **body) -> dict:
    body.setdefault("community_id", world["a1"])
    r = client.post(f"{API}/runs", headers=world.headers(who), json=body)
    assert r.status_code == status, r.json
    return r.json


def proposals(client, world, run_id: int, who: str = "sec_a1") -> list[dict]:
    r = client.get(f"{API}/proposals", headers=world.headers(who),
                   query_string={"run_id": run_id, "per_page": 100})
    assert r.status_code == 200, r.json
    return r.json["items"]


def only(items: list[dict], demand_id: int) -> dict:
    found = [p for p in items if p["demand_id"] == demand_id]
    assert len(found) == 1, items
    return found[0]


def unit_admin_of(world, unit_id: int) -> str:
    return next(f"unit_{k}" for k in ("x", "y", "z") if world[k] == unit_id)


# ---- starting runs ------------------------------------------------------------------------------

def test_a_secretary_runs_her_community_and_reads_proposals_with_their_score_broken_down(
        client, world):
    second = make_demand(world.session, world, "a1", "sec_a1", quantity=2)
    draft = make_demand(world.session, world, "a1", "sec_a1", publish=False)

    run = start(client, world)

    assert run["status"] == "done" and run["progress"] == 100 and run["error"] is None
    assert run["community_id"] == world["a1"] and run["subdistrict_id"] is None
    assert run["created_by"] == world.users["sec_a1"]
    assert run["params"]["mode"] == "auto" and run["params"]["include_rejected"] is False
    assert run["summary"]["served"] == 2 and run["summary"]["demands"] == 2
    items = proposals(client, world, run["id"])
    assert {p["demand_id"] for p in items} == {world["d_a1"], second}
    assert draft not in {p["demand_id"] for p in items}
    for p in items:
        assert p["status"] == "proposed" and p["stale"] is None and p["assignment_id"] is None
        assert set(p["terms"]) == set(TERMS)
        assert sum(p["terms"].values()) == p["score"]
        assert p["resource_id"] in (world["r_x"], world["r_y"])
        assert p["unit_name"] in ("Unit x", "Unit y") and p["demand_title"] == "独居老人探访"
        why = {w["term"]: w["points"] for w in p["why"]}
        assert why == {t: v for t, v in p["terms"].items() if v}
        assert p["why"][0]["term"] == "serve" and p["why"][0]["text"]
    one = client.get(f"{API}/proposals/{items[0]['id']}", headers=world.headers("sec_a1"))
    assert one.status_code == 200 and one.json == items[0]
    shown = client.get(f"{API}/runs/{run['id']}", headers=world.headers("sec_a1"))
    assert shown.status_code == 200 and shown.json == run
    listed = client.get(f"{API}/runs", headers=world.headers("sec_a1")).json
    assert [r["id"] for r in listed["items"]] == [run["id"]]


def test_a_subdistrict_admin_runs_the_whole_subdistrict(client, world):
    in_a2 = make_demand(world.session, world, "a2", "sec_a2")
    run = start(client, world, "admin_a", community_id=None, subdistrict_id=world["A"])
    assert run["status"] == "done"
    assert run["subdistrict_id"] == world["A"] and run["community_id"] is None
    items = proposals(client, world, run["id"], who="admin_a")
    assert {p["demand_id"] for p in items} == {world["d_a1"], in_a2}
    assert world["d_b1"] not in {p["demand_id"] for p in items}
    # Each secretary sees her own community's part of it.
    assert [p["demand_id"] for p in proposals(client, world, run["id"], who="sec_a2")] == [in_a2]


@pytest.mark.parametrize(("who", "scope"), [
    pytest.param("sec_a1", {"community_id": "a2"}, id="a secretary, another community"),
    pytest.param("sec_a1", {"community_id": "b1"}, id="a secretary, another subdistrict"),
    pytest.param("sec_a1", {"subdistrict_id": "A"}, id="a secretary, a subdistrict"),
    pytest.param("admin_b", {"community_id": "a1"}, id="another subdistrict's admin"),
    pytest.param("clerk_a1", {"community_id": "a1"}, id="the clerk"),
    pytest.param("grid_a1", {"community_id": "a1"}, id="the grid worker"),
    pytest.param("unit_x", {"community_id": "a1"}, id="a unit admin"),
    pytest.param("res_a1", {"community_id": "a1"}, id="a resident"),
])
@pytest.mark.parametrize("path", ["/runs", "/runs/preview"])
def test_others_may_not_start_a_run_and_nothing_is_written(client, world, who, scope, path):
    before = written(world)
    body = {key: world[value] for key, value in scope.items()}
    r = client.post(f"{API}{path}", headers=world.headers(who), json=body)
    assert error_of(r, 403)["code"] == "forbidden"
    assert written(world) == before


@pytest.mark.parametrize("path", ["/runs", "/runs/preview"])
def test_an_anonymous_caller_may_not_start_a_run(client, world, path):
    before = written(world)
    r = client.post(f"{API}{path}", json={"community_id": world["a1"]})
    assert error_of(r, 401)["code"] == "unauthenticated"
    assert written(world) == before


# ---- dry run ------------------------------------------------------------------------------------

def test_a_dry_run_answers_what_a_run_would_propose_and_writes_nothing(client, world):
    second = make_demand(world.session, world, "a1", "sec_a1", quantity=2)
    before = written(world)

    r = client.post(f"{API}/runs/preview", headers=world.headers("sec_a1"),
                    json={"community_id": world["a1"]})

    assert r.status_code == 200, r.json
    assert written(world) == before
    assert r.json["summary"]["served"] == 2
    shown = r.json["proposals"]
    assert {p["demand_id"] for p in shown} == {world["d_a1"], second}
    for p in shown:
        assert set(p) == {"demand_id", "resource_id", "unit_id", "quantity", "role", "score",
                          "terms"}
        assert sum(p["terms"].values()) == p["score"]
    real = proposals(client, world, start(client, world)["id"])
    assert {(p["demand_id"], p["resource_id"], p["score"]) for p in shown} == {
        (p["demand_id"], p["resource_id"], p["score"]) for p in real}


# ---- bad input ----------------------------------------------------------------------------------

BAD = [
    pytest.param({"mode": "best"}, "mode", id="unknown mode"),
    pytest.param({"time_limit": 0}, "time_limit", id="time limit zero"),
    pytest.param({"time_limit": 121}, "time_limit", id="time limit too long"),
    pytest.param({"time_limit": "soon"}, "time_limit", id="time limit not a number"),
    pytest.param({"seed": -1}, "seed", id="negative seed"),
    pytest.param({"weights": {"bogus": 5}}, "weights", id="unknown weight"),
    pytest.param({"weights": {"serve": "much"}}, "weights.serve.value", id="weight not a number"),
    pytest.param({"pinned": [{"demand_id": 1}]}, "pinned.0.resource_id", id="half a pair"),
    pytest.param({"include_rejected": "maybe"}, "include_rejected", id="not a boolean"),
    pytest.param({"colour": "red"}, "colour", id="unknown field"),
    pytest.param({"community_id": None}, "community_id", id="no scope"),
]


def assert_refused(response, field: str) -> None:
    err = error_of(response, 422)
    assert err["code"] == "validation_error"
    assert field in err["fields"], err
    assert all(isinstance(m, list) and m for m in err["fields"].values()), err


@pytest.mark.parametrize(("body", "field"), BAD)
@pytest.mark.parametrize("path", ["/runs", "/runs/preview"])
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_written(client, world, path, body,
                                                                   field):
    before = written(world)
    r = client.post(f"{API}{path}", headers=world.headers("sec_a1"),
                    json={"community_id": world["a1"], **body})
    assert_refused(r, field)
    assert written(world) == before


def _outside_pair(world) -> dict:
    return {"demand_id": world["d_b1"], "resource_id": world["r_x"]}


@pytest.mark.parametrize("field", ["pinned", "forbidden"])
def test_a_dry_run_with_a_pair_outside_its_scope_is_a_422(client, world, field):
    before = written(world)
    r = client.post(f"{API}/runs/preview", headers=world.headers("sec_a1"),
                    json={"community_id": world["a1"], field: [_outside_pair(world)]})
    assert_refused(r, field)
    assert written(world) == before


@pytest.mark.parametrize("field", ["pinned", "forbidden"])
def test_a_run_with_a_pair_outside_its_scope_is_a_422_and_nothing_is_written(client, world, field):
    before = written(world)
    r = client.post(f"{API}/runs", headers=world.headers("sec_a1"),
                    json={"community_id": world["a1"], field: [_outside_pair(world)]})
    assert_refused(r, field)
    assert written(world) == before


def test_a_run_of_a_community_that_does_not_exist_is_a_404(client, world):
    before = written(world)
    r = client.post(f"{API}/runs", headers=world.headers("sec_a1"),
                    json={"community_id": 987_654})
    assert error_of(r, 404)["code"] == "not_found"
    assert written(world) == before


# ---- approving ----------------------------------------------------------------------------------

def test_approving_a_proposal_makes_an_offered_dispatch_that_the_unit_accepts(client, world):
    sec = world.headers("sec_a1")
    p = only(proposals(client, world, start(client, world)["id"]), world["d_a1"])

    r = client.post(f"{API}/proposals/{p['id']}/approve", headers=sec)

    assert r.status_code == 200, r.json
    assert r.json["status"] == "approved" and r.json["assignment_id"]
    assert r.json["decided_at"] is not None
    unit = world.headers(unit_admin_of(world, p["unit_id"]))
    dispatch = client.get(f"/api/v1/assignments/{r.json['assignment_id']}", headers=unit)
    assert dispatch.status_code == 200, dispatch.json
    assert {k: dispatch.json[k] for k in ("origin", "status", "demand_id", "unit_id",
                                          "resource_id", "quantity")} == {
        "origin": "dispatch", "status": "offered", "demand_id": p["demand_id"],
        "unit_id": p["unit_id"], "resource_id": p["resource_id"], "quantity": p["quantity"]}
    history = client.get(f"/api/v1/demands/{p['demand_id']}/history", headers=sec).json
    steps = [(e["entity_type"], e["entity_id"], e["to_status"]) for e in history]
    assert ("match_proposals", p["id"], "approved") in steps
    assert ("assignments", r.json["assignment_id"], "offered") in steps

    accepted = client.post(f"/api/v1/assignments/{r.json['assignment_id']}/accept", headers=unit,
                           json={})
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["status"] == "accepted"
    assert client.get(f"/api/v1/demands/{p['demand_id']}", headers=sec).json["status"] == \
        "covered"


def test_approving_a_proposal_twice_is_a_409(client, world):
    sec = world.headers("sec_a1")
    p = only(proposals(client, world, start(client, world)["id"]), world["d_a1"])
    assert client.post(f"{API}/proposals/{p['id']}/approve", headers=sec).status_code == 200
    before = written(world)
    err = error_of(client.post(f"{API}/proposals/{p['id']}/approve", headers=sec), 409)
    assert err["code"] == "illegal_transition"
    assert written(world) == before


def test_approve_all_approves_every_open_proposal_and_reports_each_outcome(client, world):
    sec = world.headers("sec_a1")
    second = make_demand(world.session, world, "a1", "sec_a1", quantity=2)
    third = make_demand(world.session, world, "a1", "sec_a1", quantity=1)
    run = start(client, world)
    items = proposals(client, world, run["id"])
    rejected = only(items, third)
    r = client.post(f"{API}/proposals/{rejected['id']}/reject", headers=sec,
                    json={"reason": "另有安排"})
    assert r.status_code == 200, r.json

    r = client.post(f"{API}/runs/{run['id']}/approve-all", headers=sec)

    assert r.status_code == 200, r.json
    outcomes = {o["id"]: o for o in r.json["outcomes"]}
    open_ids = {only(items, d)["id"] for d in (world["d_a1"], second)}
    assert set(outcomes) == open_ids
    assert all(o["status"] == "approved" and o["assignment_id"] for o in outcomes.values())
    after = {p["id"]: p for p in proposals(client, world, run["id"])}
    assert {after[i]["status"] for i in open_ids} == {"approved"}
    assert after[rejected["id"]]["status"] == "rejected"
    assert {after[i]["assignment_id"] for i in open_ids} == {
        o["assignment_id"] for o in outcomes.values()}

    again = client.post(f"{API}/runs/{run['id']}/approve-all", headers=sec)
    assert again.status_code == 200 and again.json == {"outcomes": []}


def test_approve_all_reports_a_stale_proposal_and_approves_the_rest(client, world):
    sec = world.headers("sec_a1")
    second = make_demand(world.session, world, "a1", "sec_a1", quantity=2)
    run = start(client, world)
    items = proposals(client, world, run["id"])
    r = client.patch(f"/api/v1/demands/{second}", headers=sec, json={"title": "改过的标题"})
    assert r.status_code == 200, r.json

    outcomes = {o["id"]: o for o in client.post(f"{API}/runs/{run['id']}/approve-all",
                                                headers=sec).json["outcomes"]}

    stale, fresh = only(items, second), only(items, world["d_a1"])
    assert outcomes[fresh["id"]]["status"] == "approved"
    assert outcomes[stale["id"]]["status"] == "refused"
    assert outcomes[stale["id"]]["code"] == "stale_proposal"
    assert outcomes[stale["id"]].get("assignment_id") is None
    shown = client.get(f"{API}/proposals/{stale['id']}", headers=sec).json
    assert shown["status"] == "stale" and shown["assignment_id"] is None


@pytest.mark.parametrize(("who", "status"), [("admin_a", 403), ("sec_b1", 404), ("unit_x", 404),
                                             ("clerk_a1", 404)])
def test_approve_all_is_for_the_secretary_alone(client, world, who, status):
    run = start(client, world)
    before = written(world)
    r = client.post(f"{API}/runs/{run['id']}/approve-all", headers=world.headers(who))
    error_of(r, status)
    assert written(world) == before


# ---- rejecting ----------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, None],
                         ids=["no reason", "empty", "blank", "no body"])
def test_rejecting_without_a_reason_is_a_422(client, world, body):
    sec = world.headers("sec_a1")
    p = only(proposals(client, world, start(client, world)["id"]), world["d_a1"])
    before = written(world)
    r = client.post(f"{API}/proposals/{p['id']}/reject", headers=sec, json=body)
    err = error_of(r, 422)
    assert err["code"] == "validation_error"
    assert written(world) == before
    assert client.get(f"{API}/proposals/{p['id']}", headers=sec).json["status"] == "proposed"


def test_a_rejected_pair_is_not_proposed_again_unless_include_rejected_is_true(client, world):
    sec = world.headers("sec_a1")
    legal = make_resource(world.session, world, "y", "unit_y", ["a1"], code="legal", skills=())
    demand = make_demand(world.session, world, "a1", "sec_a1", code="legal", quantity=1)
    p = only(proposals(client, world, start(client, world)["id"]), demand)
    assert p["resource_id"] == legal

    r = client.post(f"{API}/proposals/{p['id']}/reject", headers=sec,
                    json={"reason": "该单位没有律师了"})
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["reason"]) == ("rejected", "该单位没有律师了")

    again = proposals(client, world, start(client, world)["id"])
    assert demand not in {q["demand_id"] for q in again}
    assert world["d_a1"] in {q["demand_id"] for q in again}

    included = proposals(client, world, start(client, world, include_rejected=True)["id"])
    assert only(included, demand)["resource_id"] == legal


# ---- stale proposals ----------------------------------------------------------------------------

def test_editing_the_demand_after_the_run_makes_approving_a_409_stale_proposal(client, world):
    sec = world.headers("sec_a1")
    p = only(proposals(client, world, start(client, world)["id"]), world["d_a1"])
    r = client.patch(f"/api/v1/demands/{world['d_a1']}", headers=sec,
                     json={"required_skills": ["电工"]})
    assert r.status_code == 200, r.json

    shown = client.get(f"{API}/proposals/{p['id']}", headers=sec).json
    assert shown["status"] == "proposed"
    assert shown["stale"] == "the demand was edited after the run"
    listed = only(proposals(client, world, p["run_id"]), world["d_a1"])
    assert listed["stale"] == "the demand was edited after the run"
    before = written(world)

    r = client.post(f"{API}/proposals/{p['id']}/approve", headers=sec)

    err = error_of(r, 409)
    assert err["code"] == "stale_proposal"
    assert "edited" in err["message"]
    runs, made, assignments, audit = written(world)
    assert (runs, made, assignments) == before[:3]  # no dispatch
    assert audit == before[3] + 1  # the proposal marked stale
    shown = client.get(f"{API}/proposals/{p['id']}", headers=sec).json
    assert shown["status"] == "stale"
    assert shown["stale"] is None  # only open proposals carry a stale reason
    assert "edited" in shown["reason"]
    assert shown["assignment_id"] is None
    demand = client.get(f"/api/v1/demands/{world['d_a1']}", headers=sec).json
    assert demand["quantity_open"] == 3
    assert error_of(client.post(f"{API}/proposals/{p['id']}/approve", headers=sec),
                    409)["code"] == "illegal_transition"


def test_editing_the_resource_after_the_run_makes_approving_a_409_stale_proposal(client, world):
    sec = world.headers("sec_a1")
    p = only(proposals(client, world, start(client, world)["id"]), world["d_a1"])
    unit = world.headers(unit_admin_of(world, p["unit_id"]))
    r = client.patch(f"/api/v1/resources/{p['resource_id']}", headers=unit,
                     json={"title": "新的标题"})
    assert r.status_code == 200, r.json
    assert client.get(f"{API}/proposals/{p['id']}", headers=sec).json["stale"] == \
        "the resource was edited after the run"
    assert error_of(client.post(f"{API}/proposals/{p['id']}/approve", headers=sec),
                    409)["code"] == "stale_proposal"


# ---- runs again ---------------------------------------------------------------------------------

def test_a_new_run_supersedes_the_older_runs_open_proposals(client, world):
    sec = world.headers("sec_a1")
    first = start(client, world)
    old = only(proposals(client, world, first["id"]), world["d_a1"])
    second = start(client, world)

    assert only(proposals(client, world, first["id"]), world["d_a1"])["status"] == "superseded"
    assert only(proposals(client, world, second["id"]), world["d_a1"])["status"] == "proposed"
    err = error_of(client.post(f"{API}/proposals/{old['id']}/approve", headers=sec), 409)
    assert err["code"] == "illegal_transition"
    listed = client.get(f"{API}/proposals", headers=sec,
                        query_string={"status": "proposed"}).json["items"]
    assert [p["run_id"] for p in listed] == [second["id"]]
    runs = client.get(f"{API}/runs", headers=sec).json["items"]
    assert [r["id"] for r in runs] == [second["id"], first["id"]]  # newest first


# ---- existing claims ----------------------------------------------------------------------------

def test_a_unit_holding_a_share_of_a_demand_is_not_proposed_for_it_again(client, world):
    unit_y = world.headers("unit_y")
    r = client.post(f"/api/v1/demands/{world['d_a1']}/claims", headers=unit_y,
                    json={"unit_id": world["y"], "resource_id": world["r_y"], "quantity": 1})
    assert r.status_code == 201, r.json

    items = [p for p in proposals(client, world, start(client, world)["id"])
             if p["demand_id"] == world["d_a1"]]

    assert [(p["unit_id"], p["quantity"]) for p in items] == [(world["x"], 2)]


# ---- large runs go to the background ------------------------------------------------------------

class Later:
    """A background runner that keeps each job until the test runs it."""

    def __init__(self):
        self.jobs = []

    def __call__(self, job):
        self.jobs.append(job)

    def run_all(self):
        jobs, self.jobs = self.jobs, []
        for job in jobs:
            job()


@pytest.fixture
def later(app, monkeypatch):
    """Every run goes to the background, into a runner the test drives."""
    monkeypatch.setattr(matching, "INLINE_DEMANDS", 0)
    runner = Later()
    app.extensions["linli"].background = runner
    return runner


def test_a_large_run_is_queued_and_done_in_the_background(client, world, later, session_factory):
    sec = world.headers("sec_a1")
    # The job opens its own session from the app's factory: the test's, bound to its connection.
    assert app_factory(client) is session_factory

    queued = start(client, world, status=202)

    assert (queued["status"], queued["progress"]) == ("queued", 0)
    assert queued["started_at"] is None and queued["summary"] is None
    assert len(later.jobs) == 1
    shown = client.get(f"{API}/runs/{queued['id']}", headers=sec).json
    assert (shown["status"], shown["progress"]) == ("queued", 0)
    assert proposals(client, world, queued["id"]) == []

    later.run_all()

    shown = client.get(f"{API}/runs/{queued['id']}", headers=sec).json
    assert (shown["status"], shown["progress"], shown["error"]) == ("done", 100, None)
    assert shown["started_at"] is not None and shown["finished_at"] is not None
    assert shown["summary"]["served"] == 1
    assert [p["demand_id"] for p in proposals(client, world, queued["id"])] == [world["d_a1"]]


def app_factory(client):
    return client.application.extensions["linli"].session_factory


def test_a_background_run_whose_solve_fails_is_marked_failed(client, world, later, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(matching, "solve", broken)
    queued = start(client, world, status=202)
    later.run_all()
    shown = client.get(f"{API}/runs/{queued['id']}", headers=world.headers("sec_a1")).json
    assert (shown["status"], shown["progress"]) == ("failed", 100)
    assert shown["error"] == "internal error: RuntimeError"
    assert proposals(client, world, queued["id"]) == []


def test_a_small_run_finishes_within_the_request(client, world, monkeypatch):
    jobs = []
    client.application.extensions["linli"].background = jobs.append
    run = start(client, world)
    assert run["status"] == "done" and jobs == []


# ---- a failing solve ----------------------------------------------------------------------------

def test_a_failing_solve_answers_a_failed_run_with_its_error_and_no_proposals(client, world,
                                                                             monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the solver crashed")

    monkeypatch.setattr(matching, "solve", broken)
    run = start(client, world)
    assert (run["status"], run["progress"]) == ("failed", 100)
    assert run["error"] == "internal error: RuntimeError"
    assert run["summary"] is None
    assert proposals(client, world, run["id"]) == []
    failed = client.get(f"{API}/runs", headers=world.headers("sec_a1"),
                        query_string={"status": "failed"}).json
    assert [r["id"] for r in failed["items"]] == [run["id"]]


def test_a_run_over_a_community_with_nothing_open_is_done_with_no_proposals(client, world):
    run = start(client, world, "sec_a2", community_id=world["a2"])
    assert (run["status"], run["error"]) == ("done", None)
    assert run["summary"]["pairs"] == 0


def test_a_dry_run_over_a_community_with_nothing_open_proposes_nothing(client, world):
    r = client.post(f"{API}/runs/preview", headers=world.headers("sec_a2"),
                    json={"community_id": world["a2"]})
    assert r.status_code == 200, r.json
    assert r.json["proposals"] == []


# ---- who sees what ------------------------------------------------------------------------------

def test_runs_and_proposals_outside_ones_scope_are_not_found(client, world):
    run = start(client, world)
    p = proposals(client, world, run["id"])[0]
    for who in ("sec_b1", "admin_b", "sec_a2", "clerk_a1", "grid_a1", "unit_x", "res_a1"):
        headers = world.headers(who)
        assert error_of(client.get(f"{API}/runs/{run['id']}", headers=headers), 404)
        assert error_of(client.get(f"{API}/proposals/{p['id']}", headers=headers), 404)
        assert client.get(f"{API}/runs", headers=headers).json["total"] == 0
        assert client.get(f"{API}/proposals", headers=headers).json["total"] == 0
        for action, body in (("approve", None), ("reject", {"reason": "不行"})):
            error_of(client.post(f"{API}/proposals/{p['id']}/{action}", headers=headers,
                                 json=body), 404)


def test_the_subdistrict_admin_reads_proposals_but_does_not_decide_on_them(client, world):
    run = start(client, world)
    p = proposals(client, world, run["id"], who="admin_a")[0]
    admin = world.headers("admin_a")
    assert client.get(f"{API}/proposals/{p['id']}", headers=admin).status_code == 200
    assert error_of(client.post(f"{API}/proposals/{p['id']}/approve", headers=admin), 403)
    assert error_of(client.post(f"{API}/proposals/{p['id']}/reject", headers=admin,
                                json={"reason": "不行"}), 403)


def test_the_matching_endpoints_are_in_the_api_description(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/api/v1/matching/runs", "/api/v1/matching/runs/preview",
                 "/api/v1/matching/runs/{run_id}", "/api/v1/matching/runs/{run_id}/approve-all",
                 "/api/v1/matching/proposals", "/api/v1/matching/proposals/{proposal_id}",
                 "/api/v1/matching/proposals/{proposal_id}/approve",
                 "/api/v1/matching/proposals/{proposal_id}/reject"):
        assert path in paths, sorted(paths)

