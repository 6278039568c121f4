"""Users and their scoped roles: who may create whom, and who may see whom."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.errors import ConflictError, NotFoundError
from web.models import Community, Grid, RoleGrant, Subdistrict, Unit, User
from web.models.people import Role
from web.services import audit
from web.services.auth import hash_password
from web.services.base import (
    Page,
    get_or_404,
    invalid,
    like_pattern,
    paginate,
    require,
    utcnow,
    write,
)

MIN_PASSWORD = 8


def _scoped_grant(session: Session, spec: dict, now: datetime) -> RoleGrant:
    """A RoleGrant for `spec` ({role, subdistrict_id|community_id|grid_id|unit_id}), scope filled in."""
    role = Role(spec["role"])
    grant = RoleGrant(role=str(role), created_at=now)
    if role == Role.SUBDISTRICT_ADMIN:
        grant.subdistrict_id = get_or_404(session, Subdistrict, _need(spec, "subdistrict_id")).id
    elif role in (Role.SECRETARY, Role.CLERK):
        community = get_or_404(session, Community, _need(spec, "community_id"))
        grant.community_id, grant.subdistrict_id = community.id, community.subdistrict_id
    elif role == Role.GRID_WORKER:
        grid = get_or_404(session, Grid, _need(spec, "grid_id"))
        grant.grid_id, grant.community_id = grid.id, grid.community_id
        grant.subdistrict_id = grid.community.subdistrict_id
    elif role == Role.UNIT_ADMIN:
        unit = get_or_404(session, Unit, _need(spec, "unit_id"))
        grant.unit_id, grant.subdistrict_id = unit.id, unit.subdistrict_id
    elif role == Role.RESIDENT:
        community = get_or_404(session, Community, _need(spec, "community_id"))
        grant.community_id, grant.subdistrict_id = community.id, community.subdistrict_id
        if spec.get("grid_id") is not None:
            grid = get_or_404(session, Grid, spec["grid_id"])
            if grid.community_id != community.id:
                raise invalid("grid_id", "the grid is not in this community")
            grant.grid_id = grid.id
    return grant


def _need(spec: dict, key: str):
    if spec.get(key) is None:
        raise invalid(key, f"required for the role {spec['role']}")
    return spec[key]


def may_grant(actor: Actor, grant: RoleGrant) -> bool:
    """Whether `actor` may give `grant` to someone: only within their own scope."""
    if actor.is_system:
        return True
    role = Role(grant.role)
    if grant.subdistrict_id in actor.admin_subdistricts:
        return True  # a subdistrict admin staffs their whole subdistrict
    if role in (Role.GRID_WORKER, Role.CLERK, Role.RESIDENT):
        return grant.community_id in actor.secretary_communities
    if role == Role.UNIT_ADMIN:
        return grant.unit_id in actor.admin_units
    return False


@write
def create_user(
    session: Session,
    *,
    actor: Actor,
    username: str,
    password: str,
    display_name: str,
    phone: str | None = None,
    locale: str = "zh_CN",
    roles: list[dict] | None = None,
    now: datetime | None = None,
) -> User:
    """Create a user with the given roles; each role must lie within the actor's own scope."""
    now = now or utcnow()
    if len(password) < MIN_PASSWORD:
        raise invalid("password", f"at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ConflictError(f"the username '{username}' is taken", field="username")
    grants = [_scoped_grant(session, spec, now) for spec in roles or []]
    require(actor.is_system or bool(grants), "give the new user a role within your scope")
    for grant in grants:
        require(may_grant(actor, grant), f"you may not grant the role {grant.role} there")
    user = User(
        username=username,
        display_name=display_name,
        phone=phone,
        locale=locale,
        password_hash=hash_password(password),
        created_at=now,
        grants=grants,
    )
    session.add(user)
    session.flush()
    audit.record(session, entity_type="users", entity_id=user.id, action="created", actor=actor,
                 now=now, data={"roles": [g.role for g in grants]})
    return user


@write
def grant_role(session: Session, *, actor: Actor, user_id: int, spec: dict,
               now: datetime | None = None) -> RoleGrant:
    """Give an existing, visible user one more role within the actor's scope."""
    now = now or utcnow()
    user = get_user(session, actor=actor, user_id=user_id)
    grant = _scoped_grant(session, spec, now)
    require(may_grant(actor, grant), f"you may not grant the role {grant.role} there")
    user.grants.append(grant)
    session.flush()
    audit.record(session, entity_type="users", entity_id=user.id, action="role_granted",
                 actor=actor, now=now, data={"role": grant.role, "grant_id": grant.id})
    return grant


@write
def revoke_role(session: Session, *, actor: Actor, user_id: int, grant_id: int,
                now: datetime | None = None) -> None:
    """Take a role away; only someone who could have granted it may."""
    now = now or utcnow()
    user = get_user(session, actor=actor, user_id=user_id)
    grant = next((g for g in user.grants if g.id == grant_id), None)
    if grant is None:
        raise invalid("grant_id", "no such role on this user")
    require(may_grant(actor, grant), "you may not revoke this role")
    user.grants.remove(grant)
    audit.record(session, entity_type="users", entity_id=user.id, action="role_revoked",
                 actor=actor, now=now, data={"role": grant.role, "grant_id": grant_id})


def _visible_users(actor: Actor) -> Select:
    if actor.is_system:
        return select(User)
    conds = [User.id == actor.user_id]
    scoped = select(RoleGrant.user_id)
    if actor.admin_subdistricts:
        conds.append(User.id.in_(scoped.where(
            RoleGrant.subdistrict_id.in_(actor.admin_subdistricts))))
    if actor.secretary_communities:
        conds.append(User.id.in_(scoped.where(
            RoleGrant.community_id.in_(actor.secretary_communities))))
    if actor.admin_units:
        conds.append(User.id.in_(scoped.where(RoleGrant.unit_id.in_(actor.admin_units))))
    return select(User).where(or_(*conds))


def get_user(session: Session, *, actor: Actor, user_id: int) -> User:
    """A user the actor may see (themselves, or people within their scope), else 404."""
    user = session.scalar(_visible_users(actor).where(User.id == user_id))
    if user is None:
        raise NotFoundError("User", user_id)
    return user


def list_users(session: Session, *, actor: Actor, q: str | None = None, role: str | None = None,
               page: int = 1, per_page: int = 20) -> Page:
    """Users within the actor's scope, filterable by text and role."""
    stmt = _visible_users(actor)
    if q:
        like = like_pattern(q)
        stmt = stmt.where(or_(User.username.ilike(like, escape="\\"),
                              User.display_name.ilike(like, escape="\\")))
    if role:
        stmt = stmt.where(User.id.in_(select(RoleGrant.user_id).where(RoleGrant.role == role)))
    return paginate(session, stmt.order_by(User.id), page, per_page)
