"""Passwords (Argon2id), bearer tokens, and loading the acting user with their grants."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from web.domain.actor import Actor, Grant
from web.errors import AuthenticationError
from web.models import ApiToken, User
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


def user_for_token(session: Session, token: str, *, now: datetime | None = None) -> User:
    """The user a live bearer token belongs to, or AuthenticationError."""
    now = now or utcnow()
    found = session.execute(  # the token, its user and the user's grants in one round trip
        select(ApiToken, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _digest(token))
        .options(selectinload(User.grants))).first()
    row, user = found if found else (None, None)
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise AuthenticationError("invalid or expired token")
    if user is None or not user.is_active:
        raise AuthenticationError("invalid or expired token")
    return user


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


def load_actor(session: Session, user_id: int) -> Actor:
    """The Actor for a user id, or AuthenticationError when the user is gone or inactive."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise AuthenticationError("your account is not active")
    return actor_for(user)
