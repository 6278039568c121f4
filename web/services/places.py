"""Places: creating the subdistrict → community → grid → estate → building tree, and reading it.

Places are reference data every signed-in user may read (the public disclosure names them too);
only the people responsible for a place may change it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.models import Building, Community, Estate, Grid, Subdistrict
from web.services.base import (
    Page,
    get_or_404,
    invalid,
    like_pattern,
    paginate,
    require,
    write,
)


@write
def create_subdistrict(session: Session, *, actor: Actor, code: str, name: str) -> Subdistrict:
    """A new subdistrict (set-up by the operator through the CLI)."""
    require(actor.is_system, "subdistricts are created by the operator")
    sub = Subdistrict(code=code, name=name)
    session.add(sub)
    session.flush()
    return sub


@write
def create_community(session: Session, *, actor: Actor, subdistrict_id: int, code: str,
                     name: str, lat: float | None = None, lng: float | None = None) -> Community:
    """A new community in a subdistrict (the operator or that subdistrict's admin)."""
    get_or_404(session, Subdistrict, subdistrict_id)
    require(actor.is_system or actor.is_admin_of_subdistrict(subdistrict_id))
    community = Community(subdistrict_id=subdistrict_id, code=code, name=name, lat=lat, lng=lng,
                          auto_approve_paired_claims=False, dispatch_response_hours=24)
    session.add(community)
    session.flush()
    return community


def manages_community(actor: Actor, community: Community) -> bool:
    """The community's secretary (or the operator) keeps its places and settings."""
    return actor.is_system or actor.is_secretary_of(community.id)


# Settings changed here, with the range of each number: auto-approval of paired claims, the
# hours a dispatched unit has to answer, and the service levels — hours to accept a published
# item, days to close it, whether those clocks run on working days only, hours an overdue item
# waits at the community before it goes up to the subdistrict, and days before verified work is
# confirmed automatically; then the days of notice before points expire, and whether the
# scheduler proposes pairs for new open items on its own.
SETTINGS = {
    "auto_approve_paired_claims": None, "dispatch_response_hours": (1, 24 * 14),
    "accept_within_hours": (1, 24 * 14), "close_within_days": (1, 90),
    "sla_working_days": None, "escalate_after_hours": (1, 24 * 14),
    "auto_confirm_days": (1, 90), "expiry_notice_days": (1, 365), "auto_propose": None,
}


@write
def update_community_settings(session: Session, *, actor: Actor, community_id: int,
                              changes: dict) -> Community:
    """Change a community's settings (see SETTINGS); a 422 names a setting out of range, and
    an item must be due to be accepted no later than it is due to be closed."""
    community = get_or_404(session, Community, community_id)
    require(manages_community(actor, community), "only the community's secretary")
    for key, value in changes.items():
        _check_setting(key, value)
    accept = changes.get("accept_within_hours", community.accept_within_hours)
    close = changes.get("close_within_days", community.close_within_days)
    if accept > close * 24:
        raise invalid("accept_within_hours", "no longer than the time to close the item")
    for key, value in changes.items():
        setattr(community, key, value)
    return community


def _check_setting(key: str, value) -> None:
    if key not in SETTINGS:
        raise invalid(key, "cannot be changed here")
    limits = SETTINGS[key]
    if limits is None:
        if not isinstance(value, bool):
            raise invalid(key, "true or false")
    elif isinstance(value, bool) or not isinstance(value, int) or \
            not limits[0] <= value <= limits[1]:
        raise invalid(key, f"a whole number from {limits[0]} to {limits[1]}")


@write
def create_grid(session: Session, *, actor: Actor, community_id: int, code: str, name: str,
                parent_id: int | None = None) -> Grid:
    """A new grid, possibly nested in a parent grid of the same community."""
    community = get_or_404(session, Community, community_id)
    require(manages_community(actor, community), "only the community's secretary")
    level = 1
    if parent_id is not None:
        parent = get_or_404(session, Grid, parent_id)
        if parent.community_id != community_id:
            raise invalid("parent_id", "the parent grid is in another community")
        level = parent.level + 1
    grid = Grid(community_id=community_id, code=code, name=name, parent_id=parent_id, level=level)
    session.add(grid)
    session.flush()
    return grid


@write
def create_estate(session: Session, *, actor: Actor, community_id: int, name: str,
                  lat: float | None = None, lng: float | None = None) -> Estate:
    """A new estate (小区) in a community."""
    community = get_or_404(session, Community, community_id)
    require(manages_community(actor, community), "only the community's secretary")
    estate = Estate(community_id=community_id, name=name, lat=lat, lng=lng)
    session.add(estate)
    session.flush()
    return estate


@write
def create_building(session: Session, *, actor: Actor, estate_id: int, name: str,
                    grid_id: int | None = None) -> Building:
    """A new building (楼栋) in an estate, optionally placed in a grid of the same community."""
    estate = get_or_404(session, Estate, estate_id)
    community = get_or_404(session, Community, estate.community_id)
    require(manages_community(actor, community), "only the community's secretary")
    if grid_id is not None and get_or_404(session, Grid, grid_id).community_id != community.id:
        raise invalid("grid_id", "the grid is in another community")
    building = Building(estate_id=estate_id, name=name, grid_id=grid_id)
    session.add(building)
    session.flush()
    return building


def list_subdistricts(session: Session) -> list[Subdistrict]:
    return list(session.scalars(select(Subdistrict).order_by(Subdistrict.id)))


def get_community(session: Session, community_id: int) -> Community:
    """One community, or 404."""
    return get_or_404(session, Community, community_id)


def list_communities(session: Session, *, subdistrict_id: int | None = None, q: str | None = None,
                     page: int = 1, per_page: int = 50) -> Page:
    stmt = select(Community).order_by(Community.id)
    if subdistrict_id:
        stmt = stmt.where(Community.subdistrict_id == subdistrict_id)
    if q:
        stmt = stmt.where(Community.name.ilike(like_pattern(q), escape="\\"))
    return paginate(session, stmt, page, per_page)


def list_grids(session: Session, *, community_id: int | None = None, page: int = 1,
               per_page: int = 100) -> Page:
    stmt = select(Grid).order_by(Grid.id)
    if community_id:
        stmt = stmt.where(Grid.community_id == community_id)
    return paginate(session, stmt, page, per_page)


def list_estates(session: Session, *, community_id: int | None = None, page: int = 1,
                 per_page: int = 100) -> Page:
    stmt = select(Estate).order_by(Estate.id)
    if community_id:
        stmt = stmt.where(Estate.community_id == community_id)
    return paginate(session, stmt, page, per_page)


def list_buildings(session: Session, *, estate_id: int | None = None, grid_id: int | None = None,
                   page: int = 1, per_page: int = 100) -> Page:
    stmt = select(Building).order_by(Building.id)
    if estate_id:
        stmt = stmt.where(Building.estate_id == estate_id)
    if grid_id:
        stmt = stmt.where(Building.grid_id == grid_id)
    return paginate(session, stmt, page, per_page)


def child_grid_ids(session: Session, grid_ids: set[int]) -> set[int]:
    """The grids and every grid nested below them."""
    found, frontier = set(grid_ids), set(grid_ids)
    while frontier:
        frontier = set(session.scalars(select(Grid.id).where(Grid.parent_id.in_(frontier)))) - found
        found |= frontier
    return found
