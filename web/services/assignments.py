"""Claims (自主选单) and dispatches (社区派单): a unit's share of a demand, from offer to completion.

Quantity is taken with conditional UPDATEs (`... WHERE quantity_open >= :q`), so when many units
claim the last slot at once exactly one succeeds, on SQLite and PostgreSQL alike; a unique key
(`unit_id`, `active_demand_id`) keeps one unit from holding two active shares of one demand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session, selectinload

from matcher.rules import availability_overlaps, distance_m
from web.domain.actor import Actor
from web.domain.states import (
    ACTIVE_ASSIGNMENT,
    CONFIRMED_ASSIGNMENT,
    COVERAGE_STATES,
    AssignmentStatus,
    ResourceStatus,
    UnitStatus,
)
from web.errors import ConflictError, NotFoundError
from web.models import Assignment, Community, DemandItem, ResourceItem, Unit
from web.services import audit
from web.services.base import (
    LOCAL_TZ,
    Page,
    invalid,
    like_pattern,
    local_date,
    lock,
    need_reason,
    paginate,
    require,
    utcnow,
    write,
)
from web.services.demands import add_quantities, get_demand, roll_up_coverage
from web.services.notifications import notify, secretaries_of, unit_admins_of
from web.services.scope import overseen, scoped
from web.services.units import is_paired

A = AssignmentStatus


# ---- reads ------------------------------------------------------------------------------------

def _visible(actor: Actor) -> Select:
    conds = [Assignment.unit_id.in_(actor.admin_units)] if actor.admin_units else []
    managed = overseen(actor, DemandItem.community_id)
    if managed:
        conds.append(Assignment.demand_id.in_(select(DemandItem.id).where(or_(*managed))))
    return scoped(Assignment, conds, actor)


def get_assignment(session: Session, *, actor: Actor, assignment_id: int) -> Assignment:
    """An assignment of the actor's unit or community, else 404."""
    found = session.scalar(_visible(actor).where(Assignment.id == assignment_id))
    if found is None:
        raise NotFoundError("Assignment", assignment_id)
    return found


def list_assignments(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                     per_page: int = 20) -> Page:
    """Visible assignments, newest first, filtered by status, origin, demand, unit, community,
    the lead's share (`is_lead`), the demand's status (`demand_status`; both comma-separated for
    several) and `q` in the demand's title, the unit's name or the note. Each row comes with
    its unit and demand (and the demand's community) loaded, not one query per row."""
    stmt = _visible(actor).options(
        selectinload(Assignment.unit),
        selectinload(Assignment.demand).selectinload(DemandItem.community))
    f = filters
    if f.get("status"):
        stmt = stmt.where(Assignment.status.in_(f["status"].split(",")))
    for key in ("origin", "demand_id", "unit_id"):
        if f.get(key):
            stmt = stmt.where(getattr(Assignment, key) == f[key])
    if f.get("is_lead") is not None:
        stmt = stmt.where(Assignment.is_lead.is_(bool(f["is_lead"])))
    if f.get("community_id") or f.get("demand_status") or f.get("q"):
        stmt = stmt.join(DemandItem, DemandItem.id == Assignment.demand_id)
    if f.get("community_id"):
        stmt = stmt.where(DemandItem.community_id == f["community_id"])
    if f.get("demand_status"):
        stmt = stmt.where(DemandItem.status.in_(f["demand_status"].split(",")))
    if f.get("q"):
        like = like_pattern(f["q"])
        stmt = stmt.where(or_(
            DemandItem.title.ilike(like, escape="\\"), Assignment.note.ilike(like, escape="\\"),
            Assignment.unit_id.in_(select(Unit.id).where(Unit.name.ilike(like, escape="\\")))))
    return paginate(session, stmt.order_by(Assignment.id.desc()), page, per_page)


def _lock_for_write(session: Session, actor: Actor, assignment_id: int):
    """The visible assignment and its demand, both re-read under lock (demand first)."""
    assignment = get_assignment(session, actor=actor, assignment_id=assignment_id)
    demand = lock(session, DemandItem, assignment.demand_id)
    return lock(session, Assignment, assignment.id), demand


# ---- quantity ---------------------------------------------------------------------------------

def _take_resource(session: Session, resource: ResourceItem, quantity: int) -> None:
    stmt = (update(ResourceItem)
            .where(ResourceItem.id == resource.id, ResourceItem.quantity_remaining >= quantity)
            .values(quantity_remaining=ResourceItem.quantity_remaining - quantity)
            .execution_options(synchronize_session=False))
    if session.execute(stmt).rowcount != 1:
        raise ConflictError("the resource has not that much left", field="quantity")
    session.refresh(resource)


def _return_resource(session: Session, resource_id: int | None, quantity: int) -> None:
    if resource_id is None:
        return
    session.execute(update(ResourceItem).where(ResourceItem.id == resource_id)
                    .values(quantity_remaining=ResourceItem.quantity_remaining + quantity)
                    .execution_options(synchronize_session=False))


def _hold(session: Session, demand: DemandItem, resource: ResourceItem | None, quantity: int):
    if demand.status not in COVERAGE_STATES:
        raise ConflictError("the demand is not open for claims or dispatches",
                            status=demand.status)
    if quantity < 1:
        raise invalid("quantity", "at least 1")
    if not add_quantities(session, demand, open_delta=-quantity):
        raise ConflictError("the demand does not need that much any more",
                            field="quantity", open=demand.quantity_open)
    if resource is not None:
        _take_resource(session, resource, quantity)


def _usable_resource(session: Session, demand: DemandItem, resource_id: int, unit_id: int,
                     quantity: int, now: datetime) -> ResourceItem:
    """A published resource of the unit that may serve this demand, or a 422/409 saying why not."""
    resource = session.get(ResourceItem, resource_id)
    if resource is None or resource.unit_id != unit_id:
        raise invalid("resource_id", "not a resource item of this unit")
    if resource.status != ResourceStatus.PUBLISHED:
        raise ConflictError("the resource item is not published", field="resource_id")
    if resource.expires_on is not None and resource.expires_on < local_date(now):
        raise ConflictError("the resource item has expired", field="resource_id")
    if quantity > resource.capacity_per_occasion:
        raise invalid("quantity", f"more than the item's capacity per occasion "
                                  f"({resource.capacity_per_occasion})")
    if resource.category.code != "other" and resource.category_id != demand.category_id:
        raise invalid("resource_id", "the resource's category does not fit the demand")
    if not _serves(resource, demand):
        raise invalid("resource_id", "the demand's place is outside the resource's service area")
    if not availability_overlaps(resource.availability, _local(demand.window_start),
                                 _local(demand.window_end)):
        raise invalid("resource_id", "the resource is not available in the demand's time window")
    return resource


def _local(moment: datetime | None) -> datetime | None:
    """A moment in Asia/Shanghai, so its .date() is the local day resources are offered on."""
    return moment.astimezone(ZoneInfo(LOCAL_TZ)) if moment is not None else None


def _serves(resource: ResourceItem, demand: DemandItem) -> bool:
    if any(c.id == demand.community_id for c in resource.service_communities):
        return True
    if resource.radius_m is None or demand.lat is None or resource.lat is None:
        return False
    return distance_m(resource.lat, resource.lng, demand.lat, demand.lng) <= resource.radius_m


def _approved_unit(session: Session, unit_id: int) -> Unit:
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise invalid("unit_id", "no such unit")
    if unit.status != UnitStatus.APPROVED:
        raise ConflictError("the unit is not approved", unit_status=unit.status)
    return unit


def _new_assignment(session: Session, demand: DemandItem, **fields) -> Assignment:
    assignment = Assignment(demand_id=demand.id, active_demand_id=demand.id, **fields)
    session.add(assignment)
    session.flush()
    return assignment


# ---- who is told -------------------------------------------------------------------------------

def _tell_unit(session: Session, assignment: Assignment, demand: DemandItem, kind: str,
               now: datetime, needs_action: bool = False, **params) -> None:
    """Tell the unit's admins what became of its share (on their work page)."""
    notify(session, user_ids=unit_admins_of(session, assignment.unit_id), kind=kind,
           params={"title": demand.title, **params}, now=now, link="/unit/work",
           demand_id=demand.id, needs_action=needs_action,
           dedupe_key=f"{kind}:{assignment.id}")


def _tell_secretaries(session: Session, assignment: Assignment, demand: DemandItem, kind: str,
                      now: datetime, link: str, needs_action: bool = False, **params) -> None:
    """Tell the community's secretaries what a unit did with a share."""
    unit = session.get(Unit, assignment.unit_id)
    notify(session, user_ids=secretaries_of(session, demand.community_id), kind=kind,
           params={"title": demand.title, "unit": unit.name, **params}, now=now, link=link,
           demand_id=demand.id, needs_action=needs_action,
           dedupe_key=f"{kind}:{assignment.id}")


# ---- self-claim -------------------------------------------------------------------------------

@write
def claim_demand(session: Session, *, actor: Actor, demand_id: int, unit_id: int,
                 resource_id: int, quantity: int, note: str | None = None,
                 now: datetime | None = None) -> Assignment:
    """A unit claims part of a published demand with one of its resource items."""
    now = now or utcnow()
    require(actor.is_unit_admin_of(unit_id), "only the unit's admin claims for it")
    demand = lock(session, DemandItem, get_demand(session, actor=actor, demand_id=demand_id).id)
    _approved_unit(session, unit_id)
    if session.scalar(select(Assignment.id).where(Assignment.unit_id == unit_id,
                                                  Assignment.active_demand_id == demand.id)):
        raise ConflictError("your unit already holds an open claim on this demand")
    resource = _usable_resource(session, demand, resource_id, unit_id, quantity, now)
    _hold(session, demand, resource, quantity)
    claim = _new_assignment(session, demand, unit_id=unit_id, resource_id=resource.id,
                            quantity=quantity, origin="claim", status=str(A.PENDING), note=note,
                            created_by=actor.user_id, created_at=now)
    audit.record(session, entity_type="assignments", entity_id=claim.id, demand_id=demand.id,
                 action="claimed", actor=actor, now=now, to_status=claim.status,
                 data={"unit_id": unit_id, "quantity": quantity, "resource_id": resource.id})
    community = session.get(Community, demand.community_id)
    if community.auto_approve_paired_claims and is_paired(session, unit_id, community.id,
                                                          local_date(now)):
        _confirm(session, claim, A.APPROVED, actor=actor, now=now,
                 reason="auto-approved: the unit is paired with the community",
                 data={"automatic": True})
        _tell_unit(session, claim, demand, "claim_approved", now)
    else:
        _tell_secretaries(session, claim, demand, "claim_pending", now, "/secretary",
                          needs_action=True)
    return claim


def _confirm(session: Session, assignment: Assignment, target: A, *, actor: Actor,
             now: datetime, reason: str | None = None, data: dict | None = None) -> None:
    demand = session.get(DemandItem, assignment.demand_id)
    if demand.status not in COVERAGE_STATES:
        raise ConflictError("work on this demand has started; the team can no longer change",
                            status=demand.status)
    add_quantities(session, demand, confirmed_delta=assignment.quantity)
    if demand.accepted_at is None:  # the first unit to take the item on meets the accept clock
        demand.accepted_at = now
    audit.transition(session, assignment, target, actor=actor, now=now, reason=reason, data=data)
    assignment.decided_at = now
    session.flush()
    roll_up_coverage(session, demand, actor=actor, now=now)


def _secretary_of_demand(session: Session, actor: Actor, assignment: Assignment) -> DemandItem:
    demand = session.get(DemandItem, assignment.demand_id)
    require(actor.is_secretary_of(demand.community_id), "only the community's secretary")
    return demand


@write
def approve_claim(session: Session, *, actor: Actor, assignment_id: int,
                  now: datetime | None = None) -> Assignment:
    """The secretary approves a pending claim."""
    now = now or utcnow()
    claim, demand = _lock_for_write(session, actor, assignment_id)
    _secretary_of_demand(session, actor, claim)
    _confirm(session, claim, A.APPROVED, actor=actor, now=now)
    _tell_unit(session, claim, demand, "claim_approved", now)
    return claim


@write
def reject_claim(session: Session, *, actor: Actor, assignment_id: int, reason: str | None,
                 now: datetime | None = None) -> Assignment:
    """The secretary rejects a pending claim, with a reason; its quantity reopens."""
    now = now or utcnow()
    claim, demand = _lock_for_write(session, actor, assignment_id)
    _secretary_of_demand(session, actor, claim)
    reason = need_reason(reason)
    end_assignment(session, claim, A.REJECTED, actor=actor, now=now, reason=reason)
    _tell_unit(session, claim, demand, "claim_rejected", now, reason=reason)
    return claim


@write
def withdraw_claim(session: Session, *, actor: Actor, assignment_id: int,
                   reason: str | None = None, now: datetime | None = None) -> Assignment:
    """The unit withdraws a claim still waiting for approval."""
    now = now or utcnow()
    claim, _ = _lock_for_write(session, actor, assignment_id)
    require(actor.is_unit_admin_of(claim.unit_id), "only the unit's admin")
    end_assignment(session, claim, A.WITHDRAWN, actor=actor, now=now, reason=reason)
    return claim


# ---- dispatch ---------------------------------------------------------------------------------

@write
def dispatch_demand(session: Session, *, actor: Actor, demand_id: int, unit_id: int,
                    quantity: int, resource_id: int | None = None, response_hours: int | None = None,
                    note: str | None = None, now: datetime | None = None) -> Assignment:
    """The secretary assigns a demand, or part of it, to a unit, which has until a deadline to answer."""
    return dispatch_in_transaction(session, actor=actor, demand_id=demand_id, unit_id=unit_id,
                                   quantity=quantity, resource_id=resource_id,
                                   response_hours=response_hours, note=note, now=now)


def dispatch_in_transaction(session: Session, *, actor: Actor, demand_id: int, unit_id: int,
                            quantity: int, resource_id: int | None = None,
                            response_hours: int | None = None, note: str | None = None,
                            now: datetime | None = None) -> Assignment:
    """The body of `dispatch_demand`, inside a transaction its caller owns (approving a proposal)."""
    now = now or utcnow()
    demand = lock(session, DemandItem, get_demand(session, actor=actor, demand_id=demand_id).id)
    require(actor.is_secretary_of(demand.community_id), "only the community's secretary")
    _approved_unit(session, unit_id)
    if session.scalar(select(Assignment.id).where(Assignment.unit_id == unit_id,
                                                  Assignment.active_demand_id == demand.id)):
        raise ConflictError("this unit already holds an open share of this demand")
    resource = None
    if resource_id is not None:
        resource = _usable_resource(session, demand, resource_id, unit_id, quantity, now)
    _hold(session, demand, resource, quantity)
    hours = response_hours
    if hours is None:
        hours = session.get(Community, demand.community_id).dispatch_response_hours
    if hours < 1:
        raise invalid("response_hours", "at least 1")
    dispatch = _new_assignment(session, demand, unit_id=unit_id, resource_id=resource_id,
                               quantity=quantity, origin="dispatch", status=str(A.OFFERED),
                               response_deadline=now + timedelta(hours=hours), note=note,
                               created_by=actor.user_id, created_at=now)
    audit.record(session, entity_type="assignments", entity_id=dispatch.id, demand_id=demand.id,
                 action="dispatched", actor=actor, now=now, to_status=dispatch.status,
                 data={"unit_id": unit_id, "quantity": quantity,
                       "response_deadline": dispatch.response_deadline.isoformat()})
    _tell_unit(session, dispatch, demand, "dispatch_offered", now, needs_action=True,
               deadline_at=dispatch.response_deadline.isoformat())
    return dispatch


@write
def accept_dispatch(session: Session, *, actor: Actor, assignment_id: int,
                    resource_id: int | None = None, now: datetime | None = None) -> Assignment:
    """The unit accepts a dispatch before its deadline, optionally naming the resource it uses."""
    now = now or utcnow()
    dispatch, demand = _lock_for_write(session, actor, assignment_id)
    require(actor.is_unit_admin_of(dispatch.unit_id), "only the unit's admin")
    if dispatch.status == A.OFFERED and dispatch.response_deadline and \
            dispatch.response_deadline < now:
        raise ConflictError("the time to answer this dispatch has passed",
                            deadline=dispatch.response_deadline.isoformat())
    if resource_id is not None and dispatch.resource_id is None and dispatch.status == A.OFFERED:
        resource = _usable_resource(session, demand, resource_id, dispatch.unit_id,
                                    dispatch.quantity, now)
        _take_resource(session, resource, dispatch.quantity)
        dispatch.resource_id = resource.id
    _confirm(session, dispatch, A.ACCEPTED, actor=actor, now=now)
    _tell_secretaries(session, dispatch, demand, "dispatch_accepted", now,
                      f"/demands/{demand.id}")
    return dispatch


@write
def decline_dispatch(session: Session, *, actor: Actor, assignment_id: int, reason: str | None,
                     now: datetime | None = None) -> Assignment:
    """The unit declines a dispatch, with a reason; its quantity reopens."""
    now = now or utcnow()
    dispatch, demand = _lock_for_write(session, actor, assignment_id)
    require(actor.is_unit_admin_of(dispatch.unit_id), "only the unit's admin")
    reason = need_reason(reason)
    end_assignment(session, dispatch, A.DECLINED, actor=actor, now=now, reason=reason)
    _tell_secretaries(session, dispatch, demand, "dispatch_declined", now,
                      f"/demands/{demand.id}", reason=reason)
    return dispatch


@write
def recall_assignment(session: Session, *, actor: Actor, assignment_id: int, reason: str | None,
                      now: datetime | None = None) -> Assignment:
    """The secretary recalls a dispatch (or a confirmed share) before work starts, with a reason."""
    now = now or utcnow()
    assignment, _ = _lock_for_write(session, actor, assignment_id)
    _secretary_of_demand(session, actor, assignment)
    end_assignment(session, assignment, A.RECALLED, actor=actor, now=now,
                   reason=need_reason(reason))
    return assignment


@write
def release_assignment(session: Session, *, actor: Actor, assignment_id: int, reason: str | None,
                       now: datetime | None = None) -> Assignment:
    """The unit gives back a confirmed share before work starts, with a reason."""
    now = now or utcnow()
    assignment, _ = _lock_for_write(session, actor, assignment_id)
    require(actor.is_unit_admin_of(assignment.unit_id), "only the unit's admin")
    end_assignment(session, assignment, A.RELEASED, actor=actor, now=now,
                   reason=need_reason(reason))
    return assignment


def end_assignment(session: Session, assignment: Assignment, target: A, *, actor: Actor,
                   now: datetime, reason: str | None, roll_up: bool = True) -> None:
    """End an active assignment: give its quantity back to the demand and the resource."""
    demand = session.get(DemandItem, assignment.demand_id)
    was_confirmed = assignment.status in CONFIRMED_ASSIGNMENT
    if assignment.status in ACTIVE_ASSIGNMENT and target != A.CANCELLED and \
            demand.status not in COVERAGE_STATES:
        raise ConflictError("work on this demand has started; the team can no longer change",
                            status=demand.status)
    audit.transition(session, assignment, target, actor=actor, now=now, reason=reason)
    assignment.active_demand_id = None
    assignment.decided_at = now
    assignment.is_lead = False
    session.flush()
    add_quantities(session, demand, open_delta=assignment.quantity,
                   confirmed_delta=-assignment.quantity if was_confirmed else 0)
    _return_resource(session, assignment.resource_id, assignment.quantity)
    if roll_up:
        roll_up_coverage(session, demand, actor=actor, now=now)


def close_open_offers(session: Session, demand: DemandItem, *, actor: Actor, now: datetime) -> None:
    """When work starts, pending claims and unanswered dispatches are cancelled: the team is set."""
    for assignment in session.scalars(select(Assignment).where(
            Assignment.demand_id == demand.id,
            Assignment.status.in_([str(A.PENDING), str(A.OFFERED)]))):
        end_assignment(session, assignment, A.CANCELLED, actor=actor, now=now,
                       reason="work on the demand started without this share", roll_up=False)


def complete_assignments(session: Session, demand_id: int, *, actor: Actor, now: datetime) -> None:
    """Mark every confirmed share of a verified demand completed."""
    for assignment in session.scalars(select(Assignment).where(
            Assignment.demand_id == demand_id,
            Assignment.status.in_([str(s) for s in CONFIRMED_ASSIGNMENT]))):
        audit.transition(session, assignment, A.COMPLETED, actor=actor, now=now)
        assignment.active_demand_id = None
