"""Match runs and proposals on the service layer: who may run what, what a run proposes, and what
approving, rejecting, editing and running again do to the proposals."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from matcher.candidates import TERMS
from matcher.problem import ProblemError
from tests.conftest import NOW
from tests.factories import category_id, claim, make_demand, make_resource
from web.domain.actor import SYSTEM
from web.errors import (
    ConflictError,
    IllegalTransitionError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from web.models import (
    Assignment,
    AuditEvent,
    DemandItem,
    MatchProposal,
    MatchRun,
    ResourceItem,
)
from web.services import assignments, demands, matching, resources, units
from web.services.matching import StaleProposalError

pytestmark = pytest.mark.db


# ---- helpers ----------------------------------------------------------------------------------

def run(world, by: str = "sec_a1", community: str | None = "a1", subdistrict: str | None = None,
        **params) -> MatchRun:
    """Create and execute a match run, as the API does for a small one."""
    scope = ({"subdistrict_id": world[subdistrict]} if subdistrict else
             {"community_id": world[community]})
    created = matching.create_match_run(world.session, actor=world.actor(by), params=params,
                                        **scope)
    return matching.execute_match_run(world.session, run_id=created.id)


def preview(world, by: str = "sec_a1", community: str | None = "a1",
            subdistrict: str | None = None, **params) -> dict:
    scope = ({"subdistrict_id": world[subdistrict]} if subdistrict else
             {"community_id": world[community]})
    return matching.preview_match(world.session, actor=world.actor(by), params=params, **scope)


def proposals_of(world, run_id: int) -> list[MatchProposal]:
    world.session.expire_all()
    return list(world.session.scalars(select(MatchProposal).where(
        MatchProposal.run_id == run_id).order_by(MatchProposal.demand_id, MatchProposal.id)))


def proposal_for(world, run_id: int, demand_id: int) -> MatchProposal:
    found = [p for p in proposals_of(world, run_id) if p.demand_id == demand_id]
    assert len(found) == 1, found
    return found[0]


def pairs(items) -> set[tuple[int, int]]:
    return {(p.demand_id, p.resource_id) for p in items}


def count(world, model) -> int:
    return world.session.scalar(select(func.count()).select_from(model))


def written(world) -> tuple[int, int, int, int]:
    """Row counts a match run may change."""
    return (count(world, MatchRun), count(world, MatchProposal), count(world, Assignment),
            count(world, AuditEvent))


def events(world, entity_type: str, entity_id: int) -> list[AuditEvent]:
    return list(world.session.scalars(select(AuditEvent).where(
        AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
        .order_by(AuditEvent.id)))


def approve(world, proposal_id: int, by: str = "sec_a1") -> MatchProposal:
    return matching.approve_proposal(world.session, actor=world.actor(by),
                                     proposal_id=proposal_id, now=NOW)


def reject(world, proposal_id: int, reason: str | None = "该单位本周人手不足",
           by: str = "sec_a1") -> MatchProposal:
    return matching.reject_proposal(world.session, actor=world.actor(by),
                                    proposal_id=proposal_id, reason=reason, now=NOW)


def row(world, model, ident):
    obj = world.session.get(model, ident)
    world.session.refresh(obj)
    return obj


def legal_pair(world) -> tuple[int, int]:
    """A legal-aid demand in a1 that only one resource (unit y's) can serve."""
    resource = make_resource(world.session, world, "y", "unit_y", ["a1"], code="legal",
                             skills=())
    demand = make_demand(world.session, world, "a1", "sec_a1", code="legal", quantity=1)
    return demand, resource


# ---- who may run what, and what a run proposes --------------------------------------------------

def test_a_secretarys_run_over_her_community_proposes_open_published_demands_with_scores_that_add_up(
        world):
    second = make_demand(world.session, world, "a1", "sec_a1", quantity=2)
    draft = make_demand(world.session, world, "a1", "sec_a1", publish=False)
    in_a2 = make_demand(world.session, world, "a2", "sec_a2")
    unpublished = make_resource(world.session, world, "x", "unit_x", ["a1"], publish=False)

    done = run(world)

    assert (done.status, done.progress, done.error) == ("done", 100, None)
    assert done.community_id == world["a1"] and done.subdistrict_id is None
    assert done.created_by == world.users["sec_a1"]
    assert done.started_at is not None and done.finished_at is not None
    assert done.summary["demands"] == 2 and done.summary["served"] == 2
    assert done.summary["status"] in ("optimal", "feasible")
    made = proposals_of(world, done.id)
    assert {p.demand_id for p in made} == {world["d_a1"], second}
    assert not {p.demand_id for p in made} & {draft, in_a2, world["d_b1"]}
    assert {p.resource_id for p in made} <= {world["r_x"], world["r_y"]}
    assert unpublished not in {p.resource_id for p in made}
    for p in made:
        demand, resource = row(world, DemandItem, p.demand_id), row(world, ResourceItem,
                                                                    p.resource_id)
        assert p.status == "proposed" and p.assignment_id is None
        assert p.community_id == world["a1"]
        assert p.unit_id == resource.unit_id
        assert p.role == "lead"
        assert p.quantity == demand.quantity_open  # one unit covers it: share 10 per occasion
        assert set(p.terms) == set(TERMS)
        assert sum(p.terms.values()) == p.score
        assert p.terms["serve"] == 1000 and p.terms["skill"] == 200
        assert p.demand_updated_at == demand.updated_at
        assert p.resource_updated_at == resource.updated_at
    steps = [e.to_status for e in events(world, "match_runs", done.id)]
    assert steps == ["queued", "running", "done"]


def test_a_subdistrict_admin_can_run_every_community_of_her_subdistrict(world):
    in_a2 = make_demand(world.session, world, "a2", "sec_a2")

    done = run(world, by="admin_a", community=None, subdistrict="A")

    assert done.status == "done"
    assert done.subdistrict_id == world["A"] and done.community_id is None
    made = proposals_of(world, done.id)
    assert {p.demand_id for p in made} == {world["d_a1"], in_a2}
    assert {p.community_id for p in made} == {world["a1"], world["a2"]}
    # Only unit x serves a2; nothing of subdistrict B is read.
    assert proposal_for(world, done.id, in_a2).resource_id == world["r_x"]
    assert world["d_b1"] not in {p.demand_id for p in made}


def test_a_subdistrict_admin_may_run_one_community_of_her_subdistrict(world):
    done = run(world, by="admin_a", community="a1")
    assert done.status == "done"
    assert {p.demand_id for p in proposals_of(world, done.id)} == {world["d_a1"]}


@pytest.mark.parametrize(("who", "scope"), [
    pytest.param("sec_a1", {"community": "a2"}, id="a secretary, another community"),
    pytest.param("sec_a1", {"community": "b1"}, id="a secretary, another subdistrict's community"),
    pytest.param("sec_a1", {"community": None, "subdistrict": "A"},
                 id="a secretary, her own subdistrict"),
    pytest.param("admin_b", {"community": "a1"}, id="another subdistrict's admin, a community"),
    pytest.param("admin_b", {"community": None, "subdistrict": "A"},
                 id="another subdistrict's admin, the subdistrict"),
    pytest.param("clerk_a1", {"community": "a1"}, id="the community's clerk"),
    pytest.param("grid_a1", {"community": "a1"}, id="the grid worker"),
    pytest.param("unit_x", {"community": "a1"}, id="a unit admin"),
    pytest.param("res_a1", {"community": "a1"}, id="a resident"),
])
def test_only_the_secretary_or_the_subdistricts_admin_may_start_a_run(world, who, scope):
    before = written(world)
    with pytest.raises(PermissionDeniedError):
        run(world, by=who, **scope)
    with pytest.raises(PermissionDeniedError):
        preview(world, by=who, **scope)
    assert written(world) == before


@pytest.mark.parametrize("scope", [{}, {"community_id": 1, "subdistrict_id": 1}],
                         ids=["neither", "both"])
def test_a_run_names_either_a_community_or_a_subdistrict(world, scope):
    before = written(world)
    with pytest.raises(ValidationError) as info:
        matching.create_match_run(world.session, actor=SYSTEM, **scope)
    assert "community_id" in info.value.fields
    assert written(world) == before


def test_a_run_of_a_community_that_does_not_exist_is_not_found(world):
    with pytest.raises(NotFoundError):
        matching.create_match_run(world.session, actor=SYSTEM, community_id=987_654)
    with pytest.raises(NotFoundError):
        matching.create_match_run(world.session, actor=SYSTEM, subdistrict_id=987_654)


# ---- a dry run ----------------------------------------------------------------------------------

def test_a_dry_run_shows_what_a_run_would_propose_and_writes_nothing(world):
    make_demand(world.session, world, "a1", "sec_a1", quantity=2)
    before = written(world)

    out = preview(world)

    assert written(world) == before
    assert out["summary"]["served"] == 2
    assert len(out["proposals"]) == 2
    for p in out["proposals"]:
        assert sum(p["terms"].values()) == p["score"]
    real = proposals_of(world, run(world).id)
    assert {(p["demand"], p["resource"], p["quantity"], p["score"]) for p in out["proposals"]} \
        == {(p.demand_id, p.resource_id, p.quantity, p.score) for p in real}


def test_a_dry_run_supersedes_nothing(world):
    first = run(world)
    preview(world)
    assert [p.status for p in proposals_of(world, first.id)] == ["proposed"]


# ---- approving ----------------------------------------------------------------------------------

def test_approving_a_proposal_makes_an_offered_dispatch_for_its_unit_resource_and_quantity(world):
    done = run(world)
    p = proposal_for(world, done.id, world["d_a1"])
    remaining = row(world, ResourceItem, p.resource_id).quantity_remaining

    approved = approve(world, p.id)

    assert approved.status == "approved"
    assert approved.assignment_id is not None
    assert approved.decided_by == world.users["sec_a1"] and approved.decided_at == NOW
    dispatch = row(world, Assignment, approved.assignment_id)
    assert (dispatch.origin, dispatch.status) == ("dispatch", "offered")
    assert (dispatch.demand_id, dispatch.unit_id, dispatch.resource_id, dispatch.quantity) == (
        p.demand_id, p.unit_id, p.resource_id, p.quantity)
    assert dispatch.response_deadline is not None and dispatch.response_deadline > NOW
    assert f"match run {done.id}" in (dispatch.note or "")
    assert row(world, DemandItem, p.demand_id).quantity_open == 0
    assert row(world, ResourceItem, p.resource_id).quantity_remaining == remaining - p.quantity
    decided = events(world, "match_proposals", p.id)
    assert [(e.from_status, e.to_status, e.actor_id) for e in decided] == [
        ("proposed", "approved", world.users["sec_a1"])]
    assert json.loads(decided[0].data) == {"assignment_id": dispatch.id}
    assert decided[0].demand_id == p.demand_id
    assert [e.action for e in events(world, "assignments", dispatch.id)] == ["dispatched"]


def test_the_unit_accepts_a_dispatch_made_from_a_proposal_through_the_usual_flow(world):
    p = proposal_for(world, run(world).id, world["d_a1"])
    dispatch_id = approve(world, p.id).assignment_id
    unit = "unit_x" if p.unit_id == world["x"] else "unit_y"

    accepted = assignments.accept_dispatch(world.session, actor=world.actor(unit),
                                           assignment_id=dispatch_id, now=NOW)

    assert accepted.status == "accepted"
    demand = row(world, DemandItem, world["d_a1"])
    assert demand.quantity_confirmed == p.quantity
    assert demand.status == "covered"


def test_a_proposal_is_approved_once(world):
    p = proposal_for(world, run(world).id, world["d_a1"])
    approve(world, p.id)
    before = written(world)
    with pytest.raises(IllegalTransitionError):
        approve(world, p.id)
    assert written(world) == before
    assert row(world, MatchProposal, p.id).status == "approved"


@pytest.mark.parametrize(("who", "error"), [
    pytest.param("admin_a", PermissionDeniedError, id="the subdistrict admin sees it, may not"),
    pytest.param("sec_a2", NotFoundError, id="another community's secretary does not see it"),
    pytest.param("clerk_a1", NotFoundError, id="the clerk does not see it"),
    pytest.param("unit_x", NotFoundError, id="a unit admin does not see it"),
])
def test_only_the_communitys_secretary_decides_on_a_proposal(world, who, error):
    p = proposal_for(world, run(world).id, world["d_a1"])
    before = written(world)
    with pytest.raises(error):
        approve(world, p.id, by=who)
    with pytest.raises(error):
        reject(world, p.id, by=who)
    assert written(world) == before
    assert row(world, MatchProposal, p.id).status == "proposed"


def test_approving_the_whole_run_approves_every_open_proposal_and_reports_each_outcome(world):
    second = make_demand(world.session, world, "a1", "sec_a1", quantity=2)
    third = make_demand(world.session, world, "a1", "sec_a1", quantity=1)
    done = run(world)
    p1, p2, p3 = (proposal_for(world, done.id, d) for d in (world["d_a1"], second, third))
    reject(world, p3.id)

    outcomes = matching.approve_run(world.session, actor=world.actor("sec_a1"), run_id=done.id,
                                    now=NOW)

    assert [o["id"] for o in outcomes] == [p1.id, p2.id]  # the rejected one is not open
    assert all(o["status"] == "approved" and o["assignment_id"] for o in outcomes)
    for p, outcome in zip((p1, p2), outcomes, strict=True):
        dispatch = row(world, Assignment, outcome["assignment_id"])
        assert (dispatch.demand_id, dispatch.unit_id, dispatch.status) == (
            p.demand_id, p.unit_id, "offered")
    assert [p.status for p in proposals_of(world, done.id)] == ["approved", "approved",
                                                                "rejected"]


def test_approving_the_whole_run_refuses_stale_proposals_one_by_one(world):
    second = make_demand(world.session, world, "a1", "sec_a1", quantity=2)
    done = run(world)
    fresh, edited = (proposal_for(world, done.id, d) for d in (world["d_a1"], second))
    demands.update_demand(world.session, actor=world.actor("sec_a1"), demand_id=second,
                          changes={"title": "改过的标题"})

    outcomes = matching.approve_run(world.session, actor=world.actor("sec_a1"), run_id=done.id,
                                    now=NOW)

    by_id = {o["id"]: o for o in outcomes}
    assert by_id[fresh.id]["status"] == "approved"
    assert by_id[edited.id]["status"] == "refused"
    assert by_id[edited.id]["code"] == "stale_proposal"
    assert "edited" in by_id[edited.id]["message"]
    assert row(world, MatchProposal, edited.id).status == "stale"
    assert world.session.scalar(select(func.count()).select_from(Assignment).where(
        Assignment.demand_id == second)) == 0


def test_approving_the_whole_run_approves_a_team_lead_first_then_its_helpers(world):
    big = make_demand(world.session, world, "a1", "sec_a1", quantity=15)  # more than any share
    done = run(world, mode="1+N")
    team = [p for p in proposals_of(world, done.id) if p.demand_id == big]
    assert sorted(p.role for p in team) == ["helper", "lead"]
    assert sum(p.quantity for p in team) == 15

    outcomes = matching.approve_run(world.session, actor=world.actor("sec_a1"), run_id=done.id,
                                    now=NOW)

    lead = next(p for p in team if p.role == "lead")
    team_outcomes = [o for o in outcomes if o["id"] in {p.id for p in team}]
    assert team_outcomes[0]["id"] == lead.id
    assert all(o["status"] == "approved" for o in outcomes), outcomes
    assert row(world, DemandItem, big).quantity_open == 0


def test_approving_a_run_outside_ones_scope_is_not_found(world):
    done = run(world)
    with pytest.raises(NotFoundError):
        matching.approve_run(world.session, actor=world.actor("sec_b1"), run_id=done.id, now=NOW)


# ---- rejecting ----------------------------------------------------------------------------------

@pytest.mark.parametrize("reason", [None, "", "   "])
def test_rejecting_a_proposal_needs_a_reason(world, reason):
    p = proposal_for(world, run(world).id, world["d_a1"])
    before = written(world)
    with pytest.raises(ValidationError) as info:
        reject(world, p.id, reason=reason)
    assert "reason" in info.value.fields
    assert written(world) == before
    assert row(world, MatchProposal, p.id).status == "proposed"


def test_a_rejected_proposal_keeps_its_reason_and_who_decided(world):
    p = proposal_for(world, run(world).id, world["d_a1"])
    rejected = reject(world, p.id, reason="  该单位本周人手不足 ")
    assert rejected.status == "rejected"
    assert rejected.reason == "该单位本周人手不足"
    assert rejected.decided_by == world.users["sec_a1"]
    assert rejected.assignment_id is None
    assert [(e.to_status, e.reason) for e in events(world, "match_proposals", p.id)] == [
        ("rejected", "该单位本周人手不足")]


def test_a_rejected_pair_is_not_proposed_again_unless_the_run_includes_rejected_pairs(world):
    demand, resource = legal_pair(world)
    first = run(world)
    p = proposal_for(world, first.id, demand)
    assert p.resource_id == resource
    reject(world, p.id)

    again = run(world)
    assert (demand, resource) not in pairs(proposals_of(world, again.id))
    assert demand not in {q.demand_id for q in proposals_of(world, again.id)}  # nobody else fits

    included = run(world, include_rejected=True)
    assert (demand, resource) in pairs(proposals_of(world, included.id))


def test_a_rejected_pair_leaves_the_demand_to_other_resources(world):
    first = run(world)
    p = proposal_for(world, first.id, world["d_a1"])
    reject(world, p.id)
    again = proposal_for(world, run(world).id, world["d_a1"])
    assert again.resource_id != p.resource_id
    assert again.resource_id in {world["r_x"], world["r_y"]}


def test_a_decided_proposal_cannot_be_rejected(world):
    p = proposal_for(world, run(world).id, world["d_a1"])
    approve(world, p.id)
    with pytest.raises(IllegalTransitionError):
        reject(world, p.id)
    assert row(world, MatchProposal, p.id).status == "approved"


# ---- stale proposals ----------------------------------------------------------------------------

def test_editing_the_demand_after_the_run_makes_its_proposal_stale(world):
    p = proposal_for(world, run(world).id, world["d_a1"])
    assert matching.stale_reason(p) is None
    demands.update_demand(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"],
                          changes={"required_skills": ["电工"]})
    world.session.refresh(p)
    assert matching.stale_reason(p) == "the demand was edited after the run"
    before = count(world, Assignment)

    with pytest.raises(StaleProposalError) as info:
        approve(world, p.id)

    assert info.value.code == "stale_proposal" and info.value.status == 409
    assert count(world, Assignment) == before
    stale = row(world, MatchProposal, p.id)
    assert stale.status == "stale" and stale.assignment_id is None
    assert "edited" in stale.reason
    assert [e.to_status for e in events(world, "match_proposals", p.id)] == ["stale"]
    assert row(world, DemandItem, world["d_a1"]).quantity_open == 3


def test_editing_the_resource_after_the_run_makes_its_proposal_stale(world):
    p = proposal_for(world, run(world).id, world["d_a1"])
    unit = "unit_x" if p.unit_id == world["x"] else "unit_y"
    resources.update_resource(world.session, actor=world.actor(unit), resource_id=p.resource_id,
                              changes={"title": "改过的标题"})
    world.session.refresh(p)
    assert matching.stale_reason(p) == "the resource was edited after the run"
    with pytest.raises(StaleProposalError):
        approve(world, p.id)
    assert row(world, MatchProposal, p.id).status == "stale"


def _cancel_demand(world, p):
    demands.cancel_demand(world.session, actor=world.actor("sec_a1"), demand_id=p.demand_id,
                          reason="居民已搬走")


def _claim_it_all(world, p):
    other = "y" if p.unit_id == world["x"] else "x"
    claim(world, other, "d_a1", 3)


def _suspend_unit(world, p):
    units.suspend_unit(world.session, actor=SYSTEM, unit_id=p.unit_id, reason="整改")


def _withdraw_resource(world, p):
    unit = "unit_x" if p.unit_id == world["x"] else "unit_y"
    resources.withdraw_resource(world.session, actor=world.actor(unit),
                                resource_id=p.resource_id, reason="暂停服务")


@pytest.mark.parametrize(("change", "reason"), [
    pytest.param(_cancel_demand, "the demand no longer needs this much", id="demand cancelled"),
    pytest.param(_claim_it_all, "the demand no longer needs this much",
                 id="another unit claimed it all"),
    pytest.param(_suspend_unit, "the unit is not approved now", id="unit suspended"),
    pytest.param(_withdraw_resource, "the resource no longer offers this much",
                 id="resource withdrawn"),
])
def test_a_proposal_whose_demand_resource_or_unit_moved_on_is_stale(world, change, reason):
    p = proposal_for(world, run(world).id, world["d_a1"])
    change(world, p)
    world.session.expire_all()
    assert matching.stale_reason(row(world, MatchProposal, p.id)) == reason
    before = world.session.scalar(select(func.count()).select_from(Assignment).where(
        Assignment.unit_id == p.unit_id, Assignment.demand_id == p.demand_id))
    with pytest.raises(StaleProposalError):
        approve(world, p.id)
    assert row(world, MatchProposal, p.id).status == "stale"
    assert world.session.scalar(select(func.count()).select_from(Assignment).where(
        Assignment.unit_id == p.unit_id, Assignment.demand_id == p.demand_id)) == before


def test_a_demand_edited_while_the_solver_runs_makes_its_proposal_stale(world, monkeypatch,
                                                                       session_factory):
    real_solve = matching._solve

    def solve_while_the_secretary_edits(data, params):
        result = real_solve(data, params)
        with session_factory() as other:
            demands.update_demand(other, actor=world.actor("sec_a1"), demand_id=world["d_a1"],
                                  changes={"required_skills": ["电工"]})
        return result

    monkeypatch.setattr(matching, "_solve", solve_while_the_secretary_edits)
    p = proposal_for(world, run(world).id, world["d_a1"])
    # The proposal was made for a demand needing 陪护; it now needs an electrician.
    assert matching.stale_reason(p) == "the demand was edited after the run"


# ---- runs again -----------------------------------------------------------------------------------

def test_a_new_run_supersedes_the_older_runs_open_proposals_for_the_same_demands(world):
    second = make_demand(world.session, world, "a1", "sec_a1", quantity=2)
    first = run(world)
    kept = approve(world, proposal_for(world, first.id, second).id)

    newer = run(world)

    old = {p.demand_id: p for p in proposals_of(world, first.id)}
    assert old[world["d_a1"]].status == "superseded"
    assert old[second].status == "approved"  # decided proposals stay as they are
    assert kept.assignment_id == old[second].assignment_id
    made = proposals_of(world, newer.id)
    assert {p.demand_id for p in made} == {world["d_a1"]}  # `second` is dispatched in full
    assert all(p.status == "proposed" for p in made)
    assert [e.to_status for e in events(world, "match_proposals", old[world["d_a1"]].id)] == [
        "superseded"]
    with pytest.raises(IllegalTransitionError):
        approve(world, old[world["d_a1"]].id)


def test_a_community_run_leaves_the_open_proposals_of_other_communities_alone(world):
    in_a2 = make_demand(world.session, world, "a2", "sec_a2")
    a2_run = run(world, by="sec_a2", community="a2")
    run(world)
    assert proposal_for(world, a2_run.id, in_a2).status == "proposed"


# ---- parameters -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "field"), [
    ({"mode": "best"}, "mode"),
    ({"time_limit": 0}, "time_limit"),
    ({"time_limit": 121}, "time_limit"),
    ({"time_limit": True}, "time_limit"),
    ({"seed": -1}, "seed"),
    ({"weights": {"bogus": 5}}, "weights"),
    ({"weights": {"serve": 1.5}}, "weights"),
    ({"pinned": [{"demand_id": 1}]}, "pinned"),
    ({"forbidden": "all"}, "forbidden"),
    ({"colour": "red"}, "colour"),
])
def test_bad_parameters_are_refused_naming_the_field_and_nothing_is_written(world, params, field):
    before = written(world)
    with pytest.raises(ValidationError) as info:
        run(world, **params)
    assert field in info.value.fields
    with pytest.raises(ValidationError):
        preview(world, **params)
    assert written(world) == before


def test_a_run_keeps_its_parameters_with_their_defaults(world):
    done = run(world, mode="1+1", time_limit=2, seed=7, weights={"pairing": 400})
    assert done.mode == "1+1"
    assert done.params == {"mode": "1+1", "time_limit": 2, "seed": 7,
                           "weights": {"pairing": 400}, "pinned": [], "forbidden": [],
                           "include_rejected": False}


@pytest.mark.parametrize("field", ["pinned", "forbidden"])
def test_a_dry_run_refuses_a_pair_outside_its_scope(world, field):
    before = written(world)
    with pytest.raises(ValidationError) as info:
        preview(world, **{field: [{"demand_id": world["d_b1"], "resource_id": world["r_x"]}]})
    assert field in info.value.fields
    assert written(world) == before


def test_a_forbidden_pair_is_not_proposed_and_a_pinned_pair_is(world):
    forbidden = run(world, forbidden=[{"demand_id": world["d_a1"], "resource_id": world["r_x"]}])
    assert proposal_for(world, forbidden.id, world["d_a1"]).resource_id == world["r_y"]
    pinned = run(world, pinned=[{"demand_id": world["d_a1"], "resource_id": world["r_x"]}])
    assert proposal_for(world, pinned.id, world["d_a1"]).resource_id == world["r_x"]


def test_the_weights_of_a_run_change_the_scores(world):
    plain = proposal_for(world, run(world).id, world["d_a1"])
    heavy = proposal_for(world, run(world, weights={"serve": 5000}).id, world["d_a1"])
    assert heavy.terms["serve"] == 5000
    assert heavy.score - plain.score == 4000


# ---- existing claims and dispatches --------------------------------------------------------------

@pytest.mark.parametrize("state", ["pending", "approved", "offered"])
def test_a_unit_that_already_holds_a_share_of_a_demand_is_not_proposed_for_it_again(world, state):
    if state == "offered":
        assignments.dispatch_demand(world.session, actor=world.actor("sec_a1"),
                                    demand_id=world["d_a1"], unit_id=world["y"], quantity=1,
                                    now=NOW)
    else:
        held = claim(world, "y", "d_a1", 1)
        if state == "approved":
            assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                                      assignment_id=held.id, now=NOW)

    done = run(world)

    made = [p for p in proposals_of(world, done.id) if p.demand_id == world["d_a1"]]
    assert world["y"] not in {p.unit_id for p in made}
    assert [(p.unit_id, p.quantity) for p in made] == [(world["x"], 2)]  # what is still open
    if state == "approved":
        assert made[0].role == "helper"  # unit y already leads the demand


def test_a_unit_with_a_share_of_a_demand_through_another_resource_is_not_proposed_for_it(world):
    extra = make_resource(world.session, world, "y", "unit_y", ["a1"])
    claim(world, "y", "d_a1", 1, resource="r_y")
    done = run(world)
    made = [p for p in proposals_of(world, done.id) if p.demand_id == world["d_a1"]]
    assert {p.resource_id for p in made}.isdisjoint({world["r_y"], extra})


def test_a_demand_with_nothing_left_open_is_not_in_the_run(world):
    second = make_demand(world.session, world, "a1", "sec_a1", quantity=1)
    claim(world, "y", "d_a1", 3)
    done = run(world)
    assert {p.demand_id for p in proposals_of(world, done.id)} == {second}
    assert done.summary["demands"] == 1


def _nothing_open(world):
    claim(world, "y", "d_a1", 3)
    return "a1"


def _no_demands(world):
    return "a2"


def _nothing_fits(world):
    make_demand(world.session, world, "a2", "sec_a2", code="legal")
    return "a2"


@pytest.mark.parametrize("setup", [
    pytest.param(_nothing_open, id="every demand is held in full"),
    pytest.param(_no_demands, id="the community has no demands"),
    pytest.param(_nothing_fits, id="no resource fits the only demand"),
])
def test_a_run_with_nothing_to_pair_is_done_with_no_proposals(world, setup):
    community = setup(world)
    done = run(world, by="admin_a", community=community)
    assert (done.status, done.error) == ("done", None)
    assert proposals_of(world, done.id) == []
    assert done.summary["pairs"] == 0


# ---- failures ---------------------------------------------------------------------------------------

def test_a_failing_solve_marks_the_run_failed_with_a_message_instead_of_raising(world, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the solver crashed")

    monkeypatch.setattr(matching, "solve", broken)
    before = count(world, MatchProposal)

    failed = run(world)

    assert failed.status == "failed"
    assert failed.error == "internal error: RuntimeError"
    assert failed.progress == 100 and failed.finished_at is not None
    assert failed.summary is None
    assert count(world, MatchProposal) == before
    steps = events(world, "match_runs", failed.id)
    assert [e.to_status for e in steps] == ["queued", "running", "failed"]
    assert "RuntimeError" in steps[-1].data


def test_a_problem_the_solver_refuses_fails_the_run_with_the_solvers_reason(world, monkeypatch):
    def refuses(*args, **kwargs):
        raise ProblemError("pinned pair 1/2 is not a candidate")

    monkeypatch.setattr(matching, "solve", refuses)
    failed = run(world)
    assert failed.status == "failed"
    assert failed.error == "pinned pair 1/2 is not a candidate"


def test_a_failing_dry_run_is_a_validation_error(world, monkeypatch):
    def refuses(*args, **kwargs):
        raise ProblemError("pinned pair 1/2 is not a candidate")

    monkeypatch.setattr(matching, "solve", refuses)
    with pytest.raises(ValidationError):
        preview(world)


def test_a_run_that_finished_cannot_be_executed_again(world):
    done = run(world)
    with pytest.raises(ConflictError):
        matching.execute_match_run(world.session, run_id=done.id)
    assert row(world, MatchRun, done.id).status == "done"


# ---- reading runs and proposals ---------------------------------------------------------------------

def test_runs_and_proposals_are_listed_to_the_secretary_and_the_subdistrict_admin_only(world):
    done = run(world)
    for who, sees in (("sec_a1", True), ("admin_a", True), ("sec_a2", False),
                      ("admin_b", False), ("clerk_a1", False), ("unit_x", False)):
        actor = world.actor(who)
        page = matching.list_match_runs(world.session, actor=actor, filters={})
        assert (done.id in {r.id for r in page.items}) is sees, who
        listed = matching.list_proposals(world.session, actor=actor, filters={"run_id": done.id})
        assert (listed.total == 1) is sees, who


def test_a_subdistrict_run_is_listed_to_its_admin_and_its_proposals_to_each_secretary(world):
    in_a2 = make_demand(world.session, world, "a2", "sec_a2")
    done = run(world, by="admin_a", community=None, subdistrict="A")
    assert done.id in {r.id for r in matching.list_match_runs(
        world.session, actor=world.actor("admin_a"), filters={}).items}
    for who, demand in (("sec_a1", world["d_a1"]), ("sec_a2", in_a2)):
        listed = matching.list_proposals(world.session, actor=world.actor(who),
                                         filters={"run_id": done.id})
        assert [p.demand_id for p in listed.items] == [demand]
    # The secretary decides on her community's proposal of the admin's run.
    approved = approve(world, proposal_for(world, done.id, in_a2).id, by="sec_a2")
    assert approved.status == "approved"


def test_category_other_resources_may_be_proposed_for_any_demand(world):
    general = make_resource(world.session, world, "z", "unit_z", ["a1"], code="other")
    legal = make_demand(world.session, world, "a1", "sec_a1", code="legal", quantity=1)
    assert category_id(world.session, "legal") != category_id(world.session, "other")
    done = run(world)
    assert proposal_for(world, done.id, legal).resource_id == general
