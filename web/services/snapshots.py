"""Daily figures: each night the scheduler keeps one day's figures of every community and every
unit (from `figures.subdistrict_figures`, so they agree with the dashboard), for charts by day.

A day's snapshot replaces the one written before for the same day, so running it twice is
harmless. The figures are stored as JSON: the counts as integers, the rates, hours and
money-equivalent value as decimal strings (never floats).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.domain.actor import SYSTEM, Actor
from web.errors import NotFoundError
from web.models import DailyFigures, Subdistrict, Unit
from web.services.base import Page, invalid, local_date, paginate, require, utcnow, write
from web.services.figures import Row, period, subdistrict_figures
from web.services.matching import check_scope

SCOPES = ("community", "unit")
DEFAULT_DAYS = 30  # what a reader gets without a period: the last thirty days


@write
def snapshot_daily_figures(session: Session, *, now: datetime, day: date | None = None) -> dict:
    """Write (or rewrite) the figures of `day` (default: yesterday in Asia/Shanghai) for each
    community and each unit of every subdistrict."""
    day = day or local_date(now) - timedelta(days=1)
    communities: dict[int, Row] = {}
    units: dict[int, Row] = {}
    for subdistrict_id in session.scalars(select(Subdistrict.id).order_by(Subdistrict.id)):
        found = subdistrict_figures(session, actor=SYSTEM, subdistrict_id=subdistrict_id,
                                    start=day, end=day, now=now)
        communities.update({row.key: row for row in found.by_community})
        for row in found.by_unit:  # a unit may serve in several subdistricts: add them up
            if row.key in units:
                units[row.key].add(row)
            else:
                units[row.key] = row
    written = {scope: _replace(session, day, scope, rows, now)
               for scope, rows in (("community", communities), ("unit", units))}
    return {"day": day.isoformat(), "communities": written["community"],
            "units": written["unit"]}


def figures_json(row: Row) -> str:
    """A row's figures as stable JSON text (decimals as strings)."""
    values = {k: v for k, v in row.as_dict().items() if k not in ("key", "label")}
    return json.dumps(values, sort_keys=True, default=str)


def _replace(session: Session, day: date, scope: str, rows: dict[int, Row],
             now: datetime) -> int:
    """Make the day's rows of `scope` exactly `rows`: update, add, and drop what is gone."""
    existing = {f.scope_id: f for f in session.scalars(select(DailyFigures).where(
        DailyFigures.day == day, DailyFigures.scope == scope))}
    for scope_id, row in rows.items():
        stored = existing.pop(scope_id, None)
        if stored is None:
            session.add(DailyFigures(day=day, scope=scope, scope_id=scope_id,
                                     figures=figures_json(row), created_at=now))
        else:
            stored.figures, stored.created_at = figures_json(row), now
    for gone in existing.values():
        session.delete(gone)
    session.flush()
    return len(rows)


# ---- reading them back ------------------------------------------------------------------------

def check_reader(session: Session, actor: Actor, scope: str, scope_id: int) -> None:
    """Who reads a day's figures: for a community, its secretary or its subdistrict's admin
    (as for match runs and the dashboard); for a unit, its admin or its subdistrict's admin."""
    if scope == "community":
        check_scope(session, actor, scope_id, None)
        return
    unit = session.get(Unit, scope_id)
    if unit is None:
        raise NotFoundError("unit", scope_id)
    require(actor.is_system or actor.is_unit_admin_of(unit.id)
            or actor.is_admin_of_subdistrict(unit.subdistrict_id),
            "only the unit's admin or its subdistrict's admin")


def list_daily_figures(session: Session, *, actor: Actor, scope: str, scope_id: int,
                       start: date | None = None, end: date | None = None,
                       now: datetime | None = None, page: int = 1, per_page: int = 100) -> Page:
    """A community's or a unit's daily figures from `start` to `end` (default: the thirty days
    up to yesterday), oldest first; each row's `figures` is a dict."""
    if scope not in SCOPES:
        raise invalid("scope", f"one of {', '.join(SCOPES)}")
    check_reader(session, actor, scope, scope_id)
    now = now or utcnow()
    end = end or local_date(now) - timedelta(days=1)
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    start, end = period(start, end, now)
    stmt = (select(DailyFigures)
            .where(DailyFigures.scope == scope, DailyFigures.scope_id == scope_id,
                   DailyFigures.day >= start, DailyFigures.day <= end)
            .order_by(DailyFigures.day))
    found = paginate(session, stmt, page, per_page)
    found.items = [_as_dict(f) for f in found.items]
    return found


def _as_dict(stored: DailyFigures) -> dict:
    return {"day": stored.day, "scope": stored.scope, "scope_id": stored.scope_id,
            "figures": json.loads(stored.figures), "created_at": stored.created_at}
