"""Passwords (Argon2id), bearer tokens, and loading the acting user with their grants."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from web.domain.actor import Actor, Grant
from web.errors import AuthenticationError
from web.models import ApiToken, RoleGrant, User
from web.models.people import Role
from web.services.base import utcnow, write

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# A real hash to verify against when the user does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash("linli-dummy-password")


def hash_password(password: str) -> str:
    """An Argon2id hash of `password`."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash`."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, username: str, password: str) -> User:
    """The active user with these credentials, or AuthenticationError."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise AuthenticationError("wrong username or password")
    if not verify_password(user.password_hash, password) or not user.is_active:
        raise AuthenticationError("wrong username or password")
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@write
def issue_token(
    session: Session, user: User, *, ttl_hours: int, now: datetime | None = None
) -> tuple[str, ApiToken]:
    """A new bearer token for `user`; only its digest is stored."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        token_hash=_digest(token),
        created_at=now,
        expires_at=now + timedelta(hours=ttl_hours),
    )
    session.add(row)
    return token, row


@write
def revoke_token(session: Session, token: str, *, now: datetime | None = None) -> None:
    """Revoke a bearer token (logout for API clients)."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = now or utcnow()


def actor_for(user: User) -> Actor:
    """The Actor (user id and scoped grants) for a loaded user."""
    return Actor(
        user_id=user.id,
        grants=tuple(
            Grant(
                role=Role(g.role),
                subdistrict_id=g.subdistrict_id,
                community_id=g.community_id,
                grid_id=g.grid_id,
                unit_id=g.unit_id,
            )
            for g in user.grants
        ),
    )


def _actor_rows(stmt):
    """The columns an Actor is built from: the user and each grant (outer-joined, in id order),
    so one query reads both."""
    return (stmt.add_columns(User.id.label("actor_user_id"), User.is_active, RoleGrant.role,
                             RoleGrant.subdistrict_id, RoleGrant.community_id,
                             RoleGrant.grid_id, RoleGrant.unit_id)
            .outerjoin(RoleGrant, RoleGrant.user_id == User.id).order_by(RoleGrant.id))


def _actor_of(rows) -> Actor:
    return Actor(user_id=rows[0].actor_user_id, grants=tuple(
        Grant(role=Role(r.role), subdistrict_id=r.subdistrict_id, community_id=r.community_id,
              grid_id=r.grid_id, unit_id=r.unit_id) for r in rows if r.role is not None))


def actor_for_token(session: Session, token: str, *, now: datetime | None = None) -> Actor:
    """The Actor a live bearer token belongs to — token, user and grants read in one query, on
    every API request — or AuthenticationError."""
    now = now or utcnow()
    rows = session.execute(_actor_rows(
        select(ApiToken.revoked_at, ApiToken.expires_at).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _digest(token)))).all()
    if not rows or rows[0].revoked_at is not None or rows[0].expires_at <= now \
            or not rows[0].is_active:
        raise AuthenticationError("invalid or expired token")
    return _actor_of(rows)


def load_actor(session: Session, user_id: int) -> Actor:
    """The Actor for a user id (user and grants in one query), or AuthenticationError when the
    user is gone or inactive."""
    rows = session.execute(_actor_rows(select().select_from(User))
                           .where(User.id == user_id)).all()
    if not rows or not rows[0].is_active:
        raise AuthenticationError("your account is not active")
    return _actor_of(rows)
