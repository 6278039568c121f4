"""Co-building units: applying, approval by the subdistrict admin, suspension, pairings."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.domain.states import UnitStatus
from web.errors import NotFoundError
from web.models import Community, Grid, Pairing, RoleGrant, Subdistrict, Unit, User
from web.models.people import Role, UnitType
from web.services import audit
from web.services.base import (
    Page,
    get_or_404,
    invalid,
    like_pattern,
    need_reason,
    paginate,
    require,
    utcnow,
    write,
)

EDITABLE = {"name", "contact_name", "contact_phone", "address", "description", "lat", "lng"}


@write
def apply_unit(session: Session, *, actor: Actor, subdistrict_id: int, data: dict,
               now: datetime | None = None) -> Unit:
    """A unit applies to join; the applicant becomes its admin and the subdistrict admin decides."""
    now = now or utcnow()
    require(actor.user_id is not None, "sign in to apply")
    if data.get("type") not in {t.value for t in UnitType}:
        raise invalid("type", f"one of {', '.join(t.value for t in UnitType)}")
    if session.get(Subdistrict, subdistrict_id) is None:
        raise invalid("subdistrict_id", "no such subdistrict")
    unit = Unit(subdistrict_id=subdistrict_id, status=str(UnitStatus.APPLIED), created_at=now,
                **{k: data.get(k) for k in EDITABLE | {"type"}})
    session.add(unit)
    session.flush()
    applicant = session.get(User, actor.user_id)
    applicant.grants.append(RoleGrant(role=str(Role.UNIT_ADMIN), unit_id=unit.id,
                                      subdistrict_id=subdistrict_id, created_at=now))
    audit.record(session, entity_type="units", entity_id=unit.id, action="applied", actor=actor,
                 now=now, to_status=unit.status)
    return unit


def _visible_units(actor: Actor) -> Select:
    if actor.is_system:
        return select(Unit)
    conds = [Unit.status == str(UnitStatus.APPROVED)]
    if actor.admin_subdistricts:
        conds.append(Unit.subdistrict_id.in_(actor.admin_subdistricts))
    if actor.admin_units:
        conds.append(Unit.id.in_(actor.admin_units))
    return select(Unit).where(or_(*conds))


def get_unit(session: Session, *, actor: Actor, unit_id: int) -> Unit:
    """An approved unit, or one the actor administers or oversees; else 404."""
    unit = session.scalar(_visible_units(actor).where(Unit.id == unit_id))
    if unit is None:
        raise NotFoundError("Unit", unit_id)
    return unit


def list_units(session: Session, *, actor: Actor, status: str | None = None,
               type: str | None = None, q: str | None = None, subdistrict_id: int | None = None,
               community_id: int | None = None, page: int = 1, per_page: int = 20) -> Page:
    """Units the actor may see, filterable by status, type, text, subdistrict, paired community."""
    stmt = _visible_units(actor)
    if status:
        stmt = stmt.where(Unit.status == status)
    if type:
        stmt = stmt.where(Unit.type == type)
    if q:
        stmt = stmt.where(Unit.name.ilike(like_pattern(q), escape="\\"))
    if subdistrict_id:
        stmt = stmt.where(Unit.subdistrict_id == subdistrict_id)
    if community_id:
        stmt = stmt.where(Unit.id.in_(select(Pairing.unit_id).where(
            Pairing.community_id == community_id)))
    return paginate(session, stmt.order_by(Unit.id), page, per_page)


@write
def update_unit(session: Session, *, actor: Actor, unit_id: int, changes: dict) -> Unit:
    """A unit's admin edits its name and contact details."""
    unit = get_unit(session, actor=actor, unit_id=unit_id)
    require(actor.is_unit_admin_of(unit.id), "only the unit's admin")
    for key, value in changes.items():
        if key not in EDITABLE:
            raise invalid(key, "cannot be changed here")
        setattr(unit, key, value)
    return unit


def _decide(session: Session, actor: Actor, unit_id: int, target: UnitStatus, reason: str | None,
            now: datetime | None) -> Unit:
    now = now or utcnow()
    unit = get_unit(session, actor=actor, unit_id=unit_id)
    require(actor.is_admin_of_subdistrict(unit.subdistrict_id) or actor.is_system,
            "only the subdistrict admin")
    audit.transition(session, unit, target, actor=actor, now=now, reason=reason)
    unit.status_reason = reason
    return unit


@write
def approve_unit(session: Session, *, actor: Actor, unit_id: int, now: datetime | None = None):
    """The subdistrict admin approves an application."""
    return _decide(session, actor, unit_id, UnitStatus.APPROVED, None, now)


@write
def reject_unit(session: Session, *, actor: Actor, unit_id: int, reason: str | None,
                now: datetime | None = None):
    """The subdistrict admin rejects an application, with a reason."""
    return _decide(session, actor, unit_id, UnitStatus.REJECTED, need_reason(reason), now)


@write
def suspend_unit(session: Session, *, actor: Actor, unit_id: int, reason: str | None,
                 now: datetime | None = None):
    """The subdistrict admin suspends an approved unit, with a reason."""
    return _decide(session, actor, unit_id, UnitStatus.SUSPENDED, need_reason(reason), now)


@write
def reinstate_unit(session: Session, *, actor: Actor, unit_id: int, now: datetime | None = None):
    """The subdistrict admin lifts a suspension."""
    return _decide(session, actor, unit_id, UnitStatus.APPROVED, None, now)


@write
def create_pairing(session: Session, *, actor: Actor, unit_id: int, community_id: int,
                   starts_on: date, ends_on: date | None = None, grid_id: int | None = None,
                   note: str | None = None, now: datetime | None = None) -> Pairing:
    """Record a co-building agreement (结对) between a unit and a community or one of its grids."""
    now = now or utcnow()
    unit = get_unit(session, actor=actor, unit_id=unit_id)
    community = get_or_404(session, Community, community_id)
    require(actor.is_secretary_of(community.id) or actor.is_system
            or actor.is_admin_of_subdistrict(community.subdistrict_id),
            "only the community's secretary or the subdistrict admin")
    if grid_id is not None and get_or_404(session, Grid, grid_id).community_id != community_id:
        raise invalid("grid_id", "the grid is in another community")
    if ends_on is not None and ends_on < starts_on:
        raise invalid("ends_on", "ends before it starts")
    pairing = Pairing(unit_id=unit.id, community_id=community_id, grid_id=grid_id,
                      starts_on=starts_on, ends_on=ends_on, note=note, created_by=actor.user_id,
                      created_at=now)
    session.add(pairing)
    session.flush()
    audit.record(session, entity_type="pairings", entity_id=pairing.id, action="created",
                 actor=actor, now=now, data={"unit_id": unit.id, "community_id": community_id})
    return pairing


@write
def end_pairing(session: Session, *, actor: Actor, pairing_id: int, ends_on: date,
                reason: str | None, now: datetime | None = None) -> Pairing:
    """End an agreement on a date (agreements are ended, never deleted)."""
    now = now or utcnow()
    pairing = get_or_404(session, Pairing, pairing_id)
    community = get_or_404(session, Community, pairing.community_id)
    require(actor.is_system or actor.is_secretary_of(community.id)
            or actor.is_admin_of_subdistrict(community.subdistrict_id),
            "only the community's secretary or the subdistrict admin")
    if ends_on < pairing.starts_on:
        raise invalid("ends_on", "ends before it starts")
    pairing.ends_on = ends_on
    audit.record(session, entity_type="pairings", entity_id=pairing.id, action="ended",
                 actor=actor, now=now, reason=need_reason(reason))
    return pairing


def list_pairings(session: Session, *, actor: Actor, unit_id: int | None = None,
                  community_id: int | None = None) -> list[Pairing]:
    """Pairings of units the actor can see."""
    stmt = select(Pairing).where(Pairing.unit_id.in_(_visible_units(actor).with_only_columns(
        Unit.id)))
    if unit_id:
        stmt = stmt.where(Pairing.unit_id == unit_id)
    if community_id:
        stmt = stmt.where(Pairing.community_id == community_id)
    return list(session.scalars(stmt.order_by(Pairing.id)))


def is_paired(session: Session, unit_id: int, community_id: int, day: date) -> bool:
    """Whether the unit has an agreement in force with the community (or one of its grids)."""
    pairings = session.scalars(select(Pairing).where(
        Pairing.unit_id == unit_id, Pairing.community_id == community_id))
    return any(p.active_on(day) for p in pairings)
