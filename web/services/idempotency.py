"""Idempotency keys: a retried point-moving request returns its first result and moves nothing.

A service function calls `begin` first thing in its transaction and `finish` with what it made.
The key's row is inserted before any work (`INSERT … ON CONFLICT DO NOTHING`), so on PostgreSQL
a concurrent duplicate waits on the key's unique index until the first request commits, then
finds its row and returns its result. These are plain statements, not ORM flushes: every
point-moving request runs them.
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from scoring.ledger import request_fingerprint
from web.domain.actor import Actor
from web.errors import ConflictError, IdempotencyKeyReusedError
from web.models import IdempotencyKey
from web.services.base import invalid

MAX_KEY = 200
KEYS = IdempotencyKey.__table__


def _fingerprint(operation: str, actor: Actor, payload: dict) -> str:
    return request_fingerprint(operation, {"actor": actor.user_id, **payload})


def begin(session: Session, key: str | None, operation: str, payload: dict, *, actor: Actor,
          result_type: str, now: datetime) -> int | None:
    """The id this key already produced, or None after reserving the key for this request."""
    if not key or not key.strip() or len(key) > MAX_KEY:
        raise invalid("idempotency_key", f"send an Idempotency-Key of 1–{MAX_KEY} characters")
    fingerprint = _fingerprint(operation, actor, payload)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    reserved = session.execute(
        dialect.insert(KEYS).values(key=key, operation=operation, fingerprint=fingerprint,
                                    result_type=result_type, user_id=actor.user_id,
                                    created_at=now)
        .on_conflict_do_nothing(index_elements=[KEYS.c.key]).returning(KEYS.c.key)).first()
    if reserved is not None:
        return None
    row = session.execute(select(KEYS.c.operation, KEYS.c.fingerprint, KEYS.c.result_id)
                          .where(KEYS.c.key == key)).first()
    if row is None or row.result_id is None:  # its first request is still running (SQLite)
        raise ConflictError("this idempotency key's first request has not finished")
    return _replay(row, operation, fingerprint)


def _replay(row, operation: str, fingerprint: str) -> int:
    if row.operation != operation or row.fingerprint != fingerprint:
        raise IdempotencyKeyReusedError("this idempotency key was used for a different request")
    return row.result_id


def finish(session: Session, key: str, result_id: int) -> None:
    """Record what the request produced under its key."""
    session.execute(update(KEYS).where(KEYS.c.key == key).values(result_id=result_id))


def idempotent(operation: str):
    """Wrap a @write service: a duplicate that lost a race gets the winner's result, not a 409."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(session: Session, *args, idempotency_key: str | None = None, **kwargs):
            try:
                return fn(session, *args, idempotency_key=idempotency_key, **kwargs)
            except IdempotencyKeyReusedError:
                raise
            except ConflictError:
                if not idempotency_key:
                    raise
                row = session.get(IdempotencyKey, idempotency_key, populate_existing=True)
                if row is None or row.operation != operation or row.result_id is None:
                    session.rollback()  # end the read, so no lock outlives the refusal
                    raise
                return fn(session, *args, idempotency_key=idempotency_key, **kwargs)

        return wrapper

    return decorate
