"""The subdistrict's figures on known data: every number exact, by community, unit and month,
with Beijing months (an item published at 01:00 on 1 November Beijing time is November's, though
it is still 31 October in UTC), the rates' rules, the red list, the items running late, and the
scope (only the subdistrict's own admin)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tests.conftest import NOW
from tests.factories import category_id, claim, make_demand
from tests.integration.lovebank_helpers import (
    award,
    goods,
    key,
    order,
    publish,
    resident,
)
from web.errors import NotFoundError, PermissionDeniedError, ValidationError
from web.services import (
    activities,
    assignments,
    demands,
    figures,
    lovebank,
    market,
    reports,
    service_levels,
)

pytestmark = pytest.mark.db

OCT_10 = datetime(2026, 10, 10, 2, 0, tzinfo=UTC)  # 10:00 Beijing
NOV_1_EARLY = datetime(2026, 10, 31, 17, 0, tzinfo=UTC)  # 01:00 on 1 November, Beijing


def new_demand(world, community: str, now: datetime, **extra) -> int:
    data = {"category_id": category_id(world.session), "title": "探访", "quantity_needed": 1,
            **extra}
    return demands.create_demand(world.session, actor=world.actor(f"sec_{community}"),
                                 community_id=world[community], data=data, publish=True,
                                 now=now).id


def claimed(world, unit: str, demand_id: int, community: str, at: datetime, approve_at):
    share = assignments.claim_demand(world.session, actor=world.actor(f"unit_{unit}"),
                                     demand_id=demand_id, unit_id=world[unit],
                                     resource_id=world[f"r_{unit}"], quantity=1, now=at)
    assignments.approve_claim(world.session, actor=world.actor(f"sec_{community}"),
                              assignment_id=share.id, now=approve_at)
    return share


def build_known(world) -> dict:
    """Subdistrict A's year so far, with a little of subdistrict B's beside it:

    - a1, d_a1 (published 20 Nov 10:00): unit x claims all 3 and is approved two hours later
      (same day); an activity on it is held, another cancelled; x reports 120 minutes worth
      50 yuan, verified 48 hours after publication. Points: 20 for the service, 20 awarded;
      another resident's 20 awarded and reversed; 10 redeemed, a 20-point order refunded.
    - a1: an item published and cancelled (left out of the rates).
    - a2, 10 Oct: an item dispatched to unit y the next day and accepted then; not closed.
    - a2, 1 Nov 01:00 Beijing (31 Oct UTC): unit x claims and is approved within the hour.
    - b1 (subdistrict B): unit z's approved claim — never in A's figures.
    """
    s = world.session
    publish(world, "a1")
    share = assignments.claim_demand(s, actor=world.actor("unit_x"), demand_id=world["d_a1"],
                                     unit_id=world["x"], resource_id=world["r_x"], quantity=3,
                                     now=NOW + timedelta(hours=1))
    assignments.approve_claim(s, actor=world.actor("sec_a1"), assignment_id=share.id,
                              now=NOW + timedelta(hours=2))
    for cancel in (False, True):
        start = NOW + timedelta(hours=4)
        act = activities.create_session(s, actor=world.actor("sec_a1"), data={
            "demand_id": world["d_a1"], "title": "探访", "place": "3号楼", "starts_at": start,
            "ends_at": start + timedelta(hours=2), "headcount": 3}, now=NOW + timedelta(hours=3))
        activities.close_session(s, actor=world.actor("sec_a1"), session_id=act.id,
                                 cancel=cancel, reason="下雨" if cancel else None,
                                 now=start + timedelta(hours=3))
    report = reports.submit_report(
        s, actor=world.actor("unit_x"), demand_id=world["d_a1"], started_on=date(2026, 11, 21),
        ended_on=date(2026, 11, 21), volunteers=[{"user_id": world.users["res_a1"],
                                                  "minutes": 120}],
        beneficiaries_served=1, value_fen=5000, now=NOW + timedelta(days=1, hours=12))
    reports.verify_report(s, actor=world.actor("sec_a1"), report_id=report.id,
                          now=NOW + timedelta(days=2))
    award(world, "res_a1")
    resident(world, "res_a1b")
    undone = award(world, "res_a1b")
    lovebank.reverse_transfer(s, actor=world.actor("sec_a1"), transfer_id=undone.id,
                              reason="记错了人", idempotency_key=key("rev"), now=NOW)
    item = goods(world, price=10, stock=5)
    order(world, (item.id, 1))
    refunded = order(world, (item.id, 2))
    market.cancel_order(s, actor=world.actor("res_a1"), order_id=refunded.id, reason="不要了",
                        idempotency_key=key("cancel"), now=NOW)
    cancelled = new_demand(world, "a1", NOW)
    demands.cancel_demand(s, actor=world.actor("sec_a1"), demand_id=cancelled, reason="重复",
                          now=NOW + timedelta(hours=1))
    october = new_demand(world, "a2", OCT_10)
    dispatch = assignments.dispatch_demand(s, actor=world.actor("sec_a2"), demand_id=october,
                                           unit_id=world["y"], quantity=1,
                                           now=OCT_10 + timedelta(days=1))
    assignments.accept_dispatch(s, actor=world.actor("unit_y"), assignment_id=dispatch.id,
                                now=OCT_10 + timedelta(days=1, hours=1))
    early = new_demand(world, "a2", NOV_1_EARLY)
    claimed(world, "x", early, "a2", NOV_1_EARLY + timedelta(minutes=30),
            NOV_1_EARLY + timedelta(minutes=45))
    share_b = claim(world, "z", "d_b1")
    assignments.approve_claim(s, actor=world.actor("sec_b1"), assignment_id=share_b.id, now=NOW)
    return {"october": october, "early": early}


def read(world, *, who: str = "admin_a", subdistrict: str = "A", **kwargs) -> figures.Figures:
    return figures.subdistrict_figures(world.session, actor=world.actor(who),
                                       subdistrict_id=world[subdistrict],
                                       now=NOW + timedelta(days=2), **kwargs)


def numbers(row: figures.Row) -> dict:
    return {k: getattr(row, k) for k in (
        "activities", "claimed", "closed", "published", "done", "same_day", "three_days",
        "minutes", "value_fen", "points_issued", "points_redeemed")}


def by_label(rows) -> dict:
    return {r.label: r for r in rows}


# ---- the figures ------------------------------------------------------------------------------

def test_the_totals_count_each_thing_once_and_only_in_the_subdistrict(world):
    build_known(world)
    found = read(world)
    assert (found.start, found.end) == (date(2026, 1, 1), date(2026, 12, 31))
    assert numbers(found.total) == {
        "activities": 1, "claimed": 3, "closed": 1, "published": 3, "done": 1, "same_day": 2,
        "three_days": 1, "minutes": 120, "value_fen": 5000, "points_issued": 40,
        "points_redeemed": 10}
    assert found.total.closure_rate == Decimal("33.3")
    assert found.total.same_day_rate == Decimal("66.7")
    assert found.total.three_day_rate == Decimal("33.3")
    assert found.total.hours == Decimal("2.0") and found.total.value_yuan == Decimal("50.00")


def test_figures_by_community(world):
    build_known(world)
    rows = by_label(read(world).by_community)
    assert list(rows) == ["a1社区", "a2社区"]
    assert numbers(rows["a1社区"]) == {
        "activities": 1, "claimed": 1, "closed": 1, "published": 1, "done": 1, "same_day": 1,
        "three_days": 1, "minutes": 120, "value_fen": 5000, "points_issued": 40,
        "points_redeemed": 10}
    assert numbers(rows["a2社区"]) == {
        "activities": 0, "claimed": 2, "closed": 0, "published": 2, "done": 0, "same_day": 1,
        "three_days": 0, "minutes": 0, "value_fen": 0, "points_issued": 0,
        "points_redeemed": 0}
    assert rows["a2社区"].closure_rate == Decimal("0.0")
    assert rows["a2社区"].same_day_rate == Decimal("50.0")


def test_figures_by_beijing_month_put_an_early_november_item_in_november(world):
    build_known(world)
    months = by_label(read(world).by_month)
    assert list(months) == [f"2026-{m:02d}" for m in range(1, 13)]
    assert numbers(months["2026-10"]) == {
        "activities": 0, "claimed": 1, "closed": 0, "published": 1, "done": 0, "same_day": 0,
        "three_days": 0, "minutes": 0, "value_fen": 0, "points_issued": 0,
        "points_redeemed": 0}
    assert numbers(months["2026-11"]) == {
        "activities": 1, "claimed": 2, "closed": 1, "published": 2, "done": 1, "same_day": 2,
        "three_days": 1, "minutes": 120, "value_fen": 5000, "points_issued": 40,
        "points_redeemed": 10}
    assert all(numbers(months[m]) == numbers(figures.Row(key=m, label=m))
               for m in months if m not in ("2026-10", "2026-11"))
    assert months["2026-09"].closure_rate is None  # nothing published: no rate, not 0 %


def test_figures_by_unit_count_the_units_own_shares(world):
    build_known(world)
    units = by_label(read(world).by_unit)
    assert list(units) == ["Unit x", "Unit y"]  # z is subdistrict B's
    assert numbers(units["Unit x"]) == {
        "activities": None, "claimed": 2, "closed": 1, "published": 2, "done": 1,
        "same_day": 2, "three_days": 1, "minutes": 120, "value_fen": 5000,
        "points_issued": None, "points_redeemed": None}
    assert numbers(units["Unit y"]) == {
        "activities": None, "claimed": 1, "closed": 0, "published": 1, "done": 0,
        "same_day": 0, "three_days": 0, "minutes": 0, "value_fen": 0,
        "points_issued": None, "points_redeemed": None}


def test_a_period_keeps_to_its_beijing_days(world):
    ids = build_known(world)
    october = read(world, start=date(2026, 10, 1), end=date(2026, 10, 31))
    assert [r.label for r in october.by_month] == ["2026-10"]
    assert (october.total.claimed, october.total.published) == (1, 1)
    assert october.total.points_issued == 0
    assert ids["early"]  # published on 31 October in UTC, yet not October's in Beijing


def test_one_community_only(world):
    build_known(world)
    found = read(world, community_id=world["a2"])
    assert [r.label for r in found.by_community] == ["a2社区"]
    assert (found.total.claimed, found.total.closed, found.total.minutes) == (2, 0, 0)
    assert [r.label for r in found.by_unit] == ["Unit x", "Unit y"]
    assert by_label(found.by_unit)["Unit x"].claimed == 1


def test_a_subdistrict_with_one_open_item_shows_zeros_and_every_approved_unit(world):
    found = read(world)
    assert (found.total.claimed, found.total.published) == (0, 1)  # d_a1, waiting
    assert found.total.closure_rate == found.total.same_day_rate == Decimal("0.0")
    assert by_label(found.by_community)["a2社区"].closure_rate is None  # nothing to divide
    assert [r.label for r in found.by_unit] == ["Unit x", "Unit y"]  # approved, nothing yet


def test_the_red_list_ranks_by_items_closed_then_hours_then_value(world):
    build_known(world)
    assert [r.label for r in figures.ranking(read(world))] == ["Unit x"]  # y closed nothing


def test_the_red_list_breaks_ties_by_hours(world):
    found = read(world)
    x, y = found.by_unit
    x.closed, y.closed, x.minutes, y.minutes = 2, 2, 60, 90
    assert [r.label for r in figures.ranking(found)] == ["Unit y", "Unit x"]


# ---- who may read, and what is refused ---------------------------------------------------------

@pytest.mark.parametrize("who", ["admin_b", "sec_a1", "unit_x", "clerk_a1", "res_a1"])
def test_only_the_subdistricts_own_admin_reads_its_figures(world, who):
    with pytest.raises(PermissionDeniedError):
        read(world, who=who)


def test_a_subdistrict_that_does_not_exist_is_not_found(world):
    with pytest.raises((NotFoundError, PermissionDeniedError)):
        figures.subdistrict_figures(world.session, actor=world.actor("admin_a"),
                                    subdistrict_id=999_999)


def test_a_community_of_another_subdistrict_is_refused(world):
    with pytest.raises(ValidationError) as refused:
        read(world, community_id=world["b1"])
    assert "community_id" in refused.value.fields


def test_a_backwards_or_overlong_period_is_refused(world):
    with pytest.raises(ValidationError) as backwards:
        read(world, start=date(2026, 5, 1), end=date(2026, 4, 1))
    assert "end" in backwards.value.fields
    with pytest.raises(ValidationError):
        read(world, start=date(2010, 1, 1), end=date(2026, 1, 1))


# ---- items running late -----------------------------------------------------------------------------

def test_items_running_late_are_the_subdistricts_items_past_or_near_a_due_time(world):
    # At NOW: published 25 h ago and not accepted is red; published 20 h ago has 4 of its 24 h
    # left, amber; published now (d_a1) is green; b1 is another subdistrict.
    late = new_demand(world, "a1", NOW - timedelta(hours=25))
    soon = new_demand(world, "a2", NOW - timedelta(hours=20))
    new_demand(world, "a1", NOW - timedelta(hours=2))
    make_demand(world.session, world, "a1", "sec_a1", publish=False)  # no one's work yet
    new_demand(world, "b1", NOW - timedelta(hours=25))

    def due(who="admin_a", **filters):
        return figures.due_items(world.session, actor=world.actor(who), subdistrict_id=world["A"],
                                 filters=filters, now=NOW)

    assert [d.id for d in due().items] == [late, soon]
    assert [d.id for d in due(rag="red").items] == [late]
    assert [d.id for d in due(rag="amber").items] == [soon]
    assert [d.id for d in due(community_id=world["a2"]).items] == [soon]
    assert due(q="没有这个").total == 0
    with pytest.raises(PermissionDeniedError):
        due("admin_b")


def test_items_escalated_to_the_subdistrict_are_listed_late_or_not(world):
    late = new_demand(world, "a1", NOW - timedelta(hours=72))
    for hours in (47, 23):  # 1 h late: to the community; 24 h later: to the subdistrict
        service_levels.check_service_levels(world.session, now=NOW - timedelta(hours=hours))
    claimed(world, "x", late, "a1", NOW, NOW)  # accepted at last, but not yet closed
    escalated = figures.due_items(world.session, actor=world.actor("admin_a"),
                                  subdistrict_id=world["A"], filters={"escalated": "1"}, now=NOW)
    assert [d.id for d in escalated.items] == [late]
    assert escalated.items[0].escalation_level == 2
