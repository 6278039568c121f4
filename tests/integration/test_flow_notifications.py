"""Each step of the work on an item tells the people who act next, in their inbox, with a link
to the page where they act: claims, dispatches, reports, the request to confirm, micro-wishes."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import NOW
from tests.factories import category_id, claim, make_demand, pair
from web.domain.actor import SYSTEM
from web.models import Notification
from web.services import assignments, places, reports, wishes

pytestmark = pytest.mark.db

VOLUNTEERS = [{"name": "张三", "phone": "13500000000", "minutes": 90}]


def notes(world, kind: str) -> list[Notification]:
    return list(world.session.scalars(select(Notification).where(Notification.kind == kind)
                                      .order_by(Notification.user_id)))


def readers(world, kind: str) -> list[str]:
    """The usernames told of `kind`."""
    names = {user_id: name for name, user_id in world.users.items()}
    return sorted(names[n.user_id] for n in notes(world, kind))


def only(world, kind: str) -> Notification:
    [note] = notes(world, kind)
    return note


def approve(world, assignment_id: int):
    return assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                                     assignment_id=assignment_id, now=NOW)


def dispatch(world):
    return assignments.dispatch_demand(world.session, actor=world.actor("sec_a1"),
                                       demand_id=world["d_a1"], unit_id=world["x"], quantity=1,
                                       response_hours=6, now=NOW)


def reported(world, demand: str = "d_a1"):
    share = claim(world, "x", demand, 3)
    approve(world, share.id)
    return reports.submit_report(
        world.session, actor=world.actor("unit_x"), demand_id=world[demand],
        started_on=date(2026, 11, 18), ended_on=date(2026, 11, 19), volunteers=VOLUNTEERS,
        beneficiaries_served=1, value_fen=1000, now=NOW)


def verify(world, report):
    reports.verify_report(world.session, actor=world.actor("sec_a1"), report_id=report.id,
                          now=NOW)


# ---- claims -----------------------------------------------------------------------------------

def test_a_claim_asks_the_communitys_secretary_to_approve_it(world):
    claim(world, "x", "d_a1")
    assert readers(world, "claim_pending") == ["sec_a1"]
    note = only(world, "claim_pending")
    assert note.needs_action and note.link == "/secretary" and note.demand_id == world["d_a1"]
    assert json.loads(note.params) == {"title": "独居老人探访", "unit": "Unit x"}
    assert note.created_at == NOW


def test_an_approved_claim_tells_the_units_admin(world):
    approve(world, claim(world, "x", "d_a1").id)
    assert readers(world, "claim_approved") == ["unit_x"]
    assert only(world, "claim_approved").link == "/unit/work"


def test_a_rejected_claim_tells_the_units_admin_why(world):
    share = claim(world, "x", "d_a1")
    assignments.reject_claim(world.session, actor=world.actor("sec_a1"), assignment_id=share.id,
                             reason="人员不足", now=NOW)
    assert readers(world, "claim_rejected") == ["unit_x"]
    assert json.loads(only(world, "claim_rejected").params)["reason"] == "人员不足"


def test_an_auto_approved_claim_tells_the_unit_and_asks_no_one_to_approve(world):
    places.update_community_settings(world.session, actor=SYSTEM, community_id=world["a1"],
                                     changes={"auto_approve_paired_claims": True})
    pair(world, "x", "a1")
    claim(world, "x", "d_a1")
    assert readers(world, "claim_approved") == ["unit_x"]
    assert notes(world, "claim_pending") == []


# ---- dispatches -------------------------------------------------------------------------------

def test_a_dispatch_asks_the_units_admin_to_answer_by_its_deadline(world):
    dispatch(world)
    assert readers(world, "dispatch_offered") == ["unit_x"]
    note = only(world, "dispatch_offered")
    assert note.needs_action and note.link == "/unit/work"
    assert json.loads(note.params)["deadline_at"] == (NOW + timedelta(hours=6)).isoformat()


def test_an_accepted_dispatch_tells_the_secretary(world):
    offer = dispatch(world)
    assignments.accept_dispatch(world.session, actor=world.actor("unit_x"),
                                assignment_id=offer.id, now=NOW)
    assert readers(world, "dispatch_accepted") == ["sec_a1"]
    assert only(world, "dispatch_accepted").link == f"/demands/{world['d_a1']}"


def test_a_declined_dispatch_tells_the_secretary_why(world):
    offer = dispatch(world)
    assignments.decline_dispatch(world.session, actor=world.actor("unit_x"),
                                 assignment_id=offer.id, reason="车辆检修", now=NOW)
    assert readers(world, "dispatch_declined") == ["sec_a1"]
    params = json.loads(only(world, "dispatch_declined").params)
    assert params == {"title": "独居老人探访", "unit": "Unit x", "reason": "车辆检修"}


# ---- reports and confirmation -----------------------------------------------------------------

def test_a_report_asks_the_secretary_to_verify_it(world):
    reported(world)
    assert readers(world, "report_submitted") == ["sec_a1"]
    note = only(world, "report_submitted")
    assert note.needs_action and note.link == "/secretary"


def test_a_verified_report_tells_the_unit_and_asks_the_beneficiary_to_confirm(world):
    verify(world, reported(world))
    assert readers(world, "report_verified") == ["unit_x"]
    assert readers(world, "confirm_requested") == ["res_a1"]
    note = only(world, "confirm_requested")
    assert note.needs_action and note.link == f"/me/services/{world['d_a1']}"


def test_without_a_beneficiary_account_the_grid_worker_is_asked_to_confirm(world):
    world.ids["d_plain"] = make_demand(world.session, world, "a1", "sec_a1", grid="g_a1")
    verify(world, reported(world, "d_plain"))
    assert readers(world, "confirm_requested") == ["grid_a1"]
    assert only(world, "confirm_requested").link == f"/grid/items/{world['d_plain']}"


def test_a_returned_report_tells_the_unit_why(world):
    report = reported(world)
    reports.return_report(world.session, actor=world.actor("sec_a1"), report_id=report.id,
                          reason="缺照片", now=NOW)
    assert readers(world, "report_returned") == ["unit_x"]
    assert json.loads(only(world, "report_returned").params)["reason"] == "缺照片"


# ---- micro-wishes -----------------------------------------------------------------------------

def wish(world):
    return wishes.submit_wish(world.session, actor=world.actor("res_a1"), title="想学用智能手机",
                              now=NOW)


def test_an_accepted_wish_tells_the_resident(world):
    made = wish(world)
    wishes.accept_wish(world.session, actor=world.actor("grid_a1"), wish_id=made.id,
                       demand={"category_id": category_id(world.session)}, now=NOW)
    assert readers(world, "wish_accepted") == ["res_a1"]
    assert only(world, "wish_accepted").link == f"/me/wishes/{made.id}"


def test_a_declined_wish_tells_the_resident_why(world):
    made = wish(world)
    wishes.decline_wish(world.session, actor=world.actor("sec_a1"), wish_id=made.id,
                        reason="不在服务范围", now=NOW)
    assert readers(world, "wish_declined") == ["res_a1"]
    assert json.loads(only(world, "wish_declined").params)["reason"] == "不在服务范围"


# ---- nobody else --------------------------------------------------------------------------------

def test_people_of_another_community_or_unit_are_told_nothing(world):
    verify(world, reported(world))
    told = {n.user_id for n in world.session.scalars(select(Notification))}
    for name in ("sec_b1", "grid_b1", "unit_y", "unit_z", "res_b1", "admin_b", "clerk_a1"):
        assert world.users[name] not in told, name
