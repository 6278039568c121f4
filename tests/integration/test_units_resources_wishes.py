"""Units and their pairings, resource items, and residents' micro-wishes, on the service layer."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW
from tests.factories import category_id, claim, make_resource, make_user, pair
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
    MicroWish,
    Pairing,
    ResourceItem,
    RoleGrant,
    Unit,
)
from web.services import demands, resources, units, wishes
from web.services.auth import actor_for

pytestmark = pytest.mark.db


# ---- helpers ----------------------------------------------------------------------------------

def reload(world, model, ident):
    row = world.session.get(model, ident)
    world.session.refresh(row)
    return row


def events_for(world, entity_type: str, entity_id: int) -> list[AuditEvent]:
    return list(world.session.scalars(select(AuditEvent).where(
        AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
        .order_by(AuditEvent.id)))


def applicant(world, name: str = "new_admin", subdistrict: str = "A") -> Unit:
    user = make_user(world.session, name)
    world.users[name] = user.id
    return units.apply_unit(world.session, actor=actor_for(user), subdistrict_id=world[subdistrict],
                            data={"name": "新单位", "type": "social_organisation",
                                  "contact_name": "赵", "contact_phone": "13900000001"}, now=NOW)


def draft_resource(world, unit="x", admin="unit_x", **extra) -> int:
    return make_resource(world.session, world, unit, admin, ["a1"], publish=False, **extra)


# ---- units ------------------------------------------------------------------------------------

def test_a_unit_applies_and_its_applicant_becomes_its_admin(world):
    unit = applicant(world)
    assert unit.status == "applied"
    grant = world.session.scalars(select(RoleGrant).where(
        RoleGrant.user_id == world.users["new_admin"])).one()
    assert (grant.role, grant.unit_id, grant.subdistrict_id) == ("unit_admin", unit.id, world["A"])
    assert [(e.action, e.to_status) for e in events_for(world, "units", unit.id)] == [
        ("applied", "applied")]


def test_nobody_applies_for_a_unit_without_signing_in(world):
    with pytest.raises(PermissionDeniedError):
        units.apply_unit(world.session, actor=SYSTEM, subdistrict_id=world["A"],
                         data={"name": "x", "type": "enterprise", "contact_name": "a",
                               "contact_phone": "1"}, now=NOW)


def test_the_subdistrict_admin_approves_an_application(world):
    unit = applicant(world)
    units.approve_unit(world.session, actor=world.actor("admin_a"), unit_id=unit.id, now=NOW)
    assert reload(world, Unit, unit.id).status == "approved"
    last = events_for(world, "units", unit.id)[-1]
    assert (last.from_status, last.to_status, last.actor_id) == (
        "applied", "approved", world.users["admin_a"])


def test_another_subdistricts_admin_cannot_see_or_approve_an_application(world):
    unit = applicant(world)
    with pytest.raises(NotFoundError):
        units.approve_unit(world.session, actor=world.actor("admin_b"), unit_id=unit.id, now=NOW)
    assert reload(world, Unit, unit.id).status == "applied"


def test_a_secretary_or_the_applicant_cannot_approve_a_unit(world):
    unit = applicant(world)
    with pytest.raises(NotFoundError):
        units.approve_unit(world.session, actor=world.actor("sec_a1"), unit_id=unit.id, now=NOW)
    with pytest.raises(PermissionDeniedError):
        units.approve_unit(world.session, actor=world.actor("new_admin"), unit_id=unit.id,
                           now=NOW)
    assert reload(world, Unit, unit.id).status == "applied"


def test_an_application_is_rejected_with_a_reason(world):
    unit = applicant(world)
    with pytest.raises(ValidationError) as info:
        units.reject_unit(world.session, actor=world.actor("admin_a"), unit_id=unit.id,
                          reason="", now=NOW)
    assert "reason" in info.value.fields
    units.reject_unit(world.session, actor=world.actor("admin_a"), unit_id=unit.id,
                      reason="不在辖区", now=NOW)
    row = reload(world, Unit, unit.id)
    assert (row.status, row.status_reason) == ("rejected", "不在辖区")
    assert events_for(world, "units", unit.id)[-1].reason == "不在辖区"


def test_a_rejected_unit_cannot_be_approved_directly(world):
    unit = applicant(world)
    units.reject_unit(world.session, actor=world.actor("admin_a"), unit_id=unit.id,
                      reason="不在辖区", now=NOW)
    with pytest.raises(IllegalTransitionError):
        units.approve_unit(world.session, actor=world.actor("admin_a"), unit_id=unit.id, now=NOW)
    assert reload(world, Unit, unit.id).status == "rejected"


def test_an_approved_unit_is_suspended_with_a_reason_and_reinstated(world):
    with pytest.raises(ValidationError):
        units.suspend_unit(world.session, actor=world.actor("admin_a"), unit_id=world["x"],
                           reason=None, now=NOW)
    units.suspend_unit(world.session, actor=world.actor("admin_a"), unit_id=world["x"],
                       reason="投诉核查", now=NOW)
    assert reload(world, Unit, world["x"]).status == "suspended"
    units.reinstate_unit(world.session, actor=world.actor("admin_a"), unit_id=world["x"], now=NOW)
    row = reload(world, Unit, world["x"])
    assert row.status == "approved"
    moves = [(e.from_status, e.to_status, e.reason) for e in events_for(world, "units", row.id)]
    assert moves[-2:] == [("approved", "suspended", "投诉核查"), ("suspended", "approved", None)]


def test_an_application_cannot_be_suspended_nor_an_approved_unit_reinstated(world):
    unit = applicant(world)
    with pytest.raises(IllegalTransitionError):
        units.suspend_unit(world.session, actor=world.actor("admin_a"), unit_id=unit.id,
                           reason="x", now=NOW)
    with pytest.raises(IllegalTransitionError):
        units.reinstate_unit(world.session, actor=world.actor("admin_a"), unit_id=world["x"],
                             now=NOW)
    assert reload(world, Unit, unit.id).status == "applied"


def test_another_subdistricts_admin_cannot_suspend_a_unit(world):
    with pytest.raises(PermissionDeniedError):
        units.suspend_unit(world.session, actor=world.actor("admin_b"), unit_id=world["x"],
                           reason="x", now=NOW)
    assert reload(world, Unit, world["x"]).status == "approved"


def test_a_unit_not_yet_approved_cannot_list_resources(world):
    unit = applicant(world)
    with pytest.raises(ConflictError):
        resources.create_resource(world.session, actor=world.actor("new_admin"), unit_id=unit.id,
                                  data={"kind": "goods", "category_id": category_id(world.session),
                                        "title": "米面油", "capacity_per_occasion": 1,
                                        "quantity_total": 5},
                                  service_community_ids=[world["a1"]], now=NOW)


# ---- pairings ---------------------------------------------------------------------------------

def test_a_pairing_records_its_start_and_end_dates(world):
    p = units.create_pairing(world.session, actor=world.actor("sec_a1"), unit_id=world["x"],
                             community_id=world["a1"], starts_on=date(2026, 1, 1),
                             ends_on=date(2026, 12, 31), note="共建协议", now=NOW)
    row = reload(world, Pairing, p.id)
    assert (row.starts_on, row.ends_on, row.unit_id, row.community_id) == (
        date(2026, 1, 1), date(2026, 12, 31), world["x"], world["a1"])
    assert units.is_paired(world.session, world["x"], world["a1"], date(2026, 6, 1))
    assert not units.is_paired(world.session, world["x"], world["a1"], date(2027, 1, 1))
    assert not units.is_paired(world.session, world["x"], world["a1"], date(2025, 12, 31))
    assert not units.is_paired(world.session, world["x"], world["a2"], date(2026, 6, 1))


def test_a_pairing_that_ends_before_it_starts_is_refused(world):
    with pytest.raises(ValidationError) as info:
        units.create_pairing(world.session, actor=world.actor("sec_a1"), unit_id=world["x"],
                             community_id=world["a1"], starts_on=date(2026, 6, 1),
                             ends_on=date(2026, 5, 31), now=NOW)
    assert "ends_on" in info.value.fields
    assert world.session.scalar(select(func.count()).select_from(Pairing)) == 0


def test_ending_a_pairing_before_its_start_is_refused(world):
    p = pair(world, "x", "a1", starts_on=date(2026, 6, 1))
    with pytest.raises(ValidationError) as info:
        units.end_pairing(world.session, actor=world.actor("sec_a1"), pairing_id=p.id,
                          ends_on=date(2026, 5, 1), reason="到期", now=NOW)
    assert "ends_on" in info.value.fields
    assert reload(world, Pairing, p.id).ends_on is None


def test_ending_a_pairing_needs_a_reason_and_is_recorded(world):
    p = pair(world, "x", "a1")
    with pytest.raises(ValidationError):
        units.end_pairing(world.session, actor=world.actor("sec_a1"), pairing_id=p.id,
                          ends_on=date(2026, 10, 31), reason="", now=NOW)
    assert reload(world, Pairing, p.id).ends_on is None
    units.end_pairing(world.session, actor=world.actor("sec_a1"), pairing_id=p.id,
                      ends_on=date(2026, 10, 31), reason="协议到期", now=NOW)
    assert reload(world, Pairing, p.id).ends_on == date(2026, 10, 31)
    assert events_for(world, "pairings", p.id)[-1].reason == "协议到期"


def test_a_pairing_with_a_grid_of_another_community_is_refused(world):
    with pytest.raises(ValidationError) as info:
        units.create_pairing(world.session, actor=world.actor("sec_a1"), unit_id=world["x"],
                             community_id=world["a1"], grid_id=world["g_a2"],
                             starts_on=date(2026, 1, 1), now=NOW)
    assert "grid_id" in info.value.fields


def test_a_secretary_pairs_units_only_with_their_own_community(world):
    with pytest.raises(PermissionDeniedError):
        units.create_pairing(world.session, actor=world.actor("sec_a2"), unit_id=world["x"],
                             community_id=world["a1"], starts_on=date(2026, 1, 1), now=NOW)
    with pytest.raises(PermissionDeniedError):
        units.create_pairing(world.session, actor=world.actor("unit_x"), unit_id=world["x"],
                             community_id=world["a1"], starts_on=date(2026, 1, 1), now=NOW)
    assert world.session.scalar(select(func.count()).select_from(Pairing)) == 0


# ---- resource items ---------------------------------------------------------------------------

def test_a_resource_goes_from_draft_to_published_to_withdrawn_and_back(world):
    rid = draft_resource(world)
    assert reload(world, ResourceItem, rid).status == "draft"
    resources.publish_resource(world.session, actor=world.actor("unit_x"), resource_id=rid,
                               now=NOW)
    assert reload(world, ResourceItem, rid).status == "published"
    resources.withdraw_resource(world.session, actor=world.actor("unit_x"), resource_id=rid,
                                reason="人员调整", now=NOW)
    assert reload(world, ResourceItem, rid).status == "withdrawn"
    resources.publish_resource(world.session, actor=world.actor("unit_x"), resource_id=rid,
                               now=NOW)
    moves = [(e.from_status, e.to_status, e.reason)
             for e in events_for(world, "resource_items", rid)]
    assert moves == [(None, "draft", None), ("draft", "published", None),
                     ("published", "withdrawn", "人员调整"), ("withdrawn", "published", None)]


def test_withdrawing_a_resource_needs_a_reason(world):
    with pytest.raises(ValidationError) as info:
        resources.withdraw_resource(world.session, actor=world.actor("unit_x"),
                                    resource_id=world["r_x"], reason=None, now=NOW)
    assert "reason" in info.value.fields
    assert reload(world, ResourceItem, world["r_x"]).status == "published"


def test_publishing_a_published_resource_is_illegal(world):
    with pytest.raises(IllegalTransitionError):
        resources.publish_resource(world.session, actor=world.actor("unit_x"),
                                   resource_id=world["r_x"], now=NOW)


def test_a_draft_is_hidden_from_other_units_and_a_published_item_is_not(world):
    rid = draft_resource(world)
    with pytest.raises(NotFoundError):
        resources.get_resource(world.session, actor=world.actor("unit_y"), resource_id=rid)
    assert resources.get_resource(world.session, actor=world.actor("unit_x"), resource_id=rid)
    assert resources.get_resource(world.session, actor=world.actor("unit_y"),
                                  resource_id=world["r_x"])


def test_only_the_units_admin_changes_its_resources(world):
    with pytest.raises(PermissionDeniedError):
        resources.withdraw_resource(world.session, actor=world.actor("unit_y"),
                                    resource_id=world["r_x"], reason="x", now=NOW)
    with pytest.raises(PermissionDeniedError):
        resources.update_resource(world.session, actor=world.actor("sec_a1"),
                                  resource_id=world["r_x"], changes={"title": "改"}, now=NOW)
    assert reload(world, ResourceItem, world["r_x"]).status == "published"


def test_the_total_quantity_cannot_shrink_below_what_is_committed(world):
    claim(world, "x", "d_a1", 3)  # r_x: 100 in total, 97 left, 3 committed
    with pytest.raises(ValidationError) as info:
        resources.update_resource(world.session, actor=world.actor("unit_x"),
                                  resource_id=world["r_x"],
                                  changes={"quantity_total": 2, "capacity_per_occasion": 2},
                                  now=NOW)
    assert "quantity_total" in info.value.fields
    row = reload(world, ResourceItem, world["r_x"])
    assert (row.quantity_total, row.quantity_remaining) == (100, 97)


def test_the_total_quantity_may_shrink_down_to_what_is_committed(world):
    claim(world, "x", "d_a1", 3)
    resources.update_resource(world.session, actor=world.actor("unit_x"),
                              resource_id=world["r_x"],
                              changes={"quantity_total": 3, "capacity_per_occasion": 3}, now=NOW)
    row = reload(world, ResourceItem, world["r_x"])
    assert (row.quantity_total, row.quantity_remaining) == (3, 0)


def test_growing_the_total_quantity_grows_what_remains(world):
    claim(world, "x", "d_a1", 3)
    resources.update_resource(world.session, actor=world.actor("unit_x"),
                              resource_id=world["r_x"], changes={"quantity_total": 150}, now=NOW)
    row = reload(world, ResourceItem, world["r_x"])
    assert (row.quantity_total, row.quantity_remaining) == (150, 147)


def test_capacity_per_occasion_cannot_exceed_the_total(world):
    with pytest.raises(ValidationError) as info:
        make_resource(world.session, world, "x", "unit_x", ["a1"], quantity=5, capacity=6)
    assert "capacity_per_occasion" in info.value.fields


def test_an_expired_item_cannot_be_published(world):
    rid = draft_resource(world, expires_on=date(2026, 11, 19))
    with pytest.raises(ValidationError) as info:
        resources.publish_resource(world.session, actor=world.actor("unit_x"), resource_id=rid,
                                   now=NOW)
    assert "expires_on" in info.value.fields
    assert reload(world, ResourceItem, rid).status == "draft"


def test_an_item_serving_no_community_and_no_radius_cannot_be_published(world):
    rid = make_resource(world.session, world, "x", "unit_x", [], publish=False)
    with pytest.raises(ValidationError) as info:
        resources.publish_resource(world.session, actor=world.actor("unit_x"), resource_id=rid,
                                   now=NOW)
    assert "service_community_ids" in info.value.fields


def test_a_radius_without_a_location_is_refused(world):
    with pytest.raises(ValidationError) as info:
        draft_resource(world, radius_m=500)
    assert "radius_m" in info.value.fields


def test_withdrawing_a_resource_leaves_its_claims_standing(world):
    c = claim(world, "x", "d_a1", 2)
    resources.withdraw_resource(world.session, actor=world.actor("unit_x"),
                                resource_id=world["r_x"], reason="暂停", now=NOW)
    assert reload(world, Assignment, c.id).status == "pending"
    assert reload(world, ResourceItem, world["r_x"]).quantity_remaining == 98


# ---- micro-wishes -----------------------------------------------------------------------------

def wish(world, title: str = "想有人帮忙换灯泡", **extra):
    return wishes.submit_wish(world.session, actor=world.actor("res_a1"), title=title,
                              description="厨房灯坏了", now=NOW, **extra)


def test_a_resident_submits_a_wish_to_their_home_community_and_grid(world):
    w = wish(world)
    assert (w.status, w.resident_id) == ("submitted", world.users["res_a1"])
    assert (w.community_id, w.grid_id) == (world["a1"], world["g_a1"])


@pytest.mark.parametrize("name", ["sec_a1", "unit_x", "grid_a1", "admin_a"])
def test_only_residents_submit_wishes(world, name):
    with pytest.raises(PermissionDeniedError):
        wishes.submit_wish(world.session, actor=world.actor(name), title="愿望", now=NOW)
    assert world.session.scalar(select(func.count()).select_from(MicroWish)) == 0


def test_a_wish_needs_a_title(world):
    with pytest.raises(ValidationError) as info:
        wish(world, title="   ")
    assert "title" in info.value.fields


def test_accepting_a_wish_makes_a_demand_for_the_resident(world):
    w = wish(world)
    accepted, demand = wishes.accept_wish(
        world.session, actor=world.actor("sec_a1"), wish_id=w.id,
        demand={"category_id": category_id(world.session, "repairs")}, publish=True, now=NOW)
    assert accepted.status == "accepted" and accepted.demand_id == demand.id
    d = reload(world, DemandItem, demand.id)
    assert (d.source, d.beneficiary_user_id, d.status) == (
        "micro_wish", world.users["res_a1"], "open")
    assert (d.title, d.community_id, d.grid_id, d.quantity_needed) == (
        "想有人帮忙换灯泡", world["a1"], world["g_a1"], 1)
    assert (d.beneficiary_name, d.beneficiary_phone) == ("res_a1", "13800000000")
    seen = demands.get_demand(world.session, actor=world.actor("res_a1"), demand_id=d.id)
    assert seen.id == d.id


def test_the_grid_worker_turns_a_wish_in_their_grid_into_a_draft_demand(world):
    w = wish(world, category_id=category_id(world.session, "repairs"))
    accepted, demand = wishes.accept_wish(world.session, actor=world.actor("grid_a1"),
                                          wish_id=w.id, demand={}, now=NOW)
    assert accepted.decided_by == world.users["grid_a1"]
    assert (demand.status, demand.source) == ("draft", "micro_wish")


def test_a_wish_without_a_category_needs_one_to_become_a_demand(world):
    w = wish(world)
    with pytest.raises(ValidationError) as info:
        wishes.accept_wish(world.session, actor=world.actor("sec_a1"), wish_id=w.id, demand={},
                           now=NOW)
    assert "category_id" in info.value.fields
    assert reload(world, MicroWish, w.id).status == "submitted"


def test_a_declined_wish_shows_the_resident_the_reason(world):
    w = wish(world)
    with pytest.raises(ValidationError):
        wishes.decline_wish(world.session, actor=world.actor("sec_a1"), wish_id=w.id, reason="",
                            now=NOW)
    wishes.decline_wish(world.session, actor=world.actor("sec_a1"), wish_id=w.id,
                        reason="物业负责维修", now=NOW)
    seen = wishes.get_wish(world.session, actor=world.actor("res_a1"), wish_id=w.id)
    assert (seen.status, seen.decision_reason) == ("declined", "物业负责维修")
    assert events_for(world, "micro_wishes", w.id)[-1].reason == "物业负责维修"


def test_people_outside_the_wishs_community_cannot_triage_it(world):
    w = wish(world)
    for name in ("sec_a2", "sec_b1", "grid_b1"):
        with pytest.raises(NotFoundError):
            wishes.decline_wish(world.session, actor=world.actor(name), wish_id=w.id,
                                reason="不行", now=NOW)
    assert reload(world, MicroWish, w.id).status == "submitted"


def test_only_its_resident_withdraws_a_wish(world):
    w = wish(world)
    with pytest.raises(PermissionDeniedError):
        wishes.withdraw_wish(world.session, actor=world.actor("sec_a1"), wish_id=w.id, now=NOW)
    with pytest.raises(NotFoundError):
        wishes.withdraw_wish(world.session, actor=world.actor("res_b1"), wish_id=w.id, now=NOW)
    assert reload(world, MicroWish, w.id).status == "submitted"
    wishes.withdraw_wish(world.session, actor=world.actor("res_a1"), wish_id=w.id, now=NOW)
    assert reload(world, MicroWish, w.id).status == "withdrawn"


def test_a_wish_already_accepted_cannot_be_withdrawn_or_declined(world):
    w = wish(world, category_id=category_id(world.session, "repairs"))
    wishes.accept_wish(world.session, actor=world.actor("sec_a1"), wish_id=w.id, demand={},
                       now=NOW)
    with pytest.raises(IllegalTransitionError):
        wishes.withdraw_wish(world.session, actor=world.actor("res_a1"), wish_id=w.id, now=NOW)
    with pytest.raises(IllegalTransitionError):
        wishes.decline_wish(world.session, actor=world.actor("sec_a1"), wish_id=w.id,
                            reason="改主意", now=NOW)
    assert reload(world, MicroWish, w.id).status == "accepted"
    assert world.session.scalar(select(func.count()).select_from(DemandItem).where(
        DemandItem.source == "micro_wish")) == 1


def test_a_withdrawn_wish_cannot_be_accepted_and_makes_no_demand(world):
    w = wish(world, category_id=category_id(world.session, "repairs"))
    wishes.withdraw_wish(world.session, actor=world.actor("res_a1"), wish_id=w.id, now=NOW)
    with pytest.raises(IllegalTransitionError):
        wishes.accept_wish(world.session, actor=world.actor("sec_a1"), wish_id=w.id, demand={},
                           now=NOW)
    assert world.session.scalar(select(func.count()).select_from(DemandItem).where(
        DemandItem.source == "micro_wish")) == 0


def test_a_resident_sees_only_their_own_wishes(world):
    w = wish(world)
    with pytest.raises(NotFoundError):
        wishes.get_wish(world.session, actor=world.actor("res_b1"), wish_id=w.id)
    page = wishes.list_wishes(world.session, actor=world.actor("res_a1"), filters={})
    assert [x.id for x in page.items] == [w.id]
