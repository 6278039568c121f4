"""Self-claims (自主选单), dispatches (社区派单), approval and the audit trail, on the service layer."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW
from tests.factories import claim, make_demand, make_resource, pair
from web.domain.actor import SYSTEM
from web.errors import (
    ConflictError,
    IllegalTransitionError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from web.models import Assignment, AuditEvent, DemandItem, ResourceItem
from web.services import assignments, demands, places, units

pytestmark = pytest.mark.db


# ---- helpers ----------------------------------------------------------------------------------

def demand_row(world, key_or_id) -> DemandItem:
    ident = world[key_or_id] if isinstance(key_or_id, str) else key_or_id
    row = world.session.get(DemandItem, ident)
    world.session.refresh(row)
    return row


def resource_row(world, key_or_id) -> ResourceItem:
    ident = world[key_or_id] if isinstance(key_or_id, str) else key_or_id
    row = world.session.get(ResourceItem, ident)
    world.session.refresh(row)
    return row


def assignment_row(world, assignment_id: int) -> Assignment:
    row = world.session.get(Assignment, assignment_id)
    world.session.refresh(row)
    return row


def audit_count(world) -> int:
    return world.session.scalar(select(func.count()).select_from(AuditEvent))


def approve(world, assignment_id: int, by: str = "sec_a1"):
    return assignments.approve_claim(world.session, actor=world.actor(by),
                                     assignment_id=assignment_id, now=NOW)


def dispatch(world, unit: str, demand: str = "d_a1", quantity: int = 1, by: str = "sec_a1",
             now: datetime = NOW, **extra):
    return assignments.dispatch_demand(world.session, actor=world.actor(by),
                                       demand_id=world[demand], unit_id=world[unit],
                                       quantity=quantity, now=now, **extra)


def set_community(world, community: str, **changes):
    places.update_community_settings(world.session, actor=SYSTEM, community_id=world[community],
                                     changes=changes)


def local(text: str) -> datetime:
    """A Beijing-time moment as an aware datetime."""
    return datetime.fromisoformat(text + "+08:00")


# ---- self-claim: quantities -------------------------------------------------------------------

def test_a_claim_holds_its_quantity_on_the_demand_and_on_the_resource(world):
    c = claim(world, "x", "d_a1", 2)
    assert c.status == "pending" and c.origin == "claim" and c.quantity == 2
    d = demand_row(world, "d_a1")
    assert (d.quantity_open, d.quantity_confirmed, d.status) == (1, 0, "open")
    assert resource_row(world, "r_x").quantity_remaining == 98


def test_a_claim_cannot_take_more_than_the_demand_still_needs(world):
    with pytest.raises(ConflictError):
        claim(world, "x", "d_a1", 4)
    d = demand_row(world, "d_a1")
    assert d.quantity_open == 3
    assert resource_row(world, "r_x").quantity_remaining == 100


def test_a_second_unit_cannot_claim_more_than_what_the_first_left_open(world):
    claim(world, "y", "d_a1", 2)
    with pytest.raises(ConflictError):
        claim(world, "x", "d_a1", 2)
    assert claim(world, "x", "d_a1", 1).quantity == 1
    assert demand_row(world, "d_a1").quantity_open == 0


def test_a_second_unit_cannot_claim_the_last_slot_once_it_is_taken(world):
    claim(world, "y", "d_a1", 3)
    with pytest.raises(ConflictError):
        claim(world, "x", "d_a1", 1)
    assert resource_row(world, "r_x").quantity_remaining == 100


def test_a_claim_cannot_take_more_than_the_resource_has_left(world):
    small = make_resource(world.session, world, "x", "unit_x", ["a1"], quantity=3, capacity=3)
    other = make_demand(world.session, world, "a1", "sec_a1", quantity=5)
    assignments.claim_demand(world.session, actor=world.actor("unit_x"), demand_id=world["d_a1"],
                             unit_id=world["x"], resource_id=small, quantity=3, now=NOW)
    with pytest.raises(ConflictError):
        assignments.claim_demand(world.session, actor=world.actor("unit_x"), demand_id=other,
                                 unit_id=world["x"], resource_id=small, quantity=1, now=NOW)
    assert demand_row(world, other).quantity_open == 5
    assert resource_row(world, small).quantity_remaining == 0


def test_a_claim_cannot_exceed_the_resources_capacity_per_occasion(world):
    small = make_resource(world.session, world, "x", "unit_x", ["a1"], quantity=50, capacity=2)
    with pytest.raises(ValidationError) as info:
        assignments.claim_demand(world.session, actor=world.actor("unit_x"),
                                 demand_id=world["d_a1"], unit_id=world["x"], resource_id=small,
                                 quantity=3, now=NOW)
    assert "quantity" in info.value.fields
    assert demand_row(world, "d_a1").quantity_open == 3


def test_a_claim_of_zero_is_refused(world):
    with pytest.raises(ValidationError) as info:
        claim(world, "x", "d_a1", 0)
    assert "quantity" in info.value.fields


# ---- self-claim: fit ---------------------------------------------------------------------------

def test_a_resource_of_another_category_cannot_claim_the_demand(world):
    legal = make_resource(world.session, world, "x", "unit_x", ["a1"], code="legal")
    with pytest.raises(ValidationError) as info:
        assignments.claim_demand(world.session, actor=world.actor("unit_x"),
                                 demand_id=world["d_a1"], unit_id=world["x"], resource_id=legal,
                                 quantity=1, now=NOW)
    assert "resource_id" in info.value.fields


def test_a_resource_of_the_other_category_may_claim_any_demand(world):
    general = make_resource(world.session, world, "x", "unit_x", ["a1"], code="other")
    c = assignments.claim_demand(world.session, actor=world.actor("unit_x"),
                                 demand_id=world["d_a1"], unit_id=world["x"], resource_id=general,
                                 quantity=1, now=NOW)
    assert c.status == "pending"


def test_a_resource_cannot_claim_a_demand_outside_its_service_area(world):
    in_a2 = make_demand(world.session, world, "a2", "sec_a2")
    with pytest.raises(ValidationError) as info:
        assignments.claim_demand(world.session, actor=world.actor("unit_y"), demand_id=in_a2,
                                 unit_id=world["y"], resource_id=world["r_y"], quantity=1, now=NOW)
    assert "resource_id" in info.value.fields
    assert demand_row(world, in_a2).quantity_open == 3


def test_a_resource_with_a_radius_serves_a_demand_within_it_outside_its_communities(world):
    near = make_resource(world.session, world, "y", "unit_y", ["a1"], lat=40.0, lng=98.9,
                         radius_m=2_000)
    close_by = make_demand(world.session, world, "a2", "sec_a2", lat=40.01, lng=98.9)  # ~1.1 km
    far_away = make_demand(world.session, world, "a2", "sec_a2", lat=40.05, lng=98.9)  # ~5.6 km
    ok = assignments.claim_demand(world.session, actor=world.actor("unit_y"), demand_id=close_by,
                                  unit_id=world["y"], resource_id=near, quantity=1, now=NOW)
    assert ok.status == "pending"
    with pytest.raises(ValidationError):
        assignments.claim_demand(world.session, actor=world.actor("unit_y"), demand_id=far_away,
                                 unit_id=world["y"], resource_id=near, quantity=1, now=NOW)


def test_a_resource_not_available_in_the_demands_window_cannot_claim_it(world):
    later = make_resource(world.session, world, "x", "unit_x", ["a1"], availability={
        "date_ranges": [{"start": "2027-01-01", "end": "2027-03-31"}]})
    timed = make_demand(world.session, world, "a1", "sec_a1",
                        window_start=local("2026-11-25T09:00"), window_end=local("2026-11-25T11:00"))
    with pytest.raises(ValidationError) as info:
        assignments.claim_demand(world.session, actor=world.actor("unit_x"), demand_id=timed,
                                 unit_id=world["x"], resource_id=later, quantity=1, now=NOW)
    assert "resource_id" in info.value.fields


def test_a_resource_available_in_the_demands_window_may_claim_it(world):
    nov = make_resource(world.session, world, "x", "unit_x", ["a1"], availability={
        "date_ranges": [{"start": "2026-11-01", "end": "2026-11-30"}]})
    timed = make_demand(world.session, world, "a1", "sec_a1",
                        window_start=local("2026-11-25T09:00"), window_end=local("2026-11-25T11:00"))
    c = assignments.claim_demand(world.session, actor=world.actor("unit_x"), demand_id=timed,
                                 unit_id=world["x"], resource_id=nov, quantity=1, now=NOW)
    assert c.status == "pending"


def test_availability_dates_are_local_days_so_an_early_morning_window_on_the_first_day_fits(world):
    # Availability starts on 1 December (a Beijing calendar day); the demand is 07:00–07:30 on
    # 1 December in Beijing, which is still 30 November in UTC.
    december = make_resource(world.session, world, "x", "unit_x", ["a1"], availability={
        "date_ranges": [{"start": "2026-12-01", "end": "2026-12-31"}]})
    timed = make_demand(world.session, world, "a1", "sec_a1",
                        window_start=local("2026-12-01T07:00"), window_end=local("2026-12-01T07:30"))
    c = assignments.claim_demand(world.session, actor=world.actor("unit_x"), demand_id=timed,
                                 unit_id=world["x"], resource_id=december, quantity=1, now=NOW)
    assert c.status == "pending"


def test_a_withdrawn_resource_cannot_be_used_for_a_claim(world):
    from web.services import resources

    resources.withdraw_resource(world.session, actor=world.actor("unit_x"),
                                resource_id=world["r_x"], reason="停止", now=NOW)
    with pytest.raises(ConflictError):
        claim(world, "x", "d_a1", 1)
    assert demand_row(world, "d_a1").quantity_open == 3


def test_a_unit_cannot_claim_with_another_units_resource(world):
    with pytest.raises(ValidationError) as info:
        claim(world, "x", "d_a1", 1, resource="r_y")
    assert "resource_id" in info.value.fields


# ---- self-claim: who --------------------------------------------------------------------------

def test_a_suspended_unit_cannot_claim(world):
    units.suspend_unit(world.session, actor=world.actor("admin_a"), unit_id=world["x"],
                       reason="资料不全", now=NOW)
    with pytest.raises(ConflictError):
        claim(world, "x", "d_a1", 1)
    assert demand_row(world, "d_a1").quantity_open == 3


def test_only_the_units_admin_can_claim_for_the_unit(world):
    with pytest.raises(PermissionDeniedError):
        assignments.claim_demand(world.session, actor=world.actor("unit_y"),
                                 demand_id=world["d_a1"], unit_id=world["x"],
                                 resource_id=world["r_x"], quantity=1, now=NOW)
    with pytest.raises(PermissionDeniedError):
        assignments.claim_demand(world.session, actor=world.actor("sec_a1"),
                                 demand_id=world["d_a1"], unit_id=world["x"],
                                 resource_id=world["r_x"], quantity=1, now=NOW)


def test_a_unit_cannot_claim_a_draft_demand_it_cannot_see(world):
    draft = make_demand(world.session, world, "a1", "sec_a1", publish=False)
    with pytest.raises(NotFoundError):
        assignments.claim_demand(world.session, actor=world.actor("unit_x"), demand_id=draft,
                                 unit_id=world["x"], resource_id=world["r_x"], quantity=1, now=NOW)


def test_a_demand_whose_work_has_started_takes_no_more_claims(world):
    approve(world, claim(world, "x", "d_a1", 2).id)
    demands.start_work(world.session, actor=world.actor("unit_x"), demand_id=world["d_a1"], now=NOW)
    with pytest.raises(ConflictError):
        claim(world, "y", "d_a1", 1)
    assert demand_row(world, "d_a1").quantity_open == 1


def test_one_unit_cannot_hold_two_open_claims_on_the_same_demand(world):
    claim(world, "x", "d_a1", 1)
    with pytest.raises(ConflictError):
        claim(world, "x", "d_a1", 1)
    assert demand_row(world, "d_a1").quantity_open == 2
    assert resource_row(world, "r_x").quantity_remaining == 99


def test_a_unit_may_claim_again_once_its_earlier_claim_is_withdrawn(world):
    first = claim(world, "x", "d_a1", 1)
    assignments.withdraw_claim(world.session, actor=world.actor("unit_x"),
                               assignment_id=first.id, now=NOW)
    second = claim(world, "x", "d_a1", 2)
    assert second.id != first.id and second.status == "pending"
    assert demand_row(world, "d_a1").quantity_open == 1


# ---- withdraw, release, reject -----------------------------------------------------------------

def test_withdrawing_a_pending_claim_reopens_its_quantity(world):
    c = claim(world, "x", "d_a1", 2)
    assignments.withdraw_claim(world.session, actor=world.actor("unit_x"), assignment_id=c.id,
                               now=NOW)
    assert assignment_row(world, c.id).status == "withdrawn"
    assert demand_row(world, "d_a1").quantity_open == 3
    assert resource_row(world, "r_x").quantity_remaining == 100


def test_an_approved_claim_cannot_be_withdrawn_only_released(world):
    c = claim(world, "x", "d_a1", 2)
    approve(world, c.id)
    with pytest.raises(IllegalTransitionError):
        assignments.withdraw_claim(world.session, actor=world.actor("unit_x"),
                                   assignment_id=c.id, now=NOW)
    assert assignment_row(world, c.id).status == "approved"


def test_releasing_a_confirmed_claim_with_a_reason_reopens_quantity_on_demand_and_resource(world):
    c = claim(world, "x", "d_a1", 3)
    approve(world, c.id)
    assert demand_row(world, "d_a1").status == "covered"
    assignments.release_assignment(world.session, actor=world.actor("unit_x"),
                                   assignment_id=c.id, reason="人手不足", now=NOW)
    a = assignment_row(world, c.id)
    assert a.status == "released" and a.is_lead is False and a.active_demand_id is None
    d = demand_row(world, "d_a1")
    assert (d.quantity_open, d.quantity_confirmed, d.status) == (3, 0, "open")
    assert resource_row(world, "r_x").quantity_remaining == 100


def test_a_release_without_a_reason_is_refused_and_changes_nothing(world):
    c = claim(world, "x", "d_a1", 3)
    approve(world, c.id)
    with pytest.raises(ValidationError) as info:
        assignments.release_assignment(world.session, actor=world.actor("unit_x"),
                                       assignment_id=c.id, reason="  ", now=NOW)
    assert "reason" in info.value.fields
    assert assignment_row(world, c.id).status == "approved"
    assert demand_row(world, "d_a1").quantity_confirmed == 3


def test_a_pending_claim_cannot_be_released(world):
    c = claim(world, "x", "d_a1", 1)
    with pytest.raises(IllegalTransitionError):
        assignments.release_assignment(world.session, actor=world.actor("unit_x"),
                                       assignment_id=c.id, reason="不做了", now=NOW)
    assert demand_row(world, "d_a1").quantity_open == 2


def test_another_unit_cannot_release_or_withdraw_a_claim(world):
    c = claim(world, "x", "d_a1", 1)
    with pytest.raises(NotFoundError):
        assignments.withdraw_claim(world.session, actor=world.actor("unit_y"),
                                   assignment_id=c.id, now=NOW)
    assert assignment_row(world, c.id).status == "pending"


def test_a_share_cannot_be_released_once_work_has_started(world):
    c = claim(world, "x", "d_a1", 3)
    approve(world, c.id)
    demands.start_work(world.session, actor=world.actor("unit_x"), demand_id=world["d_a1"], now=NOW)
    with pytest.raises(ConflictError):
        assignments.release_assignment(world.session, actor=world.actor("unit_x"),
                                       assignment_id=c.id, reason="人手不足", now=NOW)
    assert assignment_row(world, c.id).status == "approved"


def test_rejecting_a_claim_with_a_reason_reopens_its_quantity(world):
    c = claim(world, "x", "d_a1", 2)
    assignments.reject_claim(world.session, actor=world.actor("sec_a1"), assignment_id=c.id,
                             reason="已有单位在做", now=NOW)
    a = assignment_row(world, c.id)
    assert a.status == "rejected" and a.decided_at == NOW
    assert demand_row(world, "d_a1").quantity_open == 3
    assert resource_row(world, "r_x").quantity_remaining == 100


def test_a_rejection_needs_a_reason(world):
    c = claim(world, "x", "d_a1", 2)
    with pytest.raises(ValidationError) as info:
        assignments.reject_claim(world.session, actor=world.actor("sec_a1"), assignment_id=c.id,
                                 reason=None, now=NOW)
    assert "reason" in info.value.fields
    assert assignment_row(world, c.id).status == "pending"


# ---- approval ---------------------------------------------------------------------------------

def test_the_secretary_approves_a_claim_and_it_counts_as_coverage(world):
    c = claim(world, "x", "d_a1", 2)
    approve(world, c.id)
    a = assignment_row(world, c.id)
    assert a.status == "approved" and a.is_lead and a.decided_at == NOW
    d = demand_row(world, "d_a1")
    assert (d.quantity_open, d.quantity_confirmed, d.status) == (1, 2, "partly_covered")


def test_a_secretary_of_another_community_cannot_approve_a_claim(world):
    c = claim(world, "x", "d_a1", 2)
    for other in ("sec_a2", "sec_b1"):
        with pytest.raises(NotFoundError):
            approve(world, c.id, by=other)
    assert assignment_row(world, c.id).status == "pending"


def test_only_a_secretary_approves_claims_not_the_unit_or_the_subdistrict_admin(world):
    c = claim(world, "x", "d_a1", 2)
    for name in ("unit_x", "admin_a"):
        with pytest.raises(PermissionDeniedError):
            approve(world, c.id, by=name)
    with pytest.raises(NotFoundError):
        approve(world, c.id, by="grid_a1")
    assert assignment_row(world, c.id).status == "pending"
    assert demand_row(world, "d_a1").quantity_confirmed == 0


def test_a_claim_from_a_paired_unit_is_approved_automatically_when_the_community_says_so(world):
    set_community(world, "a1", auto_approve_paired_claims=True)
    pair(world, "x", "a1")
    c = claim(world, "x", "d_a1", 2)
    assert assignment_row(world, c.id).status == "approved"
    assert demand_row(world, "d_a1").status == "partly_covered"
    event = world.session.scalars(select(AuditEvent).where(
        AuditEvent.entity_type == "assignments", AuditEvent.entity_id == c.id,
        AuditEvent.to_status == "approved")).one()
    assert event.from_status == "pending" and "auto" in event.reason


def test_a_claim_from_a_paired_unit_waits_for_the_secretary_when_the_setting_is_off(world):
    pair(world, "x", "a1")
    c = claim(world, "x", "d_a1", 2)
    assert assignment_row(world, c.id).status == "pending"


def test_a_claim_from_an_unpaired_unit_waits_even_when_auto_approval_is_on(world):
    set_community(world, "a1", auto_approve_paired_claims=True)
    pair(world, "x", "a2")  # paired, but with another community
    c = claim(world, "x", "d_a1", 2)
    assert assignment_row(world, c.id).status == "pending"


def test_a_claim_is_not_auto_approved_once_the_pairing_has_ended(world):
    set_community(world, "a1", auto_approve_paired_claims=True)
    pairing = pair(world, "x", "a1")
    units.end_pairing(world.session, actor=world.actor("sec_a1"), pairing_id=pairing.id,
                      ends_on=date(2026, 10, 31), reason="协议到期", now=NOW)
    c = claim(world, "x", "d_a1", 2)
    assert assignment_row(world, c.id).status == "pending"


def test_a_claim_is_not_auto_approved_before_the_pairing_starts(world):
    set_community(world, "a1", auto_approve_paired_claims=True)
    pair(world, "x", "a1", starts_on=date(2027, 1, 1))
    c = claim(world, "x", "d_a1", 2)
    assert assignment_row(world, c.id).status == "pending"


# ---- illegal moves change nothing -------------------------------------------------------------

def test_approving_an_already_rejected_claim_is_illegal_and_changes_nothing(world):
    c = claim(world, "x", "d_a1", 2)
    assignments.reject_claim(world.session, actor=world.actor("sec_a1"), assignment_id=c.id,
                             reason="重复", now=NOW)
    before = audit_count(world)
    with pytest.raises(IllegalTransitionError) as info:
        approve(world, c.id)
    assert info.value.params == {"machine": "AssignmentStatus", "current": "rejected",
                                 "target": "approved"}
    assert assignment_row(world, c.id).status == "rejected"
    d = demand_row(world, "d_a1")
    assert (d.quantity_open, d.quantity_confirmed, d.status) == (3, 0, "open")
    assert audit_count(world) == before


def test_approving_a_claim_twice_is_illegal_and_counts_it_once(world):
    c = claim(world, "x", "d_a1", 2)
    approve(world, c.id)
    with pytest.raises(IllegalTransitionError):
        approve(world, c.id)
    assert demand_row(world, "d_a1").quantity_confirmed == 2


def test_a_dispatch_cannot_be_approved_like_a_claim(world):
    d = dispatch(world, "x", quantity=1)
    with pytest.raises(IllegalTransitionError):
        approve(world, d.id)
    assert assignment_row(world, d.id).status == "offered"
    assert demand_row(world, "d_a1").quantity_confirmed == 0


def test_a_pending_claim_cannot_be_accepted_like_a_dispatch(world):
    c = claim(world, "x", "d_a1", 1)
    with pytest.raises(IllegalTransitionError):
        assignments.accept_dispatch(world.session, actor=world.actor("unit_x"),
                                    assignment_id=c.id, now=NOW)
    assert assignment_row(world, c.id).status == "pending"
    assert demand_row(world, "d_a1").quantity_confirmed == 0


def test_a_rejected_claim_cannot_be_rejected_again_and_its_quantity_is_not_returned_twice(world):
    c = claim(world, "x", "d_a1", 2)
    assignments.reject_claim(world.session, actor=world.actor("sec_a1"), assignment_id=c.id,
                             reason="重复", now=NOW)
    with pytest.raises(IllegalTransitionError):
        assignments.reject_claim(world.session, actor=world.actor("sec_a1"), assignment_id=c.id,
                                 reason="再次", now=NOW)
    assert demand_row(world, "d_a1").quantity_open == 3
    assert resource_row(world, "r_x").quantity_remaining == 100


# ---- dispatch ---------------------------------------------------------------------------------

def test_a_dispatch_answers_by_the_communitys_response_deadline(world):
    d = dispatch(world, "x", quantity=2)
    assert d.status == "offered" and d.origin == "dispatch"
    assert d.response_deadline == NOW + timedelta(hours=24)
    set_community(world, "a1", dispatch_response_hours=6)
    d2 = dispatch(world, "y", quantity=1)
    assert d2.response_deadline == NOW + timedelta(hours=6)
    dd = demand_row(world, "d_a1")
    assert (dd.quantity_open, dd.quantity_confirmed, dd.status) == (0, 0, "open")


def test_a_dispatch_may_set_its_own_response_time(world):
    d = dispatch(world, "x", quantity=1, response_hours=2)
    assert d.response_deadline == NOW + timedelta(hours=2)


def test_accepting_a_dispatch_before_the_deadline_confirms_the_units_share(world):
    d = dispatch(world, "x", quantity=3)
    assignments.accept_dispatch(world.session, actor=world.actor("unit_x"), assignment_id=d.id,
                                now=NOW + timedelta(hours=23, minutes=59))
    a = assignment_row(world, d.id)
    assert a.status == "accepted" and a.is_lead
    dd = demand_row(world, "d_a1")
    assert (dd.quantity_confirmed, dd.status) == (3, "covered")


def test_accepting_a_dispatch_with_a_resource_takes_the_quantity_from_that_resource(world):
    d = dispatch(world, "x", quantity=2)
    assignments.accept_dispatch(world.session, actor=world.actor("unit_x"), assignment_id=d.id,
                                resource_id=world["r_x"], now=NOW)
    assert assignment_row(world, d.id).resource_id == world["r_x"]
    assert resource_row(world, "r_x").quantity_remaining == 98


def test_accepting_a_dispatch_after_its_deadline_is_a_conflict_and_changes_nothing(world):
    d = dispatch(world, "x", quantity=2)
    with pytest.raises(ConflictError):
        assignments.accept_dispatch(world.session, actor=world.actor("unit_x"),
                                    assignment_id=d.id, now=NOW + timedelta(hours=24, minutes=1))
    assert assignment_row(world, d.id).status == "offered"
    assert demand_row(world, "d_a1").quantity_confirmed == 0


def test_only_the_dispatched_units_admin_can_accept(world):
    d = dispatch(world, "x", quantity=1)
    with pytest.raises(NotFoundError):
        assignments.accept_dispatch(world.session, actor=world.actor("unit_y"),
                                    assignment_id=d.id, now=NOW)
    with pytest.raises(PermissionDeniedError):
        assignments.accept_dispatch(world.session, actor=world.actor("sec_a1"),
                                    assignment_id=d.id, now=NOW)
    assert assignment_row(world, d.id).status == "offered"


def test_declining_a_dispatch_needs_a_reason(world):
    d = dispatch(world, "x", quantity=2)
    with pytest.raises(ValidationError) as info:
        assignments.decline_dispatch(world.session, actor=world.actor("unit_x"),
                                     assignment_id=d.id, reason="", now=NOW)
    assert "reason" in info.value.fields
    assert assignment_row(world, d.id).status == "offered"
    assert demand_row(world, "d_a1").quantity_open == 1


def test_declining_a_dispatch_with_a_reason_reopens_its_quantity(world):
    d = dispatch(world, "x", quantity=2)
    assignments.decline_dispatch(world.session, actor=world.actor("unit_x"), assignment_id=d.id,
                                 reason="本周无人", now=NOW)
    assert assignment_row(world, d.id).status == "declined"
    assert demand_row(world, "d_a1").quantity_open == 3


def test_the_secretary_recalls_a_dispatch_with_a_reason_and_its_quantity_reopens(world):
    d = dispatch(world, "x", quantity=2)
    with pytest.raises(ValidationError):
        assignments.recall_assignment(world.session, actor=world.actor("sec_a1"),
                                      assignment_id=d.id, reason=None, now=NOW)
    assignments.recall_assignment(world.session, actor=world.actor("sec_a1"), assignment_id=d.id,
                                  reason="改派他人", now=NOW)
    assert assignment_row(world, d.id).status == "recalled"
    assert demand_row(world, "d_a1").quantity_open == 3


def test_the_unit_cannot_recall_its_own_dispatch(world):
    d = dispatch(world, "x", quantity=2)
    with pytest.raises(PermissionDeniedError):
        assignments.recall_assignment(world.session, actor=world.actor("unit_x"),
                                      assignment_id=d.id, reason="x", now=NOW)
    assert assignment_row(world, d.id).status == "offered"


def test_a_declined_dispatch_cannot_be_accepted_afterwards(world):
    d = dispatch(world, "x", quantity=2)
    assignments.decline_dispatch(world.session, actor=world.actor("unit_x"), assignment_id=d.id,
                                 reason="本周无人", now=NOW)
    with pytest.raises(IllegalTransitionError):
        assignments.accept_dispatch(world.session, actor=world.actor("unit_x"),
                                    assignment_id=d.id, now=NOW)
    assert demand_row(world, "d_a1").quantity_confirmed == 0


def test_only_the_communitys_secretary_dispatches(world):
    with pytest.raises(PermissionDeniedError):
        dispatch(world, "x", by="grid_a1")
    with pytest.raises(NotFoundError):
        dispatch(world, "x", by="sec_a2")
    assert demand_row(world, "d_a1").quantity_open == 3


def test_a_dispatch_cannot_take_more_than_the_demand_needs(world):
    claim(world, "y", "d_a1", 2)
    with pytest.raises(ConflictError):
        dispatch(world, "x", quantity=2)
    assert demand_row(world, "d_a1").quantity_open == 1


def test_a_unit_holding_a_claim_cannot_also_be_dispatched_the_same_demand(world):
    claim(world, "x", "d_a1", 1)
    with pytest.raises(ConflictError):
        dispatch(world, "x", quantity=1)
    assert demand_row(world, "d_a1").quantity_open == 2


def test_a_suspended_unit_cannot_be_dispatched(world):
    units.suspend_unit(world.session, actor=world.actor("admin_a"), unit_id=world["x"],
                       reason="整改", now=NOW)
    with pytest.raises(ConflictError):
        dispatch(world, "x", quantity=1)
    assert demand_row(world, "d_a1").quantity_open == 3


# ---- the audit trail --------------------------------------------------------------------------

def test_every_step_of_a_claim_is_written_with_who_from_to_and_why(world):
    c = claim(world, "x", "d_a1", 3)
    approve(world, c.id)
    assignments.release_assignment(world.session, actor=world.actor("unit_x"),
                                   assignment_id=c.id, reason="人手不足", now=NOW)
    events = demands.history(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"])
    steps = [(e.entity_type, e.action, e.from_status, e.to_status, e.actor_id, e.reason)
             for e in events if e.entity_type == "assignments" or e.action == "coverage"]
    ux, sec = world.users["unit_x"], world.users["sec_a1"]
    assert steps == [
        ("assignments", "claimed", None, "pending", ux, None),
        ("assignments", "approved", "pending", "approved", sec, None),
        ("demand_items", "coverage", "open", "covered", sec, None),
        ("assignments", "lead_assigned", None, None, sec, None),
        ("assignments", "released", "approved", "released", ux, "人手不足"),
        ("demand_items", "coverage", "covered", "open", ux, None),
    ]
    assert all(e.created_at == NOW for e in events)


def test_every_dispatch_step_is_in_the_demands_history(world):
    d1 = dispatch(world, "x", quantity=1)
    d2 = dispatch(world, "y", quantity=1)
    assignments.decline_dispatch(world.session, actor=world.actor("unit_x"), assignment_id=d1.id,
                                 reason="本周无人", now=NOW)
    assignments.recall_assignment(world.session, actor=world.actor("sec_a1"), assignment_id=d2.id,
                                  reason="改派", now=NOW)
    events = demands.history(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"])
    moves = {(e.entity_id, e.action, e.from_status, e.to_status, e.reason) for e in events
             if e.entity_type == "assignments"}
    assert (d1.id, "dispatched", None, "offered", None) in moves
    assert (d1.id, "declined", "offered", "declined", "本周无人") in moves
    assert (d2.id, "recalled", "offered", "recalled", "改派") in moves


def test_the_history_of_a_demand_is_hidden_from_people_outside_its_scope(world):
    with pytest.raises(NotFoundError):
        demands.history(world.session, actor=world.actor("sec_b1"), demand_id=world["d_a1"])


def test_the_history_is_oldest_first(world):
    claim(world, "x", "d_a1", 1)
    events = demands.history(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"])
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert [e.action for e in events][:2] == ["created", "published"]


def test_quantities_never_go_below_zero_after_many_claims_and_releases(world):
    for _ in range(3):
        c = claim(world, "x", "d_a1", 3)
        approve(world, c.id)
        assignments.release_assignment(world.session, actor=world.actor("unit_x"),
                                       assignment_id=c.id, reason="再来", now=NOW)
    d = demand_row(world, "d_a1")
    assert (d.quantity_open, d.quantity_confirmed, d.status) == (3, 0, "open")
    assert resource_row(world, "r_x").quantity_remaining == 100


def test_cancelling_a_demand_cancels_its_open_claims_and_dispatches_and_frees_their_quantity(world):
    pending = claim(world, "x", "d_a1", 1)
    approved = claim(world, "y", "d_a1", 1)
    approve(world, approved.id)
    z_resource = make_resource(world.session, world, "z", "unit_z", ["a1"])
    offered = dispatch(world, "z", quantity=1, resource_id=z_resource)
    demands.cancel_demand(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"],
                          reason="老人已搬走", now=NOW)
    for a in (pending, approved, offered):
        row = assignment_row(world, a.id)
        assert (row.status, row.active_demand_id, row.is_lead) == ("cancelled", None, False)
    d = demand_row(world, "d_a1")
    assert (d.status, d.quantity_open, d.quantity_confirmed) == ("cancelled", 3, 0)
    assert resource_row(world, "r_x").quantity_remaining == 100
    assert resource_row(world, "r_y").quantity_remaining == 100
    assert resource_row(world, z_resource).quantity_remaining == 100
    cancelled = [e for e in demands.history(world.session, actor=world.actor("sec_a1"),
                                            demand_id=world["d_a1"]) if e.to_status == "cancelled"]
    assert {e.reason for e in cancelled} == {"老人已搬走"} and len(cancelled) == 4
