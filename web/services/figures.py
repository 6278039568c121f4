"""A subdistrict's figures (街道看板): what co-building did, by community, by unit and by month.

Each figure is one SQL aggregation (GROUP BY community and month, or by unit) over what the work
leaves behind — the audit trail of demands and assignments, service records, verified reports,
the love bank's journal — so the numbers agree however they are sliced. The rules, as the
dashboard states them:

- activities held: activity sessions closed as held, by the day they started;
- items claimed: shares of demands (assignments) approved for a claiming unit or accepted by a
  dispatched one, by the moment they were confirmed;
- items closed (办结): demands verified as done, by the moment of verification (the resident's
  confirmation and rating may follow);
- the rates are over the items published in the period, cancelled ones left out: the share
  closed by now (closure rate), the share first taken on by a unit on the day it was published
  (accepted the same day), the share closed within 72 hours of publication (closed within three
  days); for a unit, over the items it claimed in the period;
- volunteer hours: service records, by the day served; value: verified work reports' value in
  fen, by the moment of verification;
- points issued: net points out of the communities' issuing accounts (service credits and
  activity awards, less their reversals); points redeemed: net points into the supermarkets
  (redemptions less refunds).

Months and days are Asia/Shanghai dates (UTC+8 all year: no daylight saving since 1991), worked
out by the database itself — `to_char(timezone(...))` on PostgreSQL, `strftime(..., '+8
hours')` on SQLite — so rows are grouped where they lie, never fetched one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, func, literal_column, select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.domain.states import (
    AssignmentStatus,
    DemandStatus,
    ReportStatus,
    SessionStatus,
    UnitStatus,
)
from web.models import (
    ActivitySession,
    Assignment,
    AuditEvent,
    Community,
    DemandItem,
    LedgerAccount,
    LedgerEntry,
    ServiceRecord,
    Subdistrict,
    Unit,
    WorkReport,
)
from web.services import service_levels
from web.services.base import (
    LOCAL_TZ,
    Page,
    filter_text_and_dates,
    get_or_404,
    invalid,
    local_date,
    paginate,
    utcnow,
)
from web.services.journal import AccountKind
from web.services.matching import check_scope
from web.services.scope import overseen, scoped

TAKEN = (str(AssignmentStatus.APPROVED), str(AssignmentStatus.ACCEPTED))
CLOSED_WITHIN_HOURS = 72
MAX_DAYS = 5 * 366  # a longer period makes charts no one can read


# ---- the figures of one row (a community, a unit, a month or everything) -----------------------

def _rate(part: int, whole: int) -> Decimal | None:
    """`part` of `whole` in percent with one decimal; None when there is nothing to divide."""
    if not whole:
        return None
    return (Decimal(100 * part) / whole).quantize(Decimal("0.1"))


@dataclass
class Row:
    """One row of figures. `published` is the rates' base: items published in the period (for a
    unit, items it claimed), `done` of them closed by now. None: the figure does not apply."""

    key: object
    label: str
    activities: int | None = 0
    claimed: int = 0
    closed: int = 0
    published: int = 0
    done: int = 0
    same_day: int = 0
    three_days: int = 0
    minutes: int = 0
    value_fen: int = 0
    points_issued: int | None = 0
    points_redeemed: int | None = 0

    @property
    def closure_rate(self) -> Decimal | None:
        return _rate(self.done, self.published)

    @property
    def same_day_rate(self) -> Decimal | None:
        return _rate(self.same_day, self.published)

    @property
    def three_day_rate(self) -> Decimal | None:
        return _rate(self.three_days, self.published)

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.minutes) / 60).quantize(Decimal("0.1"))

    @property
    def value_yuan(self) -> Decimal:
        return (Decimal(self.value_fen) / 100).quantize(Decimal("0.01"))

    def add(self, other: Row) -> None:
        """Add `other`'s counts to this row's (a figure that does not apply stays None)."""
        for f in fields(self):
            if f.name in ("key", "label"):
                continue
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine is not None and theirs is not None:
                setattr(self, f.name, mine + theirs)

    def as_dict(self) -> dict:
        """The row as plain values, rates and hours included (for tables and exports)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out.update(closure_rate=self.closure_rate, same_day_rate=self.same_day_rate,
                   three_day_rate=self.three_day_rate, hours=self.hours,
                   value_yuan=self.value_yuan)
        return out


@dataclass
class Figures:
    """A subdistrict's figures for a period (first and last day, Asia/Shanghai)."""

    subdistrict: Subdistrict
    start: date
    end: date
    community_id: int | None
    total: Row
    by_month: list[Row] = field(default_factory=list)
    by_community: list[Row] = field(default_factory=list)
    by_unit: list[Row] = field(default_factory=list)


# ---- dates in Asia/Shanghai, as each database writes them ---------------------------------------

class _Local:
    """SQL for Asia/Shanghai months and days of UTC timestamps, and seconds between two.

    The constants are written into the SQL (not bound) so that PostgreSQL sees the grouped
    expression in the select list and in GROUP BY as the same one."""

    def __init__(self, session: Session):
        self.pg = session.get_bind().dialect.name == "postgresql"

    def _text(self, moment, pg_format: str, sqlite_format: str):
        if self.pg:
            return func.to_char(func.timezone(literal_column(f"'{LOCAL_TZ}'"), moment),
                                literal_column(f"'{pg_format}'"))
        return func.strftime(literal_column(f"'{sqlite_format}'"), moment,
                             literal_column("'+8 hours'"))

    def month(self, moment):
        """'YYYY-MM' of a UTC timestamp in Asia/Shanghai."""
        return self._text(moment, "YYYY-MM", "%Y-%m")

    def day(self, moment):
        """'YYYY-MM-DD' of a UTC timestamp in Asia/Shanghai."""
        return self._text(moment, "YYYY-MM-DD", "%Y-%m-%d")

    def month_of_date(self, day):
        """'YYYY-MM' of a date column (already a local date)."""
        if self.pg:
            return func.to_char(day, literal_column("'YYYY-MM'"))
        return func.strftime(literal_column("'%Y-%m'"), day)

    def epoch(self, moment):
        """Whole seconds since 1970 of a timestamp."""
        if self.pg:
            return func.extract("epoch", moment)
        return cast(func.strftime(literal_column("'%s'"), moment), Integer)


def _moment(day: date) -> datetime:
    """The first moment of `day` in Asia/Shanghai, in UTC."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(LOCAL_TZ)).astimezone(UTC)


def months_between(start: date, end: date) -> list[str]:
    """Every month from `start`'s to `end`'s, as 'YYYY-MM'."""
    out, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def period(start: date | None, end: date | None, now: datetime) -> tuple[date, date]:
    """The period asked for; by default this year (Asia/Shanghai). A 422 if it is backwards
    or longer than five years."""
    today = local_date(now)
    start = start or date(today.year, 1, 1)
    end = end or date(today.year, 12, 31)
    if end < start:
        raise invalid("end", "ends before it starts")
    if (end - start).days > MAX_DAYS:
        raise invalid("end", "at most five years at a time")
    return start, end


# ---- the figures ------------------------------------------------------------------------------

@dataclass
class _Query:
    """What every figure's query shares: the communities in scope, the period's UTC bounds."""

    session: Session
    sql: _Local
    communities: list[int]
    start: date
    end: date
    lo: datetime
    hi: datetime

    def during(self, column):
        return and_(column >= self.lo, column < self.hi)


def subdistrict_figures(session: Session, *, actor: Actor, subdistrict_id: int,
                        start: date | None = None, end: date | None = None,
                        community_id: int | None = None,
                        now: datetime | None = None) -> Figures:
    """The subdistrict's figures for a period (default: this year), by community, unit and
    month; only its own admin (or the system) may read them. `community_id` narrows them to
    one of its communities."""
    now = now or utcnow()
    check_scope(session, actor, None, subdistrict_id)
    subdistrict = get_or_404(session, Subdistrict, subdistrict_id, "subdistrict")
    start, end = period(start, end, now)
    communities = list(session.execute(
        select(Community.id, Community.name).where(Community.subdistrict_id == subdistrict_id)
        .order_by(Community.code, Community.id)).all())
    if community_id is not None:
        communities = [c for c in communities if c.id == community_id]
        if not communities:
            raise invalid("community_id", "not a community of this subdistrict")
    q = _Query(session, _Local(session), [c.id for c in communities], start, end,
               _moment(start), _moment(end + timedelta(days=1)))
    cells: dict[tuple[int, str], Row] = {}
    units: dict[int, Row] = {}
    for fill in (_activities, _claimed, _closed, _cohort, _hours, _value, _points):
        fill(q, cells, units)
    return _assemble(session, subdistrict, q, communities, cells, units, community_id)


def _cell(cells: dict, community_id: int, month: str) -> Row:
    return cells.setdefault((community_id, month), Row(key=(community_id, month), label=month))


def _unit(units: dict, unit_id: int) -> Row:
    return units.setdefault(unit_id, Row(key=unit_id, label="", activities=None,
                                         points_issued=None, points_redeemed=None))


def _activities(q: _Query, cells: dict, units: dict) -> None:
    s = ActivitySession
    month = q.sql.month(s.starts_at)
    for community_id, m, n in q.session.execute(
            select(s.community_id, month, func.count())
            .where(s.community_id.in_(q.communities), s.status == str(SessionStatus.COMPLETED),
                   q.during(s.starts_at))
            .group_by(s.community_id, month)):
        _cell(cells, community_id, m).activities += n


def _taken_events(q: _Query):
    """Assignment events that confirmed a unit's share, in the period, in scope."""
    e = AuditEvent
    return (select(e).join(DemandItem, DemandItem.id == e.demand_id)
            .where(e.entity_type == "assignments", e.to_status.in_(TAKEN),
                   DemandItem.community_id.in_(q.communities), q.during(e.created_at))
            .subquery())


def _claimed(q: _Query, cells: dict, units: dict) -> None:
    e = _taken_events(q)
    month = q.sql.month(e.c.created_at)
    for community_id, m, n in q.session.execute(
            select(DemandItem.community_id, month, func.count()).select_from(e)
            .join(DemandItem, DemandItem.id == e.c.demand_id)
            .group_by(DemandItem.community_id, month)):
        _cell(cells, community_id, m).claimed += n
    for unit_id, n in q.session.execute(
            select(Assignment.unit_id, func.count()).select_from(e)
            .join(Assignment, Assignment.id == e.c.entity_id)
            .group_by(Assignment.unit_id)):
        _unit(units, unit_id).claimed += n


def _closed(q: _Query, cells: dict, units: dict) -> None:
    e = AuditEvent
    verified = (select(e.demand_id, e.created_at).join(DemandItem, DemandItem.id == e.demand_id)
                .where(e.entity_type == "demand_items",
                       e.to_status == str(DemandStatus.VERIFIED),
                       DemandItem.community_id.in_(q.communities), q.during(e.created_at))
                .subquery())
    month = q.sql.month(verified.c.created_at)
    for community_id, m, n in q.session.execute(
            select(DemandItem.community_id, month, func.count()).select_from(verified)
            .join(DemandItem, DemandItem.id == verified.c.demand_id)
            .group_by(DemandItem.community_id, month)):
        _cell(cells, community_id, m).closed += n
    for unit_id, n in q.session.execute(
            select(Assignment.unit_id, func.count(func.distinct(Assignment.demand_id)))
            .select_from(verified).join(Assignment, Assignment.demand_id == verified.c.demand_id)
            .where(Assignment.status == str(AssignmentStatus.COMPLETED))
            .group_by(Assignment.unit_id)):
        _unit(units, unit_id).closed += n


def _milestones(q: _Query):
    """Per demand in scope: when it was published, first taken on by a unit, and verified."""
    e = AuditEvent
    published = and_(e.entity_type == "demand_items", e.from_status == str(DemandStatus.DRAFT),
                     e.to_status == str(DemandStatus.OPEN))
    taken = and_(e.entity_type == "assignments", e.to_status.in_(TAKEN))
    verified = and_(e.entity_type == "demand_items", e.to_status == str(DemandStatus.VERIFIED))
    return (select(e.demand_id.label("demand_id"),
                   func.min(case((published, e.created_at))).label("published_at"),
                   func.min(case((taken, e.created_at))).label("taken_at"),
                   func.min(case((verified, e.created_at))).label("closed_at"))
            .where(e.demand_id.in_(select(DemandItem.id).where(
                DemandItem.community_id.in_(q.communities))))
            .group_by(e.demand_id).subquery())


def _rate_sums(q: _Query, m, taken_at):
    """The sums behind the rates: closed by now, taken on the day published, closed in 72 h."""
    sql = q.sql
    closed_in_time = and_(m.c.closed_at.is_not(None),
                          sql.epoch(m.c.closed_at) - sql.epoch(m.c.published_at)
                          <= CLOSED_WITHIN_HOURS * 3600)
    return (func.count(),
            func.sum(case((m.c.closed_at.is_not(None), 1), else_=0)),
            func.sum(case((and_(taken_at.is_not(None),
                                sql.day(taken_at) == sql.day(m.c.published_at)), 1), else_=0)),
            func.sum(case((closed_in_time, 1), else_=0)))


def _cohort(q: _Query, cells: dict, units: dict) -> None:
    m = _milestones(q)
    month = q.sql.month(m.c.published_at)
    live = DemandItem.status != str(DemandStatus.CANCELLED)
    for community_id, mo, *sums in q.session.execute(
            select(DemandItem.community_id, month, *_rate_sums(q, m, m.c.taken_at))
            .select_from(m).join(DemandItem, DemandItem.id == m.c.demand_id)
            .where(q.during(m.c.published_at), live)
            .group_by(DemandItem.community_id, month)):
        _add_rates(_cell(cells, community_id, mo), sums)
    e = _taken_events(q)
    for unit_id, *sums in q.session.execute(
            select(Assignment.unit_id, *_rate_sums(q, m, e.c.created_at))
            .select_from(e).join(Assignment, Assignment.id == e.c.entity_id)
            .join(m, m.c.demand_id == e.c.demand_id)
            .join(DemandItem, DemandItem.id == e.c.demand_id)
            .where(m.c.published_at.is_not(None), live)
            .group_by(Assignment.unit_id)):
        _add_rates(_unit(units, unit_id), sums)


def _add_rates(row: Row, sums) -> None:
    published, done, same_day, three_days = (int(x or 0) for x in sums)
    row.published += published
    row.done += done
    row.same_day += same_day
    row.three_days += three_days


def _hours(q: _Query, cells: dict, units: dict) -> None:
    r = ServiceRecord
    month = q.sql.month_of_date(r.served_on)
    where = (r.community_id.in_(q.communities), r.served_on >= q.start, r.served_on <= q.end)
    for community_id, m, minutes in q.session.execute(
            select(r.community_id, month, func.sum(r.minutes)).where(*where)
            .group_by(r.community_id, month)):
        _cell(cells, community_id, m).minutes += int(minutes or 0)
    for unit_id, minutes in q.session.execute(
            select(r.unit_id, func.sum(r.minutes)).where(*where, r.unit_id.is_not(None))
            .group_by(r.unit_id)):
        _unit(units, unit_id).minutes += int(minutes or 0)


def _value(q: _Query, cells: dict, units: dict) -> None:
    w = WorkReport
    month = q.sql.month(w.decided_at)
    where = (w.status == str(ReportStatus.VERIFIED), DemandItem.community_id.in_(q.communities),
             q.during(w.decided_at))
    for community_id, m, fen in q.session.execute(
            select(DemandItem.community_id, month, func.sum(w.value_fen))
            .join(DemandItem, DemandItem.id == w.demand_id).where(*where)
            .group_by(DemandItem.community_id, month)):
        _cell(cells, community_id, m).value_fen += int(fen or 0)
    for unit_id, fen in q.session.execute(
            select(w.unit_id, func.sum(w.value_fen))
            .join(DemandItem, DemandItem.id == w.demand_id).where(*where).group_by(w.unit_id)):
        _unit(units, unit_id).value_fen += int(fen or 0)


def _points(q: _Query, cells: dict, units: dict) -> None:
    a, entry = LedgerAccount, LedgerEntry
    month = q.sql.month(entry.created_at)
    kinds = (str(AccountKind.ISSUING), str(AccountKind.SUPERMARKET))
    for community_id, kind, m, amount in q.session.execute(
            select(a.community_id, a.kind, month, func.sum(entry.amount))
            .join(a, a.id == entry.account_id)
            .where(a.kind.in_(kinds), a.asset == "points", a.community_id.in_(q.communities),
                   q.during(entry.created_at))
            .group_by(a.community_id, a.kind, month)):
        row = _cell(cells, community_id, m)
        if kind == AccountKind.ISSUING:
            row.points_issued -= int(amount or 0)
        else:
            row.points_redeemed += int(amount or 0)


def _assemble(session: Session, subdistrict: Subdistrict, q: _Query, communities: list,
              cells: dict, units: dict, community_id: int | None) -> Figures:
    total = Row(key=None, label="")
    by_month = {m: Row(key=m, label=m) for m in months_between(q.start, q.end)}
    by_community = {c.id: Row(key=c.id, label=c.name) for c in communities}
    for (cid, month), row in cells.items():
        total.add(row)
        by_community[cid].add(row)
        if month in by_month:
            by_month[month].add(row)
    if community_id is None:  # every approved unit of the subdistrict appears, even with nothing
        for unit_id in session.scalars(select(Unit.id).where(
                Unit.subdistrict_id == subdistrict.id, Unit.status == str(UnitStatus.APPROVED))):
            _unit(units, unit_id)
    names = dict(session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(list(units))))
                 .all()) if units else {}
    for unit_id, row in units.items():
        row.label = names.get(unit_id, str(unit_id))
    by_unit = sorted(units.values(), key=lambda r: r.label)
    return Figures(subdistrict=subdistrict, start=q.start, end=q.end, community_id=community_id,
                   total=total, by_month=list(by_month.values()),
                   by_community=list(by_community.values()), by_unit=by_unit)


# ---- the red list (红榜) -------------------------------------------------------------------------

RANKING_RULE = "items closed, then volunteer hours, then value"


def ranking(figures: Figures) -> list[Row]:
    """Units that contributed in the period, best first: by items closed, then volunteer hours,
    then value (then name, so equal units keep a stable order)."""
    contributed = [r for r in figures.by_unit if r.closed or r.minutes or r.value_fen]
    return sorted(contributed, key=lambda r: (-r.closed, -r.minutes, -r.value_fen, r.label))


# ---- items running late ---------------------------------------------------------------------------

def due_items(session: Session, *, actor: Actor, subdistrict_id: int, filters: dict,
              page: int = 1, per_page: int = 20, now: datetime | None = None) -> Page:
    """Items of the subdistrict running late by their service level (red: a due time to be
    accepted or closed has passed; amber: one is near), the first due time first.

    Filters: community_id, rag ("red" or "amber"), escalated (only items escalated to the
    subdistrict, late or not, while they are still being worked on), urgency, q (title or
    description)."""
    now = now or utcnow()
    check_scope(session, actor, None, subdistrict_id)
    d = DemandItem
    in_subdistrict = select(Community.id).where(Community.subdistrict_id == subdistrict_id)
    stmt = scoped(d, overseen(actor, d.community_id), actor).where(
        d.community_id.in_(in_subdistrict), d.status.in_(service_levels.RUNNING))
    if filters.get("escalated"):
        stmt = stmt.where(d.escalation_level >= service_levels.TOP_LEVEL)
    lights = [filters["rag"]] if filters.get("rag") in ("red", "amber") else []
    if lights or not filters.get("escalated"):
        stmt = stmt.where(service_levels.sla_condition(session, lights or ["red", "amber"], now))
    if filters.get("community_id"):
        stmt = stmt.where(d.community_id == filters["community_id"])
    if filters.get("urgency"):
        stmt = stmt.where(d.urgency == filters["urgency"])
    stmt = filter_text_and_dates(stmt, d, {"q": filters.get("q")})
    return paginate(session, service_levels.by_next_due(stmt), page, per_page)
