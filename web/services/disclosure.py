"""Public disclosure (公示): what a community's co-building did, for anyone, with no personal data.

Only aggregates and organisations appear: demand titles and categories, the units that did the
work, points issued and redeemed, money in and out of the fund. Residents are never named (a
resident donor shows as a masked name), and no phone or address is read at all.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from web.domain.states import AssignmentStatus, DemandStatus
from web.errors import NotFoundError
from web.models import (
    Assignment,
    Category,
    Community,
    DemandItem,
    LedgerEntry,
    LedgerTransfer,
    Unit,
    WorkReport,
)
from web.services.base import Page, like_pattern

DONE = (DemandStatus.VERIFIED, DemandStatus.CLOSED)
RECENT = 30  # rows of completed work on a page, and of donations on the page
TOP_UNITS = 20  # contributing units on the page (the download has them all)


def mask(name: str | None) -> str:
    """A person's name with all but the first character hidden (张桂兰 → 张**)."""
    if not name:
        return ""
    return name[0] + "*" * max(1, len(name) - 1)


def community_by_code(session: Session, code: str) -> Community:
    community = session.scalar(select(Community).where(Community.code == code))
    if community is None:
        raise NotFoundError("Community", code)
    return community


def disclosure(session: Session, *, community_id: int, page: int = 1, per_page: int = RECENT,
               q: str | None = None) -> dict:
    """The community's public figures, one page of its completed work (newest first, `q` in
    the title), its top contributing units and its latest donations."""
    community = session.get(Community, community_id)
    if community is None:
        raise NotFoundError("Community", community_id)
    done = [str(s) for s in DONE]
    count = session.scalar(select(func.count()).select_from(DemandItem).where(
        DemandItem.community_id == community_id, DemandItem.status.in_(done))) or 0
    return {
        "community": community, "completed": count,
        "recent": completed_work(session, community_id, page=page, per_page=per_page, q=q),
        "contributors": contributors(session, community_id, limit=TOP_UNITS),
        "points": _points(session, community_id),
        "fund": {**_fund(session, community_id),
                 "donations": donations(session, community_id, limit=RECENT)},
    }


def completed_work(session: Session, community_id: int, *, page: int = 1,
                   per_page: int = RECENT, q: str | None = None) -> Page:
    """The community's verified and closed items, newest first, each with its category and the
    units that did it (organisations only: no beneficiary, no address)."""
    stmt = (select(DemandItem.id, DemandItem.title, Category.name_zh, Category.name_en,
                   DemandItem.updated_at)
            .join(Category, Category.id == DemandItem.category_id)
            .where(DemandItem.community_id == community_id,
                   DemandItem.status.in_([str(s) for s in DONE])))
    if q:
        stmt = stmt.where(DemandItem.title.ilike(like_pattern(q), escape="\\"))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(DemandItem.updated_at.desc(), DemandItem.id.desc())
                           .limit(per_page).offset((page - 1) * per_page)).all()
    units = _units_of(session, [row.id for row in rows])
    return Page(items=[{"title": r.title, "category_zh": r.name_zh, "category_en": r.name_en,
                        "on": r.updated_at, "units": units.get(r.id, [])} for r in rows],
                total=total, page=page, per_page=per_page)


def _units_of(session: Session, demand_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for demand_id, name in session.execute(
            select(Assignment.demand_id, Unit.name).join(Unit, Unit.id == Assignment.unit_id)
            .where(Assignment.demand_id.in_(demand_ids or [0]),
                   Assignment.status == str(AssignmentStatus.COMPLETED))
            .order_by(Assignment.is_lead.desc(), Unit.name)):
        out.setdefault(demand_id, []).append(name)
    return out


def contributors(session: Session, community_id: int, *, limit: int | None = None) -> list[dict]:
    """Units by completed work in the community, with the value they reported (in fen); the
    first `limit` of them (all when None)."""
    stmt = (select(Unit.name, func.count(WorkReport.id),
                   func.coalesce(func.sum(WorkReport.value_fen), 0))
            .join(WorkReport, WorkReport.unit_id == Unit.id)
            .join(DemandItem, DemandItem.id == WorkReport.demand_id)
            .where(DemandItem.community_id == community_id, WorkReport.status == "verified")
            .group_by(Unit.name).order_by(func.count(WorkReport.id).desc(), Unit.name))
    rows = session.execute(stmt.limit(limit) if limit else stmt).all()
    return [{"unit": name, "reports": n, "value_fen": int(value)} for name, n, value in rows]


def _sum_kinds(session: Session, community_id: int, asset: str, kinds: tuple[str, ...],
               positive: bool) -> int:
    """The sum of the positive (or negative) legs of transfers of `kinds`."""
    amount = LedgerEntry.amount
    stmt = (select(func.coalesce(func.sum(amount), 0))
            .join(LedgerTransfer, LedgerTransfer.id == LedgerEntry.transfer_id)
            .where(LedgerTransfer.community_id == community_id, LedgerTransfer.asset == asset,
                   LedgerTransfer.kind.in_(kinds), amount > 0 if positive else amount < 0))
    return abs(int(session.scalar(stmt) or 0))


def _points(session: Session, community_id: int) -> dict:
    issued = _sum_kinds(session, community_id, "points", ("credit", "award"), True)
    redeemed = _sum_kinds(session, community_id, "points", ("redemption",), True)
    refunded = _sum_kinds(session, community_id, "points", ("refund",), False)
    return {"issued": issued, "redeemed": redeemed - refunded}


def _fund(session: Session, community_id: int) -> dict:
    return {"in_fen": _sum_kinds(session, community_id, "fen", ("donation",), True),
            "out_fen": _sum_kinds(session, community_id, "fen", ("purchase",), True)}


def donations(session: Session, community_id: int, *, limit: int | None = None) -> list[dict]:
    """Money given to the community fund, newest first (the first `limit`, or all): a unit by
    its name, a person by a masked name."""
    stmt = (select(LedgerTransfer.source_type, LedgerTransfer.source_id, LedgerTransfer.detail,
                   LedgerTransfer.created_at)
            .where(LedgerTransfer.community_id == community_id,
                   LedgerTransfer.kind == "donation")
            .order_by(LedgerTransfer.created_at.desc(), LedgerTransfer.id.desc()))
    found = session.execute(stmt.limit(limit) if limit else stmt).all()
    unit_names = dict(session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(
        [int(d.source_id) for d in found if d.source_type == "unit"] or [0]))).all())
    return [{"donor": unit_names.get(int(d.source_id), "") if d.source_type == "unit"
             else mask(d.source_id),
             "fen": (d.detail or {}).get("donation_fen", 0),
             "grant_fen": (d.detail or {}).get("matching_grant_fen", 0), "on": d.created_at}
            for d in found]
