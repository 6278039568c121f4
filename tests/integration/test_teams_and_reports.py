"""1+N teams, work reports, verification into service records, and the beneficiary's confirmation."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW
from tests.factories import claim, make_demand
from web.errors import (
    ConflictError,
    IllegalTransitionError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from web.models import Assignment, AuditEvent, DemandItem, ResourceItem, ServiceRecord, WorkReport
from web.services import assignments, demands, reports
from web.services.reports import service_record_id

pytestmark = pytest.mark.db

TODAY = date(2026, 11, 20)  # NOW's day in Asia/Shanghai


# ---- helpers ----------------------------------------------------------------------------------

def demand_row(world, key="d_a1") -> DemandItem:
    row = world.session.get(DemandItem, world[key])
    world.session.refresh(row)
    return row


def assignment_row(world, assignment_id: int) -> Assignment:
    row = world.session.get(Assignment, assignment_id)
    world.session.refresh(row)
    return row


def approve(world, assignment_id: int, now: datetime = NOW):
    return assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                                     assignment_id=assignment_id, now=now)


def release(world, unit: str, assignment_id: int):
    return assignments.release_assignment(world.session, actor=world.actor(f"unit_{unit}"),
                                          assignment_id=assignment_id, reason="另有任务", now=NOW)


def team(world, *shares: tuple[str, int]) -> dict[str, int]:
    """Claims for each (unit, quantity) on d_a1, approved in that order; {unit: assignment id}."""
    ids = {}
    for unit, quantity in shares:
        ids[unit] = claim(world, unit, "d_a1", quantity).id
        approve(world, ids[unit])
    return ids


def lead_unit(world) -> int | None:
    lead = demands.lead_assignment(world.session, world["d_a1"])
    return lead.unit_id if lead else None


VOLUNTEERS = [{"name": "张三", "phone": "13500000000", "minutes": 90}]


def submit(world, by: str = "unit_x", volunteers=None, started_on=date(2026, 11, 18),
           ended_on=date(2026, 11, 19), now: datetime = NOW, **extra) -> WorkReport:
    return reports.submit_report(world.session, actor=world.actor(by), demand_id=world["d_a1"],
                                 started_on=started_on, ended_on=ended_on,
                                 volunteers=volunteers if volunteers is not None else VOLUNTEERS,
                                 beneficiaries_served=extra.pop("beneficiaries_served", 1),
                                 value_fen=extra.pop("value_fen", 15000), now=now, **extra)


def verify(world, report_id: int, by: str = "sec_a1"):
    return reports.verify_report(world.session, actor=world.actor(by), report_id=report_id,
                                 now=NOW)


def records(world) -> list[ServiceRecord]:
    return list(world.session.scalars(select(ServiceRecord).order_by(ServiceRecord.minutes)))


def reported(world) -> WorkReport:
    """d_a1 covered by unit x alone, with a submitted report of two volunteers."""
    team(world, ("x", 3))
    return submit(world, volunteers=[
        {"user_id": world.users["res_a1"], "minutes": 150},
        {"name": "张三", "phone": "13500000000", "minutes": 60}])


def confirm(world, by: str, rating: int = 5, comment: str | None = "很好"):
    return demands.confirm_demand(world.session, actor=world.actor(by), demand_id=world["d_a1"],
                                  rating=rating, comment=comment, now=NOW)


# ---- teams (1+1, 1+N) -------------------------------------------------------------------------

def test_two_units_share_one_demand_and_both_count_as_its_team(world):
    team(world, ("x", 1), ("y", 2))
    d = demand_row(world)
    assert (d.quantity_confirmed, d.quantity_open, d.status) == (3, 0, "covered")
    assert {u.id for u in demands.units_on(world.session, world["d_a1"])} == {world["x"], world["y"]}


def test_the_first_confirmed_unit_leads_the_team(world):
    ids = team(world, ("y", 2), ("x", 1))
    assert assignment_row(world, ids["y"]).is_lead
    assert not assignment_row(world, ids["x"]).is_lead
    assert lead_unit(world) == world["y"]


def test_the_first_confirmed_unit_leads_even_if_it_claimed_second(world):
    first_claim = claim(world, "x", "d_a1", 1)
    second_claim = claim(world, "y", "d_a1", 2)
    approve(world, second_claim.id)
    approve(world, first_claim.id, now=NOW + timedelta(minutes=5))
    assert lead_unit(world) == world["y"]


def test_a_team_can_mix_a_claim_and_an_accepted_dispatch(world):
    approve(world, claim(world, "x", "d_a1", 1).id)
    offer = assignments.dispatch_demand(world.session, actor=world.actor("sec_a1"),
                                        demand_id=world["d_a1"], unit_id=world["y"], quantity=2,
                                        now=NOW)
    assignments.accept_dispatch(world.session, actor=world.actor("unit_y"),
                                assignment_id=offer.id, now=NOW)
    assert demand_row(world).status == "covered"
    assert lead_unit(world) == world["x"]


def test_the_secretary_names_another_lead(world):
    ids = team(world, ("x", 1), ("y", 2))
    demands.set_lead(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"],
                     assignment_id=ids["y"], now=NOW)
    assert assignment_row(world, ids["y"]).is_lead
    assert not assignment_row(world, ids["x"]).is_lead
    event = world.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "lead_assigned", AuditEvent.entity_id == ids["y"])).one()
    assert event.actor_id == world.users["sec_a1"]


def test_only_the_secretary_names_the_lead(world):
    ids = team(world, ("x", 1), ("y", 2))
    with pytest.raises(PermissionDeniedError):
        demands.set_lead(world.session, actor=world.actor("unit_y"), demand_id=world["d_a1"],
                         assignment_id=ids["y"], now=NOW)
    assert lead_unit(world) == world["x"]


def test_the_lead_must_be_a_confirmed_unit_of_the_demand(world):
    approve(world, claim(world, "x", "d_a1", 1).id)
    pending = claim(world, "y", "d_a1", 1)
    with pytest.raises(ValidationError) as info:
        demands.set_lead(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"],
                         assignment_id=pending.id, now=NOW)
    assert "assignment_id" in info.value.fields
    assert lead_unit(world) == world["x"]


def test_when_the_lead_leaves_the_lead_passes_to_the_next_confirmed_unit(world):
    ids = team(world, ("x", 1), ("y", 2))
    release(world, "x", ids["x"])
    assert lead_unit(world) == world["y"]
    assert assignment_row(world, ids["y"]).is_lead


def test_when_the_last_unit_leaves_there_is_no_lead(world):
    ids = team(world, ("x", 3))
    release(world, "x", ids["x"])
    assert lead_unit(world) is None


def test_coverage_rolls_up_from_open_to_partly_covered_to_covered_and_back(world):
    seen = [demand_row(world).status]
    cx, cy = claim(world, "x", "d_a1", 1), claim(world, "y", "d_a1", 2)
    seen.append(demand_row(world).status)  # pending claims do not count
    approve(world, cx.id)
    seen.append(demand_row(world).status)
    approve(world, cy.id)
    seen.append(demand_row(world).status)
    release(world, "y", cy.id)
    seen.append(demand_row(world).status)
    release(world, "x", cx.id)
    seen.append(demand_row(world).status)
    assert seen == ["open", "open", "partly_covered", "covered", "partly_covered", "open"]


def test_raising_the_quantity_needed_turns_a_covered_demand_partly_covered(world):
    team(world, ("x", 3))
    demands.update_demand(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"],
                          changes={"quantity_needed": 5}, now=NOW)
    d = demand_row(world)
    assert (d.quantity_needed, d.quantity_open, d.status) == (5, 2, "partly_covered")


def test_the_quantity_needed_cannot_drop_below_what_units_hold(world):
    team(world, ("x", 2))
    with pytest.raises(ValidationError) as info:
        demands.update_demand(world.session, actor=world.actor("sec_a1"),
                              demand_id=world["d_a1"], changes={"quantity_needed": 1}, now=NOW)
    assert "quantity_needed" in info.value.fields
    assert demand_row(world).quantity_needed == 3


def test_only_the_lead_unit_starts_the_work(world):
    team(world, ("x", 1), ("y", 2))
    with pytest.raises(PermissionDeniedError):
        demands.start_work(world.session, actor=world.actor("unit_y"), demand_id=world["d_a1"],
                           now=NOW)
    demands.start_work(world.session, actor=world.actor("unit_x"), demand_id=world["d_a1"],
                       now=NOW)
    assert demand_row(world).status == "in_progress"


def test_starting_work_cancels_a_pending_claim_which_can_then_not_be_approved(world):
    team(world, ("x", 2))
    late = claim(world, "y", "d_a1", 1)
    resource_before = world.session.get(ResourceItem, world["r_y"]).quantity_remaining
    demands.start_work(world.session, actor=world.actor("unit_x"), demand_id=world["d_a1"],
                       now=NOW)
    assert assignment_row(world, late.id).status == "cancelled"
    assert world.session.get(ResourceItem, world["r_y"]).quantity_remaining == resource_before + 1
    with pytest.raises(ConflictError):
        approve(world, late.id)
    assert assignment_row(world, late.id).status == "cancelled"
    assert demand_row(world).quantity_confirmed == 2
    assert demand_row(world).quantity_confirmed == 2


def test_starting_work_cancels_an_offered_dispatch_which_can_then_not_be_accepted(world):
    team(world, ("x", 2))
    offer = assignments.dispatch_demand(world.session, actor=world.actor("sec_a1"),
                                        demand_id=world["d_a1"], unit_id=world["y"], quantity=1,
                                        now=NOW)
    demands.start_work(world.session, actor=world.actor("unit_x"), demand_id=world["d_a1"],
                       now=NOW)
    assert assignment_row(world, offer.id).status == "cancelled"
    with pytest.raises(ConflictError):
        assignments.accept_dispatch(world.session, actor=world.actor("unit_y"),
                                    assignment_id=offer.id, now=NOW)
    assert assignment_row(world, offer.id).status == "cancelled"
    assert demand_row(world).quantity_confirmed == 2


# ---- work reports -----------------------------------------------------------------------------

def test_the_lead_unit_reports_for_the_team_and_the_demand_becomes_reported(world):
    team(world, ("x", 1), ("y", 2))
    report = submit(world)
    assert report.status == "submitted" and report.unit_id == world["x"]
    assert demand_row(world).status == "reported"


def test_a_helper_unit_cannot_report(world):
    team(world, ("x", 1), ("y", 2))
    with pytest.raises(PermissionDeniedError):
        submit(world, by="unit_y")
    assert demand_row(world).status == "covered"
    assert world.session.scalar(select(func.count()).select_from(WorkReport)) == 0


def test_neither_the_secretary_nor_an_unconfirmed_unit_can_report(world):
    claim(world, "x", "d_a1", 3)  # pending: no lead yet
    for name in ("unit_x", "sec_a1"):
        with pytest.raises(PermissionDeniedError):
            submit(world, by=name)
    assert demand_row(world).status == "open"


def test_a_volunteer_is_either_a_user_or_a_name_and_a_phone(world):
    team(world, ("x", 3))
    report = submit(world, volunteers=[
        {"user_id": world.users["res_a1"], "minutes": 150},
        {"name": " 张三 ", "phone": "13500000000", "minutes": 60}])
    by_user, by_name = report.volunteers
    assert by_user.user_id == world.users["res_a1"]
    assert by_user.name == "res_a1" and by_user.phone == "13800000000"
    assert (by_name.user_id, by_name.name, by_name.phone) == (None, "张三", "13500000000")
    assert [v.minutes for v in report.volunteers] == [150, 60]


def test_a_volunteer_without_an_account_needs_a_phone(world):
    team(world, ("x", 3))
    with pytest.raises(ValidationError) as info:
        submit(world, volunteers=[{"name": "张三", "minutes": 60}])
    assert "volunteers.0" in info.value.fields
    assert demand_row(world).status == "covered"


def test_a_volunteer_line_needs_positive_minutes(world):
    team(world, ("x", 3))
    with pytest.raises(ValidationError) as info:
        submit(world, volunteers=[VOLUNTEERS[0], {"name": "李四", "phone": "1", "minutes": 0}])
    assert "volunteers.1.hours" in info.value.fields


def test_a_volunteer_who_is_no_user_is_refused(world):
    team(world, ("x", 3))
    with pytest.raises(ValidationError) as info:
        submit(world, volunteers=[{"user_id": 999_999, "minutes": 60}])
    assert "volunteers.0.user_id" in info.value.fields


def test_a_report_needs_at_least_one_volunteer(world):
    team(world, ("x", 3))
    with pytest.raises(ValidationError) as info:
        submit(world, volunteers=[])
    assert "volunteers" in info.value.fields


def test_a_report_ending_in_the_future_is_refused(world):
    team(world, ("x", 3))
    with pytest.raises(ValidationError) as info:
        submit(world, started_on=TODAY, ended_on=TODAY + timedelta(days=1))
    assert "ended_on" in info.value.fields
    assert demand_row(world).status == "covered"


def test_a_report_may_end_today_in_beijing_even_when_it_is_still_yesterday_in_utc(world):
    team(world, ("x", 3))
    late_evening_utc = datetime.fromisoformat("2026-11-20T17:30:00+00:00")  # 01:30 on the 21st
    report = submit(world, started_on=date(2026, 11, 21), ended_on=date(2026, 11, 21),
                    now=late_evening_utc)
    assert report.ended_on == date(2026, 11, 21)


def test_a_report_ending_before_it_starts_is_refused(world):
    team(world, ("x", 3))
    with pytest.raises(ValidationError) as info:
        submit(world, started_on=date(2026, 11, 19), ended_on=date(2026, 11, 18))
    assert "ended_on" in info.value.fields


def test_negative_beneficiaries_or_value_are_refused(world):
    team(world, ("x", 3))
    with pytest.raises(ValidationError) as info:
        submit(world, beneficiaries_served=-1)
    assert "beneficiaries_served" in info.value.fields
    with pytest.raises(ValidationError) as info:
        submit(world, value_fen=-1)
    assert "value_fen" in info.value.fields


def test_a_second_report_cannot_be_submitted_while_one_waits(world):
    reported(world)
    with pytest.raises(ConflictError):
        submit(world)
    assert world.session.scalar(select(func.count()).select_from(WorkReport)) == 1


def test_a_returned_report_sends_the_demand_back_to_in_progress_and_the_lead_reports_again(world):
    first = reported(world)
    reports.return_report(world.session, actor=world.actor("sec_a1"), report_id=first.id,
                          reason="时长有误", now=NOW)
    world.session.refresh(first)
    assert (first.status, first.return_reason) == ("returned", "时长有误")
    assert demand_row(world).status == "in_progress"
    second = submit(world)
    assert second.id != first.id and second.status == "submitted"
    assert demand_row(world).status == "reported"


def test_returning_a_report_needs_a_reason(world):
    report = reported(world)
    with pytest.raises(ValidationError) as info:
        reports.return_report(world.session, actor=world.actor("sec_a1"), report_id=report.id,
                              reason=" ", now=NOW)
    assert "reason" in info.value.fields
    assert demand_row(world).status == "reported"


def test_a_returned_report_cannot_be_verified(world):
    report = reported(world)
    reports.return_report(world.session, actor=world.actor("sec_a1"), report_id=report.id,
                          reason="时长有误", now=NOW)
    with pytest.raises(IllegalTransitionError):
        verify(world, report.id)
    assert records(world) == []


# ---- verification and service records ---------------------------------------------------------

def test_verifying_a_report_creates_one_service_record_per_volunteer_line(world):
    report = reported(world)
    verify(world, report.id)
    world.session.refresh(report)
    assert report.status == "verified" and report.decided_by == world.users["sec_a1"]
    found = records(world)
    assert len(found) == 2
    lines = {v.id: v for v in report.volunteers}
    for record in found:
        line = lines[record.report_volunteer_id]
        assert record.id == service_record_id(line.id)
        assert (record.user_id, record.name, record.minutes) == (line.user_id, line.name,
                                                                 line.minutes)
        assert (record.demand_id, record.unit_id, record.report_id) == (
            world["d_a1"], world["x"], report.id)
        assert record.community_id == world["a1"]
        assert record.served_on == report.ended_on
        assert record.verified_by == world.users["sec_a1"]
    assert [r.minutes for r in found] == [60, 150]
    assert demand_row(world).status == "verified"


def test_a_service_records_id_is_stable_for_its_report_line(world):
    assert service_record_id(42) == service_record_id(42)
    assert service_record_id(42) != service_record_id(43)


def test_verifying_twice_is_a_conflict_and_writes_no_duplicate_records(world):
    report = reported(world)
    verify(world, report.id)
    before = [r.id for r in records(world)]
    with pytest.raises(IllegalTransitionError):
        verify(world, report.id)
    assert [r.id for r in records(world)] == before
    assert len(before) == 2


def test_verification_completes_every_confirmed_share_of_the_team(world):
    ids = team(world, ("x", 1), ("y", 2))
    verify(world, submit(world).id)
    for assignment_id in ids.values():
        a = assignment_row(world, assignment_id)
        assert a.status == "completed" and a.active_demand_id is None


def test_only_the_communitys_secretary_verifies(world):
    report = reported(world)
    with pytest.raises(PermissionDeniedError):
        verify(world, report.id, by="unit_x")
    with pytest.raises(NotFoundError):
        verify(world, report.id, by="sec_a2")
    assert records(world) == []
    assert demand_row(world).status == "reported"


# ---- confirmation -----------------------------------------------------------------------------

def verified(world):
    verify(world, reported(world).id)


def test_the_beneficiary_confirms_and_rates_the_work_and_the_demand_closes(world):
    verified(world)
    confirm(world, "res_a1", rating=4, comment="及时")
    d = demand_row(world)
    assert (d.status, d.rating, d.rating_comment) == ("closed", 4, "及时")
    assert d.rated_by == world.users["res_a1"] and d.rated_at == NOW


def test_the_grid_worker_confirms_on_the_beneficiarys_behalf(world):
    verified(world)
    confirm(world, "grid_a1", rating=5)
    assert demand_row(world).status == "closed"
    event = world.session.scalars(select(AuditEvent).where(
        AuditEvent.demand_id == world["d_a1"], AuditEvent.to_status == "closed")).one()
    assert event.actor_id == world.users["grid_a1"]
    assert json.loads(event.data)["on_behalf"] is True


@pytest.mark.parametrize("rating", [0, 6, -1])
def test_a_rating_outside_one_to_five_is_refused(world, rating):
    verified(world)
    with pytest.raises(ValidationError) as info:
        confirm(world, "res_a1", rating=rating)
    assert "rating" in info.value.fields
    assert demand_row(world).status == "verified"


def test_people_other_than_the_beneficiary_and_their_grid_worker_cannot_confirm(world):
    verified(world)
    for name in ("sec_a1", "unit_x", "admin_a"):
        with pytest.raises(PermissionDeniedError):
            confirm(world, name)
    for name in ("res_b1", "grid_b1"):
        with pytest.raises(NotFoundError):
            confirm(world, name)
    assert demand_row(world).status == "verified"


def test_work_cannot_be_confirmed_before_the_secretary_verifies_it(world):
    reported(world)
    with pytest.raises(IllegalTransitionError):
        confirm(world, "res_a1")
    d = demand_row(world)
    assert d.status == "reported" and d.rating is None


def test_a_closed_demand_cannot_be_confirmed_again(world):
    verified(world)
    confirm(world, "res_a1", rating=5)
    with pytest.raises(IllegalTransitionError):
        confirm(world, "res_a1", rating=1)
    assert demand_row(world).rating == 5


# ---- the whole history ------------------------------------------------------------------------

def test_the_demands_history_records_every_move_from_publication_to_closure(world):
    ids = team(world, ("x", 3))
    first = submit(world)
    reports.return_report(world.session, actor=world.actor("sec_a1"), report_id=first.id,
                          reason="缺照片", now=NOW)
    second = submit(world)
    verify(world, second.id)
    confirm(world, "res_a1", rating=5)
    events = demands.history(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"])
    demand_moves = [(e.from_status, e.to_status) for e in events
                    if e.entity_type == "demand_items" and e.to_status]
    assert demand_moves == [
        (None, "draft"), ("draft", "open"), ("open", "covered"), ("covered", "reported"),
        ("reported", "in_progress"), ("in_progress", "reported"), ("reported", "verified"),
        ("verified", "closed")]
    report_moves = [(e.entity_id, e.from_status, e.to_status, e.reason) for e in events
                    if e.entity_type == "work_reports"]
    assert report_moves == [
        (first.id, None, "submitted", None), (first.id, "submitted", "returned", "缺照片"),
        (second.id, None, "submitted", None), (second.id, "submitted", "verified", None)]
    assert (ids["x"], "approved", "completed") in {
        (e.entity_id, e.from_status, e.to_status) for e in events
        if e.entity_type == "assignments"}
    by_actor = {e.to_status: e.actor_id for e in events if e.entity_type == "demand_items"}
    assert by_actor["closed"] == world.users["res_a1"]
    assert by_actor["verified"] == world.users["sec_a1"]
    assert by_actor["reported"] == world.users["unit_x"]


def test_a_refused_move_writes_no_audit_event(world):
    report = reported(world)
    verify(world, report.id)
    count = world.session.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(IllegalTransitionError):
        verify(world, report.id)
    with pytest.raises(IllegalTransitionError):
        reports.return_report(world.session, actor=world.actor("sec_a1"), report_id=report.id,
                              reason="晚了", now=NOW)
    assert world.session.scalar(select(func.count()).select_from(AuditEvent)) == count


def test_the_beneficiary_can_read_the_history_of_their_own_demand(world):
    other = make_demand(world.session, world, "a1", "sec_a1")
    assert demands.history(world.session, actor=world.actor("res_a1"), demand_id=world["d_a1"])
    with pytest.raises(NotFoundError):
        demands.history(world.session, actor=world.actor("res_a1"), demand_id=other)
