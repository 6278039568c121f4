"""Service levels with a frozen clock: due times on publication (plain time and working days,
holidays and make-up days), accepted_at and verified_at, red/amber/green in Python and in SQL,
pausing and resuming, escalation grid → community → subdistrict, dispatches not answered in
time, automatic confirmation, and work rated unsatisfactory — each job at its deadline exactly,
one second either side, paused, resumed, and run twice."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW
from tests.factories import claim, make_demand
from web.domain.actor import SYSTEM
from web.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from web.models import (
    Assignment,
    AuditEvent,
    CalendarDay,
    DemandItem,
    Notification,
    ResourceItem,
)
from web.services import assignments, demands, places, reports, service_levels

pytestmark = pytest.mark.db

HOUR, SECOND, DAY = timedelta(hours=1), timedelta(seconds=1), timedelta(days=1)
VOLUNTEERS = [{"name": "张三", "phone": "13500000000", "minutes": 90}]


# ---- helpers ----------------------------------------------------------------------------------

def item(world, key_or_id="d_a1") -> DemandItem:
    ident = world[key_or_id] if isinstance(key_or_id, str) else key_or_id
    row = world.session.get(DemandItem, ident)
    world.session.refresh(row)
    return row


def shanghai(text: str) -> datetime:
    return datetime.fromisoformat(text + "+08:00")


def settings(world, community: str = "a1", **changes) -> None:
    places.update_community_settings(world.session, actor=SYSTEM, community_id=world[community],
                                     changes=changes)


def holiday(world, day: date, worked: bool = False) -> None:
    world.session.add(CalendarDay(day=day, is_workday=worked, name="测试"))
    world.session.commit()


def published(world, when: datetime, community: str = "a1", secretary: str = "sec_a1",
              grid: str | None = "g_a1", **extra) -> int:
    """A new item of the community, published at `when`."""
    demand_id = make_demand(world.session, world, community, secretary, grid=grid,
                            publish=False, **extra)
    demands.publish_demand(world.session, actor=world.actor(secretary), demand_id=demand_id,
                           now=when)
    return demand_id


def accept(world, demand="d_a1", when: datetime = NOW, quantity: int = 1):
    """Unit x claims the item and the secretary approves the claim at `when`."""
    share = assignments.claim_demand(
        world.session, actor=world.actor("unit_x"), unit_id=world["x"],
        demand_id=world[demand] if isinstance(demand, str) else demand,
        resource_id=world["r_x"], quantity=quantity, now=NOW)
    return assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                                     assignment_id=share.id, now=when)


def verified(world, when: datetime = NOW + HOUR) -> None:
    """d_a1 taken on by unit x alone, reported and verified at `when`."""
    accept(world, when=when, quantity=3)
    report = reports.submit_report(
        world.session, actor=world.actor("unit_x"), demand_id=world["d_a1"],
        started_on=date(2026, 11, 18), ended_on=date(2026, 11, 19), volunteers=VOLUNTEERS,
        beneficiaries_served=1, value_fen=1000, now=when)
    reports.verify_report(world.session, actor=world.actor("sec_a1"), report_id=report.id,
                          now=when)


def check(world, when: datetime) -> dict:
    return service_levels.check_service_levels(world.session, now=when)


def pause(world, when: datetime, by: str = "sec_a1", demand="d_a1", reason="等居民出院"):
    ident = world[demand] if isinstance(demand, str) else demand
    return service_levels.pause_demand(world.session, actor=world.actor(by), demand_id=ident,
                                       reason=reason, now=when)


def resume(world, when: datetime, by: str = "sec_a1", demand="d_a1"):
    ident = world[demand] if isinstance(demand, str) else demand
    return service_levels.resume_demand(world.session, actor=world.actor(by), demand_id=ident,
                                        now=when)


def told(world, kind: str, demand_id: int | None = None) -> list[int]:
    """The users who received a notification of `kind` (about `demand_id`), sorted."""
    stmt = select(Notification.user_id).where(Notification.kind == kind)
    if demand_id is not None:
        stmt = stmt.where(Notification.demand_id == demand_id)
    return sorted(world.session.scalars(stmt))


def users(world, *names: str) -> list[int]:
    return sorted(world.users[n] for n in names)


def events(world, demand_id: int, action: str) -> list[AuditEvent]:
    return list(world.session.scalars(select(AuditEvent).where(
        AuditEvent.demand_id == demand_id, AuditEvent.action == action).order_by(AuditEvent.id)))


def counts(world) -> tuple:
    """Everything a job can change: events, notifications, and each item's level and status."""
    s = world.session
    return (s.scalar(select(func.count()).select_from(AuditEvent)),
            s.scalar(select(func.count()).select_from(Notification)),
            sorted(s.execute(select(DemandItem.id, DemandItem.escalation_level,
                                    DemandItem.status)).all()))


# ---- due times --------------------------------------------------------------------------------

def test_publishing_starts_the_clocks_by_the_communitys_windows(world):
    d = item(world)
    assert d.published_at == NOW
    assert d.accept_due_at == NOW + 24 * HOUR
    assert d.close_due_at == NOW + 3 * DAY


def test_a_draft_has_no_due_times(world):
    draft = make_demand(world.session, world, "a1", "sec_a1", publish=False)
    d = item(world, draft)
    assert (d.published_at, d.accept_due_at, d.close_due_at) == (None, None, None)
    assert service_levels.sla_state(d, NOW) is None


def test_the_communitys_own_windows_set_the_due_times(world):
    settings(world, accept_within_hours=8, close_within_days=5)
    d = item(world, published(world, NOW))
    assert d.accept_due_at == NOW + 8 * HOUR and d.close_due_at == NOW + 5 * DAY


def test_on_working_days_the_due_times_skip_the_weekend(world):
    settings(world, sla_working_days=True)
    d = item(world, published(world, NOW))  # Friday 10:00 in Shanghai
    assert d.accept_due_at == shanghai("2026-11-23T10:00")  # Monday
    assert d.close_due_at == shanghai("2026-11-25T10:00")  # Wednesday: 14 h + 24 h + 24 h + 10 h


def test_on_working_days_a_public_holiday_is_skipped(world):
    settings(world, sla_working_days=True)
    holiday(world, date(2026, 11, 23))
    d = item(world, published(world, NOW))
    assert d.accept_due_at == shanghai("2026-11-24T10:00")


def test_on_working_days_a_make_up_saturday_counts(world):
    settings(world, sla_working_days=True)
    holiday(world, date(2026, 11, 21), worked=True)
    d = item(world, published(world, NOW))
    assert d.accept_due_at == shanghai("2026-11-21T10:00")


def test_in_calendar_mode_holidays_do_not_move_the_due_times(world):
    holiday(world, date(2026, 11, 20))
    d = item(world, published(world, NOW))
    assert d.accept_due_at == NOW + 24 * HOUR


def test_the_first_unit_taken_on_sets_accepted_at_and_later_ones_do_not(world):
    accept(world, when=NOW + 2 * HOUR)
    share = claim(world, "y", "d_a1", 1)
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"), assignment_id=share.id,
                              now=NOW + 5 * HOUR)
    assert item(world).accepted_at == NOW + 2 * HOUR


def test_a_pending_claim_does_not_count_as_accepted(world):
    claim(world, "x", "d_a1", 1)
    assert item(world).accepted_at is None


def test_an_accepted_dispatch_sets_accepted_at(world):
    offer = assignments.dispatch_demand(world.session, actor=world.actor("sec_a1"),
                                        demand_id=world["d_a1"], unit_id=world["x"], quantity=1,
                                        now=NOW)
    assignments.accept_dispatch(world.session, actor=world.actor("unit_x"),
                                assignment_id=offer.id, now=NOW + 3 * HOUR)
    assert item(world).accepted_at == NOW + 3 * HOUR


def test_an_auto_approved_claim_sets_accepted_at(world):
    from tests.factories import pair

    settings(world, auto_approve_paired_claims=True)
    pair(world, "x", "a1")
    assignments.claim_demand(world.session, actor=world.actor("unit_x"), demand_id=world["d_a1"],
                             unit_id=world["x"], resource_id=world["r_x"], quantity=1,
                             now=NOW + HOUR)
    assert item(world).accepted_at == NOW + HOUR


def test_verifying_the_report_sets_verified_at(world):
    verified(world, NOW + 30 * HOUR)
    d = item(world)
    assert d.status == "verified" and d.verified_at == NOW + 30 * HOUR
    assert service_levels.sla_state(d, NOW + 10 * DAY) is None


# ---- red, amber, green --------------------------------------------------------------------------

def test_an_item_is_green_until_a_quarter_of_its_window_is_left_then_amber_then_red(world):
    d = item(world)  # 24 h to accept: amber when less than 6 h are left
    assert service_levels.sla_state(d, NOW) == "green"
    assert service_levels.sla_state(d, NOW + 18 * HOUR) == "green"
    assert service_levels.sla_state(d, NOW + 18 * HOUR + SECOND) == "amber"
    assert service_levels.sla_state(d, NOW + 24 * HOUR) == "amber"
    assert service_levels.sla_state(d, NOW + 24 * HOUR + SECOND) == "red"


def test_a_short_window_turns_amber_four_hours_before(world):
    settings(world, accept_within_hours=8)
    d = item(world, published(world, NOW))
    assert service_levels.sla_state(d, NOW + 4 * HOUR) == "green"
    assert service_levels.sla_state(d, NOW + 4 * HOUR + SECOND) == "amber"


def test_once_accepted_the_close_due_time_sets_the_light(world):
    accept(world, when=NOW + HOUR)
    d = item(world)  # 72 h to close: amber with less than 18 h left
    assert service_levels.sla_state(d, NOW + 30 * HOUR) == "green"
    assert service_levels.sla_state(d, NOW + 54 * HOUR + SECOND) == "amber"
    assert service_levels.sla_state(d, NOW + 72 * HOUR + SECOND) == "red"


def test_no_light_for_cancelled_or_closed_items(world):
    demands.cancel_demand(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"],
                          reason="重复登记", now=NOW)
    assert service_levels.sla_state(item(world), NOW + 10 * DAY) is None


def test_the_sql_filter_agrees_with_the_light_of_every_item(world):
    ids = {
        "new": world["d_a1"],
        "amber": published(world, NOW - 20 * HOUR),
        "red": published(world, NOW - 30 * HOUR),
        "accepted": published(world, NOW - 30 * HOUR),
        "paused_green": published(world, NOW - 20 * HOUR),
        "paused_red": published(world, NOW - 30 * HOUR),
        "draft": make_demand(world.session, world, "a1", "sec_a1", publish=False),
    }
    accept(world, ids["accepted"], when=NOW - 29 * HOUR)
    pause(world, NOW - 19 * HOUR, demand=ids["paused_green"])
    pause(world, NOW - 2 * HOUR, demand=ids["paused_red"])
    rows = [item(world, i) for i in ids.values()]
    for when in (NOW - HOUR, NOW, NOW + 5 * HOUR, NOW + 20 * HOUR, NOW + 3 * DAY):
        for light in ("red", "amber"):
            listed = demands.list_demands(world.session, actor=world.actor("sec_a1"), filters={
                "community_id": world["a1"], "sla_state": light}, per_page=100, now=when)
            expected = {d.id for d in rows if service_levels.sla_state(d, when) == light}
            assert {d.id for d in listed.items} == expected, (when, light)
    at_now = {name: service_levels.sla_state(item(world, i), NOW) for name, i in ids.items()}
    assert at_now == {"new": "green", "amber": "amber", "red": "red", "accepted": "green",
                      "paused_green": "green", "paused_red": "red", "draft": None}


# ---- pausing and resuming ---------------------------------------------------------------------

def test_pausing_records_who_when_and_why_and_freezes_the_light(world):
    pause(world, NOW + 2 * HOUR)
    d = item(world)
    assert (d.paused_at, d.pause_reason) == (NOW + 2 * HOUR, "等居民出院")
    [event] = events(world, d.id, "paused")
    assert event.reason == "等居民出院" and event.actor_id == world.users["sec_a1"]
    assert service_levels.sla_state(d, NOW + 10 * DAY) == "green"


def test_the_grid_worker_of_the_items_grid_may_pause_it(world):
    pause(world, NOW, by="grid_a1")
    assert item(world).paused_at == NOW


def test_pausing_needs_a_reason_and_changes_nothing_without_one(world):
    with pytest.raises(ValidationError) as info:
        pause(world, NOW, reason="  ")
    assert "reason" in info.value.fields
    assert item(world).paused_at is None and not events(world, world["d_a1"], "paused")


@pytest.mark.parametrize("who", ["unit_x", "res_a1", "admin_a"])
def test_only_the_secretary_or_the_grid_worker_may_pause(world, who):
    with pytest.raises(PermissionDeniedError):
        pause(world, NOW, by=who)
    assert item(world).paused_at is None


def test_another_communitys_secretary_does_not_even_see_the_item_to_pause(world):
    with pytest.raises(NotFoundError):
        pause(world, NOW, by="sec_b1")


def test_pausing_a_paused_item_is_a_conflict(world):
    pause(world, NOW)
    with pytest.raises(ConflictError):
        pause(world, NOW + HOUR)
    assert item(world).paused_at == NOW


def test_pausing_a_closed_or_cancelled_item_is_a_conflict(world):
    demands.cancel_demand(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"],
                          reason="重复登记", now=NOW)
    with pytest.raises(ConflictError):
        pause(world, NOW + HOUR)
    assert item(world).paused_at is None


def test_resuming_an_item_that_is_not_paused_is_a_conflict(world):
    with pytest.raises(ConflictError):
        resume(world, NOW)


def test_resuming_moves_the_due_times_on_by_the_paused_time(world):
    pause(world, NOW + 2 * HOUR)
    resume(world, NOW + 7 * HOUR)
    d = item(world)
    assert d.paused_at is None and d.pause_reason is None
    assert d.accept_due_at == NOW + 29 * HOUR and d.close_due_at == NOW + 77 * HOUR
    [event] = events(world, d.id, "resumed")
    assert json.loads(event.data)["paused_seconds"] == 5 * 3600


def test_resuming_moves_only_the_due_times_still_to_meet(world):
    accept(world, when=NOW + HOUR)
    pause(world, NOW + 2 * HOUR)
    resume(world, NOW + 12 * HOUR)
    d = item(world)
    assert d.accept_due_at == NOW + 24 * HOUR and d.close_due_at == NOW + 82 * HOUR


def test_on_working_days_a_pause_over_the_weekend_counts_only_working_time(world):
    settings(world, sla_working_days=True)
    demand_id = published(world, NOW)  # Friday 10:00; due to be accepted Monday 10:00
    pause(world, shanghai("2026-11-20T12:00"), demand=demand_id)
    resume(world, shanghai("2026-11-23T12:00"), demand=demand_id)  # 12 h Friday + 12 h Monday
    assert item(world, demand_id).accept_due_at == shanghai("2026-11-24T10:00")


# ---- escalation -------------------------------------------------------------------------------

def test_an_item_not_accepted_by_the_due_time_exactly_is_not_escalated(world):
    assert check(world, NOW + 24 * HOUR)["escalated"] == 0
    assert item(world).escalation_level == 0
    assert not events(world, world["d_a1"], "escalated")


def test_one_second_past_the_accept_due_time_the_item_goes_to_the_community(world):
    check(world, NOW + 24 * HOUR + SECOND)
    d = item(world)
    assert (d.escalation_level, d.escalated_at) == (1, NOW + 24 * HOUR + SECOND)
    [event] = events(world, d.id, "escalated")
    assert json.loads(event.data) == {"from": 0, "to": 1, "cause": "not_accepted"}
    assert event.actor_id is None
    assert told(world, "escalated", d.id) == users(world, "sec_a1", "grid_a1")
    note = world.session.scalar(select(Notification).where(
        Notification.kind == "escalated", Notification.user_id == world.users["sec_a1"]))
    assert note.needs_action and note.link == f"/demands/{d.id}"
    assert json.loads(note.params) == {"title": d.title, "level": "community",
                                       "cause": "not_accepted"}


def test_an_item_accepted_in_time_but_not_closed_escalates_for_not_closing(world):
    accept(world, when=NOW + HOUR)
    check(world, NOW + 3 * DAY)
    assert item(world).escalation_level == 0
    check(world, NOW + 3 * DAY + SECOND)
    [event] = events(world, world["d_a1"], "escalated")
    assert json.loads(event.data)["cause"] == "not_closed"


def test_after_the_communitys_wait_a_late_item_goes_on_to_the_subdistrict(world):
    first = NOW + 24 * HOUR + SECOND
    check(world, first)
    check(world, first + 24 * HOUR - SECOND)
    assert item(world).escalation_level == 1
    check(world, first + 24 * HOUR)
    d = item(world)
    assert (d.escalation_level, d.escalated_at) == (2, first + 24 * HOUR)
    last = events(world, d.id, "escalated")[-1]
    assert json.loads(last.data) == {"from": 1, "to": 2, "cause": "not_accepted"}
    assert told(world, "escalated", d.id) == sorted(
        users(world, "sec_a1", "grid_a1") + users(world, "sec_a1", "grid_a1", "admin_a"))
    check(world, first + 10 * DAY)
    assert item(world).escalation_level == 2 and len(events(world, d.id, "escalated")) == 2


def test_the_communitys_wait_before_the_subdistrict_is_its_own_setting(world):
    settings(world, escalate_after_hours=4)
    first = NOW + 24 * HOUR + SECOND
    check(world, first)
    check(world, first + 4 * HOUR)
    assert item(world).escalation_level == 2


def test_on_working_days_the_wait_at_the_community_skips_the_weekend(world):
    settings(world, sla_working_days=True)
    demand_id = published(world, shanghai("2026-11-19T10:00"))  # Thursday: due Friday 10:00
    first = shanghai("2026-11-20T10:00") + SECOND
    check(world, first)
    assert item(world, demand_id).escalation_level == 1
    check(world, shanghai("2026-11-22T23:00"))  # Sunday: 14 working hours waited
    assert item(world, demand_id).escalation_level == 1
    check(world, shanghai("2026-11-23T10:00") + SECOND)  # Monday: 24 working hours
    assert item(world, demand_id).escalation_level == 2


def test_a_paused_item_never_escalates(world):
    pause(world, NOW + HOUR)
    assert check(world, NOW + 10 * DAY)["escalated"] == 1  # d_b1 in the other subdistrict
    assert item(world).escalation_level == 0 and told(world, "escalated", world["d_a1"]) == []


def test_a_resumed_item_escalates_only_after_its_moved_due_time(world):
    pause(world, NOW + 2 * HOUR)
    resume(world, NOW + 12 * HOUR)  # due to be accepted at NOW + 34 h now
    check(world, NOW + 34 * HOUR)
    assert item(world).escalation_level == 0
    check(world, NOW + 34 * HOUR + SECOND)
    assert item(world).escalation_level == 1


def test_running_the_check_twice_changes_nothing_the_second_time(world):
    for minutes in (0, 1):
        published(world, NOW - 30 * HOUR + minutes * timedelta(minutes=1))
    when = NOW + 20 * HOUR
    first = check(world, when)
    assert first["escalated"] == 2 and first["due_soon"] >= 1
    before = counts(world)
    assert check(world, when) == {"escalated": 0, "due_soon": 0}
    assert counts(world) == before


def test_the_check_works_through_more_items_than_one_batch(world, monkeypatch):
    monkeypatch.setattr(service_levels, "BATCH", 2)
    late = [published(world, NOW - 30 * HOUR) for _ in range(5)]
    assert check(world, NOW)["escalated"] == 5
    assert {item(world, i).escalation_level for i in late} == {1}


def test_an_item_turning_amber_is_announced_once_per_due_time(world):
    accept(world, when=NOW + HOUR)
    check(world, NOW + 54 * HOUR + SECOND)  # the close due time turns amber
    expected = users(world, "sec_a1", "grid_a1", "unit_x")
    assert told(world, "due_soon", world["d_a1"]) == expected
    note = world.session.scalar(select(Notification).where(
        Notification.kind == "due_soon", Notification.user_id == world.users["sec_a1"]))
    assert json.loads(note.params)["due_at"] == (NOW + 72 * HOUR).isoformat()
    check(world, NOW + 60 * HOUR)
    assert told(world, "due_soon", world["d_a1"]) == expected


def test_a_green_item_is_not_announced(world):
    check(world, NOW + HOUR)
    assert told(world, "due_soon") == []


# ---- dispatches not answered in time ------------------------------------------------------------

def dispatched(world, hours: int = 6) -> Assignment:
    return assignments.dispatch_demand(world.session, actor=world.actor("sec_a1"),
                                       demand_id=world["d_a1"], unit_id=world["x"], quantity=2,
                                       resource_id=world["r_x"], response_hours=hours, now=NOW)


def remaining(world) -> int:
    row = world.session.get(ResourceItem, world["r_x"])
    world.session.refresh(row)
    return row.quantity_remaining


def expire(world, when: datetime) -> dict:
    return service_levels.expire_dispatches(world.session, now=when)


def test_a_dispatch_is_not_expired_a_second_before_or_at_its_deadline(world):
    offer = dispatched(world)
    assert expire(world, NOW + 6 * HOUR - SECOND) == {"expired": 0}
    assert expire(world, NOW + 6 * HOUR) == {"expired": 0}
    world.session.refresh(offer)
    assert offer.status == "offered" and item(world).quantity_open == 1 and remaining(world) == 98


def test_a_dispatch_past_its_deadline_expires_and_its_quantity_returns(world):
    offer = dispatched(world)
    assert expire(world, NOW + 6 * HOUR + SECOND) == {"expired": 1}
    world.session.refresh(offer)
    assert offer.status == "expired" and offer.active_demand_id is None
    assert item(world).quantity_open == 3 and remaining(world) == 100
    event = world.session.scalar(select(AuditEvent).where(
        AuditEvent.entity_type == "assignments", AuditEvent.entity_id == offer.id,
        AuditEvent.to_status == "expired"))
    assert event.reason == "not answered by 2026-11-20 16:00" and event.actor_id is None
    assert told(world, "dispatch_expired") == users(world, "sec_a1", "unit_x")


def test_expiring_dispatches_twice_changes_nothing_the_second_time(world):
    dispatched(world)
    expire(world, NOW + 7 * HOUR)
    before = counts(world)
    assert expire(world, NOW + 7 * HOUR) == {"expired": 0}
    assert counts(world) == before


def test_after_a_dispatch_expires_the_item_can_be_dispatched_again(world):
    dispatched(world)
    expire(world, NOW + 7 * HOUR)
    again = assignments.dispatch_demand(world.session, actor=world.actor("sec_a1"),
                                        demand_id=world["d_a1"], unit_id=world["x"], quantity=3,
                                        now=NOW + 8 * HOUR)
    assert again.status == "offered"


# ---- automatic confirmation -------------------------------------------------------------------

def test_verified_work_is_not_confirmed_a_second_before_the_days_are_up(world):
    verified(world, NOW + HOUR)
    result = service_levels.auto_confirm(world.session, now=NOW + HOUR + 7 * DAY - SECOND)
    assert result == {"confirmed": 0} and item(world).status == "verified"


def test_verified_work_is_confirmed_automatically_when_the_days_are_up(world):
    verified(world, NOW + HOUR)
    assert service_levels.auto_confirm(world.session, now=NOW + HOUR + 7 * DAY) == \
        {"confirmed": 1}
    d = item(world)
    assert (d.status, d.auto_confirmed, d.rating) == ("closed", True, None)
    [event] = events(world, d.id, "auto_confirmed")
    assert (event.from_status, event.to_status, event.actor_id) == ("verified", "closed", None)
    assert told(world, "auto_confirmed", d.id) == users(world, "res_a1", "sec_a1")


def test_automatic_confirmation_follows_the_communitys_days(world):
    settings(world, auto_confirm_days=2)
    verified(world, NOW + HOUR)
    service_levels.auto_confirm(world.session, now=NOW + HOUR + 2 * DAY)
    assert item(world).status == "closed"


def test_confirming_automatically_twice_changes_nothing_the_second_time(world):
    verified(world, NOW + HOUR)
    service_levels.auto_confirm(world.session, now=NOW + 8 * DAY)
    before = counts(world)
    assert service_levels.auto_confirm(world.session, now=NOW + 8 * DAY) == {"confirmed": 0}
    assert counts(world) == before


def test_work_the_beneficiary_confirmed_is_left_alone(world):
    verified(world, NOW + HOUR)
    demands.confirm_demand(world.session, actor=world.actor("res_a1"), demand_id=world["d_a1"],
                           rating=5, now=NOW + 2 * HOUR)
    assert service_levels.auto_confirm(world.session, now=NOW + 30 * DAY) == {"confirmed": 0}
    assert item(world).rating == 5 and not item(world).auto_confirmed


# ---- unsatisfactory ratings -------------------------------------------------------------------

def rate(world, rating: int, when: datetime, by: str = "res_a1"):
    return demands.confirm_demand(world.session, actor=world.actor(by), demand_id=world["d_a1"],
                                  rating=rating, comment="没修好", now=when)


def test_a_rating_of_three_closes_the_item(world):
    verified(world)
    rate(world, 3, NOW + 2 * HOUR)
    d = item(world)
    assert (d.status, d.rating, d.unsatisfied_count) == ("closed", 3, 0)


def test_an_unsatisfactory_rating_opens_the_item_again_for_rework(world):
    verified(world, NOW + HOUR)
    rate(world, 2, NOW + 2 * HOUR)
    d = item(world)
    assert (d.status, d.rating, d.unsatisfied_count) == ("open", None, 1)
    assert (d.quantity_open, d.quantity_confirmed) == (3, 0)
    assert (d.accepted_at, d.verified_at) == (None, None)
    assert d.published_at == NOW + 2 * HOUR and d.accept_due_at == NOW + 26 * HOUR
    assert d.close_due_at == NOW + 2 * HOUR + 3 * DAY and d.escalation_level == 0
    [event] = events(world, d.id, "rated_unsatisfactory")
    assert (event.from_status, event.to_status, event.reason) == ("verified", "open", "没修好")
    assert json.loads(event.data) == {"rating": 2, "on_behalf": False}
    assert told(world, "rated_unsatisfactory", d.id) == users(world, "sec_a1")


def test_the_second_unsatisfactory_rating_escalates_at_once(world):
    verified(world, NOW + HOUR)
    rate(world, 1, NOW + 2 * HOUR)
    verified(world, NOW + 3 * HOUR)  # the rework, by the same unit
    rate(world, 2, NOW + 4 * HOUR, by="grid_a1")
    d = item(world)
    assert (d.status, d.unsatisfied_count, d.escalation_level) == ("open", 2, 1)
    [event] = events(world, d.id, "escalated")
    assert json.loads(event.data) == {"from": 0, "to": 1, "cause": "unsatisfied"}
    assert told(world, "escalated", d.id) == users(world, "sec_a1", "grid_a1")


def test_a_rating_of_a_closed_item_is_refused_and_changes_nothing(world):
    verified(world)
    rate(world, 5, NOW + 2 * HOUR)
    with pytest.raises(ConflictError):
        rate(world, 1, NOW + 3 * HOUR)
    d = item(world)
    assert (d.status, d.rating, d.unsatisfied_count) == ("closed", 5, 0)


# ---- community settings -----------------------------------------------------------------------

def test_service_level_settings_out_of_range_are_refused_naming_the_field(world):
    for field, value in {"accept_within_hours": 0, "close_within_days": 91,
                         "escalate_after_hours": -1, "auto_confirm_days": 0,
                         "sla_working_days": "yes"}.items():
        with pytest.raises(ValidationError) as info:
            settings(world, **{field: value})
        assert field in info.value.fields, field


def test_an_item_cannot_be_due_to_be_accepted_after_it_is_due_to_be_closed(world):
    with pytest.raises(ValidationError) as info:
        settings(world, accept_within_hours=96)
    assert "accept_within_hours" in info.value.fields
    settings(world, accept_within_hours=96, close_within_days=4)
    assert item(world, published(world, NOW)).accept_due_at == NOW + 4 * DAY


def test_a_setting_that_is_not_one_is_refused(world):
    with pytest.raises(ValidationError) as info:
        settings(world, name="改名")
    assert "name" in info.value.fields
