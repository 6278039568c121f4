"""Micro-wishes (微心愿): a resident's small wish, turned into a demand or declined with a reason."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.domain.states import WishStatus
from web.errors import NotFoundError
from web.models import MicroWish, RoleGrant, User
from web.models.people import Role
from web.services import audit
from web.services.base import (
    Page,
    filter_text_and_dates,
    invalid,
    need_reason,
    paginate,
    require,
    utcnow,
    write,
)
from web.services.demands import _publish, build_demand
from web.services.notifications import notify
from web.services.scope import in_grids, overseen, scoped


@write
def submit_wish(session: Session, *, actor: Actor, title: str, description: str = "",
                category_id: int | None = None, now: datetime | None = None) -> MicroWish:
    """A resident submits a micro-wish to their home community and grid."""
    now = now or utcnow()
    home = session.scalar(select(RoleGrant).where(RoleGrant.user_id == actor.user_id,
                                                  RoleGrant.role == str(Role.RESIDENT)))
    require(home is not None, "only residents submit micro-wishes")
    if not title.strip():
        raise invalid("title", "required")
    wish = MicroWish(resident_id=actor.user_id, community_id=home.community_id,
                     grid_id=home.grid_id, category_id=category_id, title=title.strip(),
                     description=description, status=str(WishStatus.SUBMITTED), created_at=now)
    session.add(wish)
    session.flush()
    audit.record(session, entity_type="micro_wishes", entity_id=wish.id, action="submitted",
                 actor=actor, now=now, to_status=wish.status)
    return wish


def _visible(session: Session, actor: Actor) -> Select:
    conds = [MicroWish.resident_id == actor.user_id,
             *overseen(actor, MicroWish.community_id),
             *in_grids(session, actor, MicroWish.grid_id)]
    return scoped(MicroWish, conds, actor)


def get_wish(session: Session, *, actor: Actor, wish_id: int) -> MicroWish:
    wish = session.scalar(_visible(session, actor).where(MicroWish.id == wish_id))
    if wish is None:
        raise NotFoundError("MicroWish", wish_id)
    return wish


def list_wishes(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                per_page: int = 20) -> Page:
    """Visible wishes, newest first: by status (comma-separated for several), community, grid,
    category, the actor's own (`mine`), `q` in the title or description, and the dates sent."""
    stmt = _visible(session, actor)
    if filters.get("status"):
        stmt = stmt.where(MicroWish.status.in_(str(filters["status"]).split(",")))
    for key in ("community_id", "grid_id", "category_id"):
        if filters.get(key):
            stmt = stmt.where(getattr(MicroWish, key) == filters[key])
    if filters.get("mine"):
        stmt = stmt.where(MicroWish.resident_id == actor.user_id)
    stmt = filter_text_and_dates(stmt, MicroWish, filters)
    return paginate(session, stmt.order_by(MicroWish.id.desc()), page, per_page)


def _triage(session: Session, actor: Actor, wish_id: int) -> MicroWish:
    wish = get_wish(session, actor=actor, wish_id=wish_id)
    require(actor.is_secretary_of(wish.community_id) or actor.is_grid_worker_of(wish.grid_id),
            "only the community's secretary or the grid's worker")
    return wish


@write
def accept_wish(session: Session, *, actor: Actor, wish_id: int, demand: dict,
                publish: bool = False, now: datetime | None = None):
    """Turn a micro-wish into a demand item (the resident is its beneficiary)."""
    now = now or utcnow()
    wish = _triage(session, actor, wish_id)
    resident = session.get(User, wish.resident_id)
    data = {"title": wish.title, "description": wish.description, "grid_id": wish.grid_id,
            "category_id": wish.category_id, "quantity_needed": 1,
            "beneficiary_name": resident.display_name, "beneficiary_phone": resident.phone,
            **demand}
    if data.get("category_id") is None:
        raise invalid("category_id", "choose a category for the demand")
    item = build_demand(session, actor, wish.community_id, data, "micro_wish", now)
    item.beneficiary_user_id = resident.id
    wish.demand_id, wish.decided_by, wish.decided_at = item.id, actor.user_id, now
    audit.transition(session, wish, WishStatus.ACCEPTED, actor=actor, now=now,
                     data={"demand_id": item.id})
    if publish:
        _publish(session, actor, item, now)
    _tell_resident(session, wish, "wish_accepted", now)
    return wish, item


def _tell_resident(session: Session, wish: MicroWish, kind: str, now: datetime,
                   **params) -> None:
    """Tell the resident what became of their wish (on the wish's own page)."""
    notify(session, user_ids=[wish.resident_id], kind=kind, now=now,
           params={"title": wish.title, **params}, link=f"/me/wishes/{wish.id}",
           demand_id=wish.demand_id, dedupe_key=f"{kind}:{wish.id}")


@write
def decline_wish(session: Session, *, actor: Actor, wish_id: int, reason: str | None,
                 now: datetime | None = None) -> MicroWish:
    """Decline a micro-wish with a reason the resident sees."""
    now = now or utcnow()
    wish = _triage(session, actor, wish_id)
    reason = need_reason(reason)
    audit.transition(session, wish, WishStatus.DECLINED, actor=actor, now=now, reason=reason)
    wish.decision_reason, wish.decided_by, wish.decided_at = reason, actor.user_id, now
    _tell_resident(session, wish, "wish_declined", now, reason=reason)
    return wish


@write
def withdraw_wish(session: Session, *, actor: Actor, wish_id: int,
                  now: datetime | None = None) -> MicroWish:
    """The resident withdraws a wish nobody has acted on yet."""
    now = now or utcnow()
    wish = get_wish(session, actor=actor, wish_id=wish_id)
    require(wish.resident_id == actor.user_id, "only the resident who made the wish")
    audit.transition(session, wish, WishStatus.WITHDRAWN, actor=actor, now=now)
    return wish
