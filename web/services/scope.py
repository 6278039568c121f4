"""Who sees what: the scope rules every lookup and list shares, written once.

A secretary runs a community; a subdistrict admin oversees every community of the subdistrict;
a grid worker covers a grid and the grids nested below it. Lists build their WHERE clause from
these conditions, so one rule change reaches every list.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, false, or_, select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.models import Community, DemandItem, Unit
from web.services.base import like_pattern
from web.services.places import child_grid_ids


def overseen(actor: Actor, community_id) -> list[ColumnElement]:
    """Conditions for rows whose community the actor runs as secretary or oversees as admin."""
    conds = []
    if actor.secretary_communities:
        conds.append(community_id.in_(actor.secretary_communities))
    if actor.admin_subdistricts:
        conds.append(community_id.in_(select(Community.id).where(
            Community.subdistrict_id.in_(actor.admin_subdistricts))))
    return conds


def in_grids(session: Session, actor: Actor, grid_id) -> list[ColumnElement]:
    """Conditions for rows in the actor's grids or the grids nested below them."""
    if not actor.grid_worker_grids:
        return []
    return [grid_id.in_(child_grid_ids(session, actor.grid_worker_grids))]


def handled_demands(session: Session, actor: Actor) -> list[ColumnElement]:
    """Conditions on DemandItem for the demands the actor handles as staff or beneficiary."""
    conds = overseen(actor, DemandItem.community_id) + in_grids(session, actor, DemandItem.grid_id)
    if actor.user_id is not None:
        conds.append(DemandItem.beneficiary_user_id == actor.user_id)
    return conds


def scoped(model, conds: list[ColumnElement], actor: Actor) -> Select:
    """select(model) limited to rows meeting any of `conds`; all rows for the system itself."""
    if actor.is_system:
        return select(model)
    return select(model).where(or_(*conds) if conds else false())


def item_or_unit_named(model, words: str) -> ColumnElement:
    """Rows of `model` (with demand_id and unit_id) whose item's title or unit's name holds
    `words`, taken literally: the search of every list of work between items and units."""
    like = like_pattern(words)
    return or_(model.demand_id.in_(select(DemandItem.id).where(
                   DemandItem.title.ilike(like, escape="\\"))),
               model.unit_id.in_(select(Unit.id).where(Unit.name.ilike(like, escape="\\"))))
