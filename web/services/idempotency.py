"""Idempotency keys: a retried point-moving request returns its first result and moves nothing.

A service function calls `begin` first thing in its transaction and `finish` with what it made.
The key's row is inserted before any work, so on PostgreSQL a concurrent duplicate waits on the
key's unique index and then fails; `idempotent` turns that failure into the first result.
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy.orm import Session

from scoring.ledger import request_fingerprint
from web.domain.actor import Actor
from web.errors import ConflictError, IdempotencyKeyReusedError
from web.models import IdempotencyKey
from web.services.base import invalid

MAX_KEY = 200
PENDING_KEY = "linli_idempotency:"  # session.info: the key row this transaction reserved


def _fingerprint(operation: str, actor: Actor, payload: dict) -> str:
    return request_fingerprint(operation, {"actor": actor.user_id, **payload})


def begin(session: Session, key: str | None, operation: str, payload: dict, *, actor: Actor,
          result_type: str, now: datetime) -> int | None:
    """The id this key already produced, or None after reserving the key for this request."""
    if not key or not key.strip() or len(key) > MAX_KEY:
        raise invalid("idempotency_key", f"send an Idempotency-Key of 1–{MAX_KEY} characters")
    fingerprint = _fingerprint(operation, actor, payload)
    row = session.get(IdempotencyKey, key)
    if row is not None:
        return _replay(row, operation, fingerprint)
    row = IdempotencyKey(key=key, operation=operation, fingerprint=fingerprint,
                         result_type=result_type, user_id=actor.user_id, created_at=now)
    session.add(row)
    session.flush()
    session.info[f"{PENDING_KEY}{key}"] = row
    return None


def _replay(row: IdempotencyKey, operation: str, fingerprint: str) -> int:
    if row.operation != operation or row.fingerprint != fingerprint:
        raise IdempotencyKeyReusedError("this idempotency key was used for a different request")
    return row.result_id


def finish(session: Session, key: str, result_id: int) -> None:
    """Record what the request produced under its key."""
    row = session.info.pop(f"{PENDING_KEY}{key}", None) or session.get(IdempotencyKey, key)
    row.result_id = result_id


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
