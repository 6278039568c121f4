"""Resource items (资源清单): what units offer, and who may see and change them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.domain.states import ResourceStatus, UnitStatus
from web.errors import ConflictError, NotFoundError
from web.models import Community, ResourceItem, Unit
from web.models.types import tag_pattern
from web.services import audit
from web.services.base import (
    Page,
    filter_text_and_dates,
    invalid,
    local_date,
    lock,
    need_reason,
    paginate,
    require,
    utcnow,
    write,
)
from web.services.categories import active_category

EDITABLE = {
    "kind", "category_id", "title", "description", "skills", "capacity_per_occasion",
    "availability", "lat", "lng", "radius_m", "value_fen_per_unit", "is_standing_offer",
    "expires_on",
}
KINDS = ("volunteer_service", "skill", "venue", "goods", "funds")


def _visible(actor: Actor) -> Select:
    if actor.is_system:
        return select(ResourceItem)
    conds = [ResourceItem.status == str(ResourceStatus.PUBLISHED)]
    if actor.admin_units:
        conds.append(ResourceItem.unit_id.in_(actor.admin_units))
    if actor.admin_subdistricts:
        conds.append(ResourceItem.unit_id.in_(select(Unit.id).where(
            Unit.subdistrict_id.in_(actor.admin_subdistricts))))
    return select(ResourceItem).where(or_(*conds))


def get_resource(session: Session, *, actor: Actor, resource_id: int) -> ResourceItem:
    """A published resource, or one of the actor's own unit or subdistrict; else 404."""
    item = session.scalar(_visible(actor).where(ResourceItem.id == resource_id))
    if item is None:
        raise NotFoundError("ResourceItem", resource_id)
    return item


def list_resources(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                   per_page: int = 20, sort: str = "-created_at") -> Page:
    """Resources the actor may see, filtered by status, kind, category, unit, community, skill, text."""
    stmt = _visible(actor)
    f = filters
    if f.get("status"):
        stmt = stmt.where(ResourceItem.status.in_(f["status"].split(",")))
    if f.get("kind"):
        stmt = stmt.where(ResourceItem.kind == f["kind"])
    if f.get("category_id"):
        stmt = stmt.where(ResourceItem.category_id == f["category_id"])
    if f.get("unit_id"):
        stmt = stmt.where(ResourceItem.unit_id == f["unit_id"])
    if f.get("community_id"):
        stmt = stmt.where(ResourceItem.service_communities.any(Community.id == f["community_id"]))
    if f.get("skill"):
        stmt = stmt.where(ResourceItem.skills.like(tag_pattern(f["skill"]), escape="\\"))
    stmt = filter_text_and_dates(stmt, ResourceItem, f)
    return paginate(session, stmt.order_by(*_order(sort)), page, per_page)


def _order(sort: str):
    desc = sort.startswith("-")
    column = getattr(ResourceItem, sort.lstrip("-"))
    return (column.desc() if desc else column.asc(), ResourceItem.id)


def _set_service_area(session: Session, item: ResourceItem, community_ids: list[int]) -> None:
    communities = list(session.scalars(select(Community).where(Community.id.in_(community_ids))))
    if len(communities) != len(set(community_ids)):
        raise invalid("service_community_ids", "unknown community")
    item.service_communities = communities


def _check(item: ResourceItem) -> None:
    if item.kind not in KINDS:
        raise invalid("kind", f"one of {', '.join(KINDS)}")
    if item.capacity_per_occasion < 1:
        raise invalid("capacity_per_occasion", "at least 1")
    if item.capacity_per_occasion > item.quantity_total:
        raise invalid("capacity_per_occasion", "more than the total quantity")
    if item.radius_m is not None and (item.lat is None or item.lng is None):
        raise invalid("radius_m", "a radius needs a location (lat, lng)")


@write
def create_resource(session: Session, *, actor: Actor, unit_id: int, data: dict,
                    service_community_ids: list[int], publish: bool = False,
                    now: datetime | None = None) -> ResourceItem:
    """A unit admin adds an item to the unit's resource list (as a draft, or published)."""
    now = now or utcnow()
    require(actor.is_unit_admin_of(unit_id), "only the unit's admin")
    unit = session.get(Unit, unit_id)
    if unit is None or unit.status != str(UnitStatus.APPROVED):
        raise ConflictError("the unit is not approved", unit_status=unit.status if unit else None)
    active_category(session, data["category_id"])
    fields = {k: data[k] for k in EDITABLE if k in data}
    item = ResourceItem(unit_id=unit_id, status=str(ResourceStatus.DRAFT), created_by=actor.user_id,
                        created_at=now, updated_at=now, quantity_total=data["quantity_total"],
                        quantity_remaining=data["quantity_total"], **fields)
    item.availability = item.availability or {}
    item.skills = item.skills or []
    _check(item)
    _set_service_area(session, item, service_community_ids)
    session.add(item)
    session.flush()
    audit.record(session, entity_type="resource_items", entity_id=item.id, action="created",
                 actor=actor, now=now, to_status=item.status)
    if publish:
        _publish(session, actor, item, now)
    return item


def _own(session: Session, actor: Actor, resource_id: int) -> ResourceItem:
    item = get_resource(session, actor=actor, resource_id=resource_id)
    require(actor.is_unit_admin_of(item.unit_id), "only the unit's admin")
    return lock(session, ResourceItem, item.id)


@write
def update_resource(session: Session, *, actor: Actor, resource_id: int, changes: dict,
                    now: datetime | None = None) -> ResourceItem:
    """Edit a draft or published item; the total may grow, or shrink by what is still unused."""
    now = now or utcnow()
    item = _own(session, actor, resource_id)
    if item.status in (ResourceStatus.EXPIRED,):
        raise ConflictError("an expired item cannot be changed")
    changes = dict(changes)
    unknown = set(changes) - EDITABLE - {"quantity_total", "service_community_ids"}
    if unknown:
        raise invalid(sorted(unknown)[0], "cannot be changed here")
    if "category_id" in changes:
        active_category(session, changes["category_id"])
    if "service_community_ids" in changes:
        _set_service_area(session, item, changes.pop("service_community_ids"))
    if "quantity_total" in changes:
        delta = changes.pop("quantity_total") - item.quantity_total
        if item.quantity_remaining + delta < 0:
            raise invalid("quantity_total", "less than what is already committed")
        item.quantity_total += delta
        item.quantity_remaining += delta
    for key, value in changes.items():
        setattr(item, key, value)
    _check(item)
    item.updated_at = now
    audit.record(session, entity_type="resource_items", entity_id=item.id, action="updated",
                 actor=actor, now=now, data={"fields": sorted(changes)})
    return item


def _publish(session: Session, actor: Actor, item: ResourceItem, now: datetime) -> None:
    if item.expires_on is not None and item.expires_on < local_date(now):
        raise invalid("expires_on", "the item has already expired")
    if not item.service_communities and item.radius_m is None:
        raise invalid("service_community_ids", "name the communities served, or a radius")
    audit.transition(session, item, ResourceStatus.PUBLISHED, actor=actor, now=now)


@write
def publish_resource(session: Session, *, actor: Actor, resource_id: int,
                     now: datetime | None = None) -> ResourceItem:
    """Publish a draft or withdrawn item so units' offers can be claimed against."""
    now = now or utcnow()
    item = _own(session, actor, resource_id)
    _publish(session, actor, item, now)
    return item


@write
def withdraw_resource(session: Session, *, actor: Actor, resource_id: int, reason: str | None,
                      now: datetime | None = None) -> ResourceItem:
    """Withdraw an item; assignments already made with it stand."""
    now = now or utcnow()
    item = _own(session, actor, resource_id)
    audit.transition(session, item, ResourceStatus.WITHDRAWN, actor=actor, now=now,
                     reason=need_reason(reason))
    return item
