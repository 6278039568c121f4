"""Auto-proposals: the scheduler's match run for each community that turns it on — only when it
has new open items, only proposing (never approving), and doing nothing the second time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW
from tests.factories import make_demand
from web.models import Assignment, AuditEvent, Community, DemandItem, MatchProposal, MatchRun
from web.services.auto_matching import last_automatic_run, propose_for_new_items

pytestmark = pytest.mark.db

LATER = NOW + timedelta(minutes=30)


def turn_on(world, community: str) -> None:
    world.session.get(Community, world[community]).auto_propose = True
    world.session.commit()


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def runs_in(session, community_id: int) -> list[MatchRun]:
    session.expire_all()
    return list(session.scalars(select(MatchRun).where(MatchRun.community_id == community_id)
                                .order_by(MatchRun.id)))


def published(world, demand_id: int, at) -> int:
    """Pin when the demand was published (the clock the auto-proposals compare with)."""
    world.session.get(DemandItem, demand_id).published_at = at
    world.session.commit()
    return demand_id


def test_a_community_that_has_not_turned_it_on_gets_no_run(world):
    outcome = propose_for_new_items(world.session, now=LATER)
    assert outcome == {"runs": [], "failed": []}
    assert count(world.session, MatchRun) == 0


def test_a_new_open_item_gets_one_automatic_run_that_proposes_and_approves_nothing(world):
    turn_on(world, "a1")
    assignments_before = count(world.session, Assignment)

    outcome = propose_for_new_items(world.session, now=LATER)

    [run] = runs_in(world.session, world["a1"])
    proposals = list(world.session.scalars(select(MatchProposal).where(
        MatchProposal.run_id == run.id)))
    assert proposals
    assert outcome["runs"] == [{"community_id": world["a1"], "run_id": run.id, "status": "done",
                                "proposals": len(proposals), "error": None}]
    assert (run.created_by, run.params["automatic"], run.created_at) == (None, True, LATER)
    assert {p.demand_id for p in proposals} == {world["d_a1"]}
    assert {p.status for p in proposals} == {"proposed"}
    assert all(p.assignment_id is None and p.decided_by is None for p in proposals)
    assert count(world.session, Assignment) == assignments_before


def test_the_automatic_run_is_recorded_in_the_audit_trail(world):
    turn_on(world, "a1")
    propose_for_new_items(world.session, now=LATER)
    [run] = runs_in(world.session, world["a1"])
    event = world.session.scalar(select(AuditEvent).where(
        AuditEvent.entity_type == "match_runs", AuditEvent.entity_id == run.id,
        AuditEvent.action == "automatic"))
    assert (event.actor_id, event.created_at) == (None, LATER)
    assert last_automatic_run(world.session, world["a1"]) == LATER


def test_only_the_communities_that_turned_it_on_get_a_run(world):
    turn_on(world, "b1")
    propose_for_new_items(world.session, now=LATER)
    assert [len(runs_in(world.session, world[c])) for c in ("a1", "a2", "b1")] == [0, 0, 1]


def test_a_community_without_open_items_gets_no_run(world):
    turn_on(world, "a2")
    assert propose_for_new_items(world.session, now=LATER)["runs"] == []


def test_running_twice_with_nothing_new_makes_no_second_run(world):
    turn_on(world, "a1")
    propose_for_new_items(world.session, now=LATER)
    before = (count(world.session, MatchRun), count(world.session, MatchProposal),
              count(world.session, AuditEvent))

    again = propose_for_new_items(world.session, now=LATER + timedelta(minutes=30))

    assert again == {"runs": [], "failed": []}
    assert (count(world.session, MatchRun), count(world.session, MatchProposal),
            count(world.session, AuditEvent)) == before


def test_an_item_published_after_the_last_automatic_run_gets_a_new_run(world):
    turn_on(world, "a1")
    propose_for_new_items(world.session, now=LATER)
    new_item = published(world, make_demand(world.session, world, "a1", "sec_a1"),
                         LATER + timedelta(minutes=10))

    outcome = propose_for_new_items(world.session, now=LATER + timedelta(minutes=30))

    first, second = runs_in(world.session, world["a1"])
    assert [r["run_id"] for r in outcome["runs"]] == [second.id]
    assert new_item in {p.demand_id for p in world.session.scalars(
        select(MatchProposal).where(MatchProposal.run_id == second.id))}
    assert count(world.session, MatchProposal, MatchProposal.status == "approved") == 0


def test_an_item_published_before_the_last_automatic_run_does_not_start_another(world):
    turn_on(world, "a1")
    propose_for_new_items(world.session, now=LATER)
    published(world, make_demand(world.session, world, "a1", "sec_a1"),
              LATER - timedelta(minutes=5))
    assert propose_for_new_items(world.session, now=LATER + timedelta(minutes=30))["runs"] == []


def test_a_failed_automatic_run_does_not_count_as_the_last_one(world, monkeypatch):
    from web.services import matching

    turn_on(world, "a1")

    def broken_solve(data, params):
        raise RuntimeError("the solver fell over")

    monkeypatch.setattr(matching, "_solve", broken_solve)
    failed = propose_for_new_items(world.session, now=LATER)
    assert [r["status"] for r in failed["runs"]] == ["failed"]
    monkeypatch.undo()

    retried = propose_for_new_items(world.session, now=LATER + timedelta(minutes=30))
    assert [r["status"] for r in retried["runs"]] == ["done"]
