"""Demand items (需求清单): recording, publishing, visibility, coverage roll-up, confirmation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, select, update
from sqlalchemy.orm import Session, selectinload

from web.domain.actor import Actor
from web.domain.states import (
    CONFIRMED_ASSIGNMENT,
    COVERAGE_STATES,
    AssignmentStatus,
    DemandStatus,
    coverage_status,
)
from web.errors import ConflictError, NotFoundError
from web.models import Assignment, Building, Community, DemandItem, Grid, Unit
from web.models.lists import URGENCY_RANK
from web.models.types import tag_pattern
from web.services import audit, service_levels
from web.services.base import (
    Page,
    filter_text_and_dates,
    invalid,
    lock,
    need_reason,
    paginate,
    require,
    utcnow,
    write,
)
from web.services.categories import active_category
from web.services.places import child_grid_ids
from web.services.scope import handled_demands, scoped

URGENCIES = ("normal", "urgent", "critical")
SOURCES = ("grid_worker", "secretary", "micro_wish")
EDITABLE = {
    "grid_id", "building_id", "category_id", "title", "description", "required_skills",
    "window_start", "window_end", "deadline", "urgency", "beneficiaries_count",
    "beneficiary_name", "beneficiary_phone", "beneficiary_address", "lat", "lng",
    "beneficiary_vulnerable",
}
HIDDEN_FROM_UNITS = (DemandStatus.DRAFT, DemandStatus.CANCELLED)


# ---- visibility -------------------------------------------------------------------------------

def _visible(session: Session, actor: Actor) -> Select:
    """Demands the actor may read: their community's, their grid's, the units' board, their own."""
    conds = handled_demands(session, actor)
    if actor.admin_units:
        # The demand board: every published demand, and any demand the unit works on.
        conds.append(DemandItem.status.not_in([str(s) for s in HIDDEN_FROM_UNITS]))
        conds.append(DemandItem.id.in_(select(Assignment.demand_id).where(
            Assignment.unit_id.in_(actor.admin_units))))
    return scoped(DemandItem, conds, actor)


def get_demand(session: Session, *, actor: Actor, demand_id: int) -> DemandItem:
    """A demand the actor may read, else 404."""
    demand = session.scalar(_visible(session, actor).where(DemandItem.id == demand_id))
    if demand is None:
        raise NotFoundError("DemandItem", demand_id)
    return demand


def contact_visible_ids(session: Session, actor: Actor, demands: list[DemandItem]) -> set[int]:
    """Which of `demands` the actor may see the beneficiary's contact on: the secretary, the
    grid worker, units with a confirmed share, the beneficiary — one query for a whole page."""
    visible = {d.id for d in demands if actor.is_secretary_of(d.community_id)
               or (actor.user_id is not None and actor.user_id == d.beneficiary_user_id)}
    if actor.grid_worker_grids:
        grids = child_grid_ids(session, actor.grid_worker_grids)
        visible |= {d.id for d in demands if d.grid_id in grids}
    rest = [d.id for d in demands if d.id not in visible]
    if actor.admin_units and rest:
        visible |= set(session.scalars(select(Assignment.demand_id).where(
            Assignment.demand_id.in_(rest), Assignment.unit_id.in_(actor.admin_units),
            Assignment.status.in_([str(s) for s in CONFIRMED_ASSIGNMENT | {
                AssignmentStatus.COMPLETED}]))))
    return visible


def list_demands(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                 per_page: int = 20, sort: str = "-created_at",
                 now: datetime | None = None, with_names: bool = True) -> Page:
    """Visible demands, filtered by status, category, community, grid, unit, skill, text, dates,
    service-level state at `now` (`sla_state`: red, amber) and escalation level (at least).

    `with_names` loads each row's community and category with the page (two queries in all),
    for pages that show their names; the API, which shows ids, leaves it off."""
    f = filters
    if f.get("community_id") and actor.is_secretary_of(f["community_id"]):
        # The secretary reads all of her community's list: the community filter below says it
        # alone, and the index on it answers (visibility's OR over other columns would not).
        stmt = select(DemandItem)
    else:
        stmt = _visible(session, actor)
    for key in ("category_id", "community_id", "grid_id", "urgency", "source"):
        if f.get(key):
            stmt = stmt.where(getattr(DemandItem, key) == f[key])
    if f.get("status"):
        stmt = stmt.where(DemandItem.status.in_(f["status"].split(",")))
    if f.get("unit_id"):
        stmt = stmt.where(DemandItem.id.in_(select(Assignment.demand_id).where(
            Assignment.unit_id == f["unit_id"])))
    if f.get("skill"):
        stmt = stmt.where(DemandItem.required_skills.like(tag_pattern(f["skill"]), escape="\\"))
    if f.get("sla_state"):
        stmt = stmt.where(service_levels.sla_condition(session, f["sla_state"].split(","),
                                                       now or utcnow()))
    if f.get("escalation_level") is not None:
        stmt = stmt.where(DemandItem.escalation_level >= f["escalation_level"])
    stmt = filter_text_and_dates(stmt, DemandItem, f)
    if f.get("claimable"):
        stmt = stmt.where(DemandItem.quantity_open > 0,
                          DemandItem.status.in_([str(s) for s in COVERAGE_STATES]))
        if actor.admin_units:  # not what the actor's own unit already holds a share of
            stmt = stmt.where(DemandItem.id.not_in(select(Assignment.active_demand_id).where(
                Assignment.unit_id.in_(actor.admin_units),
                Assignment.active_demand_id.is_not(None))))
    if with_names:
        stmt = stmt.options(selectinload(DemandItem.community), selectinload(DemandItem.category))
    return paginate(session, _sorted(stmt, sort), page, per_page)


def _sorted(stmt: Select, sort: str) -> Select:
    """`stmt` in the order asked for: a column, urgency, or the next due time (none last)."""
    desc, name = sort.startswith("-"), sort.lstrip("-")
    if name == "next_due":
        due = service_levels.next_due_sql()
        return stmt.order_by(due.is_(None), due.desc() if desc else due.asc(), DemandItem.id)
    column = URGENCY_RANK if name == "urgency" else getattr(DemandItem, name)
    return stmt.order_by(column.desc() if desc else column.asc(), DemandItem.id)


def history(session: Session, *, actor: Actor, demand_id: int):
    """The full audit trail of a demand, for the people who handle it.

    A unit that merely sees the demand on the board does not see other units' claims in it.
    """
    demand = get_demand(session, actor=actor, demand_id=demand_id)
    require(_handles(session, actor, demand), "only people handling this demand read its history")
    return audit.list_history(session, demand_id)


def _handles(session: Session, actor: Actor, demand: DemandItem) -> bool:
    """Staff over the demand, its beneficiary, or a unit that has had a share of it."""
    conds = handled_demands(session, actor)
    if actor.admin_units:
        conds.append(DemandItem.id.in_(select(Assignment.demand_id).where(
            Assignment.unit_id.in_(actor.admin_units))))
    stmt = scoped(DemandItem, conds, actor).where(DemandItem.id == demand.id)
    return session.scalar(stmt.with_only_columns(DemandItem.id)) is not None


def in_grid_scope(session: Session, actor: Actor, grid_id: int | None) -> bool:
    """Whether `grid_id` is one of the actor's grids or nested below one."""
    return grid_id is not None and bool(actor.grid_worker_grids) and \
        grid_id in child_grid_ids(session, actor.grid_worker_grids)


# ---- recording and editing --------------------------------------------------------------------

def may_record_in(actor: Actor, community_id: int, grid_id: int | None) -> bool:
    """Secretaries record demands anywhere in their community, grid workers in their grid."""
    return actor.is_secretary_of(community_id) or actor.is_grid_worker_of(grid_id) \
        or actor.is_system


def _check_place(session: Session, community_id: int, grid_id, building_id) -> None:
    if grid_id is not None:
        grid = session.get(Grid, grid_id)
        if grid is None or grid.community_id != community_id:
            raise invalid("grid_id", "no such grid in this community")
    if building_id is not None:
        building = session.get(Building, building_id)
        if building is None or building.estate.community_id != community_id:
            raise invalid("building_id", "no such building in this community")


def _check_fields(demand: DemandItem) -> None:
    if demand.urgency not in URGENCIES:
        raise invalid("urgency", f"one of {', '.join(URGENCIES)}")
    if demand.window_start and demand.window_end and demand.window_end < demand.window_start:
        raise invalid("window_end", "ends before it starts")
    if demand.beneficiaries_count is not None and demand.beneficiaries_count < 0:
        raise invalid("beneficiaries_count", "cannot be negative")


def build_demand(session: Session, actor: Actor, community_id: int, data: dict, source: str,
                 now: datetime) -> DemandItem:
    """A new draft demand, checked and added to the session (no commit)."""
    if session.get(Community, community_id) is None:
        raise invalid("community_id", "no such community")
    _check_place(session, community_id, data.get("grid_id"), data.get("building_id"))
    require(may_record_in(actor, community_id, data.get("grid_id")),
            "only the community's secretary or the grid's worker")
    active_category(session, data["category_id"])
    needed = data["quantity_needed"]
    if needed < 1:
        raise invalid("quantity_needed", "at least 1")
    fields = {k: data[k] for k in EDITABLE if k in data}
    demand = DemandItem(community_id=community_id, source=source, status=str(DemandStatus.DRAFT),
                        quantity_needed=needed, quantity_open=needed, quantity_confirmed=0,
                        created_by=actor.user_id, created_at=now, updated_at=now, **fields)
    demand.required_skills = demand.required_skills or []
    demand.urgency = demand.urgency or "normal"
    demand.beneficiaries_count = demand.beneficiaries_count or 1
    demand.beneficiary_vulnerable = bool(demand.beneficiary_vulnerable)
    _check_fields(demand)
    session.add(demand)
    session.flush()
    audit.record(session, entity_type="demand_items", entity_id=demand.id, demand_id=demand.id,
                 action="created", actor=actor, now=now, to_status=demand.status,
                 data={"source": source})
    return demand


@write
def create_demand(session: Session, *, actor: Actor, community_id: int, data: dict,
                  publish: bool = False, now: datetime | None = None) -> DemandItem:
    """Record a demand (secretary, or grid worker in their grid); secretaries may publish at once."""
    now = now or utcnow()
    is_grid_worker = actor.is_grid_worker_of(data.get("grid_id"))
    source = "grid_worker" if is_grid_worker and not actor.is_secretary_of(community_id) \
        else "secretary"
    demand = build_demand(session, actor, community_id, data, source, now)
    if publish:
        _publish(session, actor, demand, now)
    return demand


def _manage(session: Session, actor: Actor, demand_id: int) -> DemandItem:
    demand = lock(session, DemandItem, get_demand(session, actor=actor, demand_id=demand_id).id)
    require(actor.is_secretary_of(demand.community_id) or actor.is_system,
            "only the community's secretary")
    return demand


@write
def update_demand(session: Session, *, actor: Actor, demand_id: int, changes: dict,
                  now: datetime | None = None) -> DemandItem:
    """Edit a demand before work starts; the quantity needed may not drop below what is held."""
    now = now or utcnow()
    demand = lock(session, DemandItem, get_demand(session, actor=actor, demand_id=demand_id).id)
    require(actor.is_secretary_of(demand.community_id)
            or (demand.status == DemandStatus.DRAFT and demand.created_by == actor.user_id),
            "only the community's secretary (or the grid worker, on their own draft)")
    if demand.status not in (DemandStatus.DRAFT, *COVERAGE_STATES):
        raise ConflictError("a demand cannot be edited once work has started",
                            status=demand.status)
    changes = dict(changes)
    unknown = set(changes) - EDITABLE - {"quantity_needed"}
    if unknown:
        raise invalid(sorted(unknown)[0], "cannot be changed here")
    grid_id = changes.get("grid_id", demand.grid_id)
    _check_place(session, demand.community_id, grid_id,
                 changes.get("building_id", demand.building_id))
    require(may_record_in(actor, demand.community_id, grid_id), "outside your grid")
    if "category_id" in changes:
        active_category(session, changes["category_id"])
    if "quantity_needed" in changes:
        _change_needed(demand, changes.pop("quantity_needed"))
    for key, value in changes.items():
        setattr(demand, key, value)
    _check_fields(demand)
    demand.updated_at = now
    audit.record(session, entity_type="demand_items", entity_id=demand.id, demand_id=demand.id,
                 action="updated", actor=actor, now=now, data={"fields": sorted(changes)})
    roll_up_coverage(session, demand, actor=actor, now=now)
    return demand


def _change_needed(demand: DemandItem, needed: int) -> None:
    held = demand.quantity_needed - demand.quantity_open
    if needed < max(held, 1):
        raise invalid("quantity_needed", f"at least {max(held, 1)} (already held by units)")
    demand.quantity_open = needed - held
    demand.quantity_needed = needed


def _publish(session: Session, actor: Actor, demand: DemandItem, now: datetime) -> None:
    require(actor.is_secretary_of(demand.community_id) or actor.is_system,
            "only the community's secretary publishes demands")
    audit.transition(session, demand, DemandStatus.OPEN, actor=actor, now=now, action="published")
    service_levels.set_due_times(session, demand, now)


@write
def publish_demand(session: Session, *, actor: Actor, demand_id: int,
                   now: datetime | None = None) -> DemandItem:
    """Put a draft on the demand list, open for claims and dispatches."""
    now = now or utcnow()
    demand = _manage(session, actor, demand_id)
    _publish(session, actor, demand, now)
    return demand


@write
def cancel_demand(session: Session, *, actor: Actor, demand_id: int, reason: str | None,
                  now: datetime | None = None) -> DemandItem:
    """Cancel a demand before it is reported; every active assignment is cancelled with it."""
    from web.services.assignments import end_assignment  # assignments imports this module

    now = now or utcnow()
    demand = _manage(session, actor, demand_id)
    reason = need_reason(reason)
    active = session.scalars(select(Assignment).where(
        Assignment.demand_id == demand.id, Assignment.active_demand_id.is_not(None)))
    for assignment in active:
        end_assignment(session, assignment, AssignmentStatus.CANCELLED, actor=actor, now=now,
                       reason=reason, roll_up=False)
    audit.transition(session, demand, DemandStatus.CANCELLED, actor=actor, now=now, reason=reason)
    return demand


# ---- coverage and the lead unit ---------------------------------------------------------------

def add_quantities(session: Session, demand: DemandItem, *, open_delta: int = 0,
                   confirmed_delta: int = 0) -> bool:
    """Move a demand's held and confirmed quantities atomically; False if not enough is open."""
    stmt = update(DemandItem).where(DemandItem.id == demand.id).values(
        quantity_open=DemandItem.quantity_open + open_delta,
        quantity_confirmed=DemandItem.quantity_confirmed + confirmed_delta,
    )
    if open_delta < 0:
        stmt = stmt.where(DemandItem.quantity_open >= -open_delta)
    done = session.execute(stmt.execution_options(synchronize_session=False)).rowcount == 1
    session.refresh(demand)
    return done


def roll_up_coverage(session: Session, demand: DemandItem, *, actor: Actor, now: datetime) -> None:
    """Move the demand between open, partly covered and covered as confirmed quantity changes."""
    if demand.status not in COVERAGE_STATES:
        return
    target = coverage_status(demand.quantity_needed, demand.quantity_confirmed)
    if target != demand.status:
        audit.transition(session, demand, target, actor=actor, now=now, action="coverage",
                         data={"confirmed": demand.quantity_confirmed,
                               "needed": demand.quantity_needed})
    ensure_lead(session, demand, actor=actor, now=now)


def confirmed_assignments(session: Session, demand_id: int) -> list[Assignment]:
    return list(session.scalars(select(Assignment).where(
        Assignment.demand_id == demand_id,
        Assignment.status.in_([str(s) for s in CONFIRMED_ASSIGNMENT]),
    ).order_by(Assignment.decided_at, Assignment.id)))


def ensure_lead(session: Session, demand: DemandItem, *, actor: Actor, now: datetime) -> None:
    """The first confirmed unit leads unless the secretary named another; a lead that left passes on."""
    confirmed = confirmed_assignments(session, demand.id)
    if not confirmed or any(a.is_lead for a in confirmed):
        return
    confirmed[0].is_lead = True
    audit.record(session, entity_type="assignments", entity_id=confirmed[0].id,
                 demand_id=demand.id, action="lead_assigned", actor=actor, now=now,
                 data={"unit_id": confirmed[0].unit_id, "automatic": True})


@write
def set_lead(session: Session, *, actor: Actor, demand_id: int, assignment_id: int,
             now: datetime | None = None) -> Assignment:
    """The secretary names the lead unit of a team (1+N) among the confirmed units."""
    now = now or utcnow()
    demand = _manage(session, actor, demand_id)
    confirmed = confirmed_assignments(session, demand.id)
    chosen = next((a for a in confirmed if a.id == assignment_id), None)
    if chosen is None:
        raise invalid("assignment_id", "not a confirmed unit of this demand")
    for a in confirmed:
        a.is_lead = a.id == chosen.id
    audit.record(session, entity_type="assignments", entity_id=chosen.id, demand_id=demand.id,
                 action="lead_assigned", actor=actor, now=now, data={"unit_id": chosen.unit_id})
    return chosen


def lead_assignment(session: Session, demand_id: int) -> Assignment | None:
    return next((a for a in confirmed_assignments(session, demand_id) if a.is_lead), None)


@write
def start_work(session: Session, *, actor: Actor, demand_id: int,
               now: datetime | None = None) -> DemandItem:
    """The lead unit marks work as started (the team is settled from here on)."""
    now = now or utcnow()
    demand = lock(session, DemandItem, get_demand(session, actor=actor, demand_id=demand_id).id)
    lead = lead_assignment(session, demand.id)
    require(lead is not None and actor.is_unit_admin_of(lead.unit_id), "only the lead unit")
    from web.services.assignments import close_open_offers  # assignments imports this module

    close_open_offers(session, demand, actor=actor, now=now)
    audit.transition(session, demand, DemandStatus.IN_PROGRESS, actor=actor, now=now,
                     action="started")
    return demand


@write
def confirm_demand(session: Session, *, actor: Actor, demand_id: int, rating: int,
                   comment: str | None = None, now: datetime | None = None) -> DemandItem:
    """The beneficiary (or the grid worker for them) confirms verified work and rates it 1–5;
    a rating of 1 or 2 is unsatisfactory: the item opens again for rework instead of closing."""
    now = now or utcnow()
    demand = lock(session, DemandItem, get_demand(session, actor=actor, demand_id=demand_id).id)
    is_beneficiary = demand.beneficiary_user_id is not None and \
        actor.user_id == demand.beneficiary_user_id
    require(is_beneficiary or in_grid_scope(session, actor, demand.grid_id),
            "only the beneficiary or their grid worker")
    if not 1 <= rating <= 5:
        raise invalid("rating", "from 1 to 5")
    if rating <= service_levels.UNSATISFACTORY:
        service_levels.reopen_for_rework(session, demand, actor=actor, rating=rating,
                                         comment=comment, on_behalf=not is_beneficiary, now=now)
        return demand
    audit.transition(session, demand, DemandStatus.CLOSED, actor=actor, now=now,
                     action="confirmed", reason=comment,
                     data={"rating": rating, "on_behalf": not is_beneficiary})
    demand.rating, demand.rating_comment = rating, comment
    demand.rated_by, demand.rated_at = actor.user_id, now
    return demand


def units_on(session: Session, demand_id: int) -> list[Unit]:
    """The units holding a confirmed share of a demand."""
    return list(session.scalars(select(Unit).join(Assignment, and_(
        Assignment.unit_id == Unit.id, Assignment.demand_id == demand_id)).where(
        Assignment.status.in_([str(s) for s in CONFIRMED_ASSIGNMENT]))))
