"""The audit trail: every state change goes through `transition`, which writes one event."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.domain.states import check_transition
from web.models import AuditEvent


def record(
    session: Session,
    *,
    entity_type: str,
    entity_id: int,
    action: str,
    actor: Actor,
    now: datetime,
    demand_id: int | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str | None = None,
    data: dict | None = None,
) -> None:
    """Append one audit event (a plain INSERT: every state change writes one, so it stays off
    the ORM's unit of work)."""
    session.execute(AuditEvent.__table__.insert().values(
        entity_type=entity_type, entity_id=entity_id, demand_id=demand_id, action=action,
        from_status=from_status, to_status=to_status, actor_id=actor.user_id, reason=reason,
        data=json.dumps(data, ensure_ascii=False, default=str) if data else None,
        created_at=now))


def transition(
    session: Session,
    obj,
    target: StrEnum,
    *,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    action: str | None = None,
    data: dict | None = None,
) -> None:
    """Move `obj.status` to `target` if the state machine allows it, and record the move."""
    current = obj.status
    check_transition(current, target)
    obj.status = str(target)
    session.flush()
    record(
        session,
        entity_type=obj.__tablename__,
        entity_id=obj.id,
        demand_id=_demand_id_of(obj),
        action=action or str(target),
        actor=actor,
        now=now,
        from_status=str(current) if current else None,
        to_status=str(target),
        reason=reason,
        data=data,
    )


def _demand_id_of(obj) -> int | None:
    if obj.__tablename__ == "demand_items":
        return obj.id
    return getattr(obj, "demand_id", None)


def list_history(session: Session, demand_id: int) -> list[AuditEvent]:
    """Every event about one demand and its assignments and reports, oldest first."""
    stmt = select(AuditEvent).where(AuditEvent.demand_id == demand_id).order_by(AuditEvent.id)
    return list(session.scalars(stmt))
