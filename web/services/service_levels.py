"""Service levels (当日吹哨受理、三日闭环办结): each published item's due times and its
red/amber/green state, pausing and resuming its clocks, escalation grid → community →
subdistrict (微循环 → 小循环 → 大循环), dispatches not answered in time, verified work
confirmed automatically, and work rated unsatisfactory reopened for rework.

The due times follow the community's settings, on Asia/Shanghai working days when it says so
(`web.domain.calendar`, with the public holidays and make-up days of `calendar_days`). An item
accepted at the due time exactly is on time; one second later it is late.

The scheduler's jobs (`check_service_levels`, `expire_dispatches`, `auto_confirm`) select only
the ids of candidate rows with indexed conditions, then handle them in batches, each batch one
transaction that re-reads its rows under lock and checks them again; every job is safe to run
twice (the second run finds nothing left to do).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    false,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from web.domain.actor import SYSTEM, Actor
from web.domain.calendar import add_service_time, service_time_between
from web.domain.states import COVERAGE_STATES, AssignmentStatus, DemandStatus
from web.errors import ConflictError
from web.models import Assignment, CalendarDay, Community, DemandItem, Notification, Unit
from web.services import audit
from web.services.base import LOCAL_TZ, local_date, lock, need_reason, require, utcnow, write
from web.services.notifications import (
    grid_workers_of,
    notify,
    secretaries_of,
    subdistrict_admins_of,
    unit_admins_of,
)

S = DemandStatus
# Items whose clocks run: published and not yet verified, closed or cancelled.
RUNNING = tuple(str(s) for s in (S.OPEN, S.PARTLY_COVERED, S.COVERED, S.IN_PROGRESS,
                                 S.REPORTED))
AMBER_AT_LEAST = timedelta(hours=4)  # amber when less than this (or a quarter) is left
LEVELS = ("grid", "community", "subdistrict")
TOP_LEVEL = len(LEVELS) - 1
UNSATISFACTORY = 2  # ratings up to this one send the work back
BATCH = 500


# ---- the calendar -----------------------------------------------------------------------------

def calendar_exceptions(session: Session, start: date, end: date) -> dict[date, bool]:
    """The days from `start` to `end` (inclusive) that break the Monday–Friday rule:
    day → whether it is worked."""
    rows = session.execute(select(CalendarDay.day, CalendarDay.is_workday).where(
        CalendarDay.day >= start, CalendarDay.day <= end))
    return {day: bool(worked) for day, worked in rows}


def _exceptions(session: Session, community: Community, start: datetime,
                span: timedelta) -> dict[date, bool]:
    """The exceptions an addition of `span` from `start` may meet (none in calendar mode);
    the range is generous enough for the longest holidays."""
    if not community.sla_working_days:
        return {}
    first = local_date(start) - timedelta(days=1)
    return calendar_exceptions(session, first, first + timedelta(days=2 * span.days + 45))


def add_time(session: Session, community: Community, start: datetime,
             span: timedelta) -> datetime:
    """`start` plus `span` of the community's service time (working days or plain time)."""
    return add_service_time(start, span, working_days=community.sla_working_days,
                            exceptions=_exceptions(session, community, start, span))


def time_between(session: Session, community: Community, a: datetime, b: datetime) -> timedelta:
    """The community's service time from `a` to `b` (never negative)."""
    if b <= a:
        return timedelta(0)
    return service_time_between(a, b, working_days=community.sla_working_days,
                                exceptions=_exceptions(session, community, a, b - a))


# ---- due times and the red/amber/green state --------------------------------------------------

def set_due_times(session: Session, demand: DemandItem, now: datetime) -> None:
    """Start the item's clocks at `now` (its publication, or its reopening for rework): due to
    be accepted and closed within the community's windows; any pause ends."""
    community = session.get(Community, demand.community_id)
    demand.published_at = now
    demand.accept_due_at = add_time(session, community, now,
                                    timedelta(hours=community.accept_within_hours))
    demand.close_due_at = add_time(session, community, now,
                                   timedelta(days=community.close_within_days))
    demand.paused_at = demand.pause_reason = None


def unmet_due_times(demand: DemandItem) -> list[tuple[str, datetime]]:
    """("accept", due) until a unit has taken the item on, ("close", due) until it is verified."""
    found = []
    if demand.accepted_at is None and demand.accept_due_at is not None:
        found.append(("accept", demand.accept_due_at))
    if demand.verified_at is None and demand.close_due_at is not None:
        found.append(("close", demand.close_due_at))
    return found


def next_due(demand: DemandItem) -> datetime | None:
    """The first due time the item still has to meet, if any."""
    dues = [due for _, due in unmet_due_times(demand)]
    return min(dues) if dues else None


def _light(due: datetime, start: datetime | None, at: datetime) -> str:
    """Red once `at` is past `due`; amber when less than a quarter of the window (or less than
    four hours) is left; else green."""
    if at > due:
        return "red"
    left = due - at
    window = due - start if start is not None else timedelta(0)
    return "amber" if left < AMBER_AT_LEAST or 4 * left < window else "green"


def sla_state(demand: DemandItem, now: datetime) -> str | None:
    """The item's light — red, amber or green — while its clocks run (a paused item's as it
    stood when paused); None for drafts, cancelled items, verified or closed work, and items
    without due times."""
    if demand.status not in RUNNING:
        return None
    at = demand.paused_at or now
    lights = {_light(due, demand.published_at, at) for _, due in unmet_due_times(demand)}
    for light in ("red", "amber", "green"):
        if light in lights:
            return light
    return None


# ---- the same state in SQL, for lists ---------------------------------------------------------

def _epoch(session: Session, moment):
    """Seconds since 1970 of a timestamp column, on PostgreSQL and SQLite alike."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", moment)
    return cast(func.strftime(literal_column("'%s'"), moment), Integer)


def _clocks():
    d = DemandItem
    return ((d.accept_due_at, d.accepted_at), (d.close_due_at, d.verified_at))


def _late(due, met, now: datetime) -> ColumnElement:
    d = DemandItem
    return and_(met.is_(None), due.is_not(None), or_(
        and_(d.paused_at.is_(None), due < now),
        and_(d.paused_at.is_not(None), due < d.paused_at)))


def _soon(session: Session, due, met, now: datetime) -> ColumnElement:
    d, epoch = DemandItem, (lambda col: _epoch(session, col))
    quarter_left = 3 * epoch(due) + epoch(d.published_at)  # < 4 × epoch(at): a quarter left
    return and_(met.is_(None), due.is_not(None), or_(
        and_(d.paused_at.is_(None), due >= now,
             or_(due < now + AMBER_AT_LEAST, quarter_left < 4 * now.timestamp())),
        and_(d.paused_at.is_not(None), due >= d.paused_at,
             or_(epoch(due) - epoch(d.paused_at) < AMBER_AT_LEAST.total_seconds(),
                 quarter_left < 4 * epoch(d.paused_at)))))


def red_sql(now: datetime) -> ColumnElement:
    """SQL for items that are red at `now`."""
    return and_(DemandItem.status.in_(RUNNING),
                or_(*[_late(due, met, now) for due, met in _clocks()]))


def amber_sql(session: Session, now: datetime) -> ColumnElement:
    """SQL for items that are amber at `now`."""
    return and_(DemandItem.status.in_(RUNNING), ~or_(*[_late(due, met, now)
                                                      for due, met in _clocks()]),
                or_(*[_soon(session, due, met, now) for due, met in _clocks()]))


def sla_condition(session: Session, states: Iterable[str], now: datetime) -> ColumnElement:
    """SQL for items in any of `states` ("red", "amber") at `now`."""
    parts = {"red": lambda: red_sql(now), "amber": lambda: amber_sql(session, now)}
    chosen = [parts[s]() for s in states if s in parts]
    return or_(*chosen) if chosen else false()


def next_due_sql():
    """SQL for the first due time an item still has to meet (NULL when none)."""
    d = DemandItem
    return case((and_(d.accepted_at.is_(None), d.accept_due_at.is_not(None)), d.accept_due_at),
                (d.verified_at.is_(None), d.close_due_at), else_=None)


def by_next_due(stmt):
    """`stmt` ordered by the first unmet due time, items without one last."""
    due = next_due_sql()
    return stmt.order_by(due.is_(None), due, DemandItem.id)


# ---- pausing and resuming ---------------------------------------------------------------------

def _keeper(session: Session, actor: Actor, demand_id: int) -> DemandItem:
    """The item under lock, if the actor keeps its clocks: the community's secretary or a grid
    worker over the item's grid."""
    from web.services.demands import get_demand, in_grid_scope

    demand = get_demand(session, actor=actor, demand_id=demand_id)
    require(actor.is_system or actor.is_secretary_of(demand.community_id)
            or in_grid_scope(session, actor, demand.grid_id),
            "only the community's secretary or the item's grid worker")
    return lock(session, DemandItem, demand.id)


def _dues(demand: DemandItem) -> dict:
    return {"accept_due_at": demand.accept_due_at, "close_due_at": demand.close_due_at}


@write
def pause_demand(session: Session, *, actor: Actor, demand_id: int, reason: str | None,
                 now: datetime | None = None) -> DemandItem:
    """Stop an item's clocks, with a reason (waiting on the resident, say)."""
    now = now or utcnow()
    demand = _keeper(session, actor, demand_id)
    reason = need_reason(reason)
    if demand.paused_at is not None:
        raise ConflictError("the item is paused already", paused_at=demand.paused_at.isoformat())
    if demand.status not in RUNNING:
        raise ConflictError("only an item still being worked on can be paused",
                            status=demand.status)
    demand.paused_at, demand.pause_reason = now, reason
    audit.record(session, entity_type="demand_items", entity_id=demand.id, demand_id=demand.id,
                 action="paused", actor=actor, now=now, reason=reason, data=_dues(demand))
    return demand


@write
def resume_demand(session: Session, *, actor: Actor, demand_id: int, reason: str | None = None,
                  now: datetime | None = None) -> DemandItem:
    """Restart a paused item's clocks: the due times still to meet move on by the paused
    service time."""
    now = now or utcnow()
    demand = _keeper(session, actor, demand_id)
    if demand.paused_at is None:
        raise ConflictError("the item is not paused")
    community = session.get(Community, demand.community_id)
    paused = time_between(session, community, demand.paused_at, now)
    if demand.accepted_at is None and demand.accept_due_at is not None:
        demand.accept_due_at = add_time(session, community, demand.accept_due_at, paused)
    if demand.verified_at is None and demand.close_due_at is not None:
        demand.close_due_at = add_time(session, community, demand.close_due_at, paused)
    demand.paused_at = demand.pause_reason = None
    audit.record(session, entity_type="demand_items", entity_id=demand.id, demand_id=demand.id,
                 action="resumed", actor=actor, now=now,
                 reason=(reason or "").strip() or None,
                 data={**_dues(demand), "paused_seconds": int(paused.total_seconds())})
    return demand


# ---- escalation -------------------------------------------------------------------------------

class _Readers:
    """Who is told, looked up once per batch (many items share a community and a grid)."""

    def __init__(self, session: Session):
        self.session, self.found = session, {}

    def __call__(self, lookup, key) -> list[int]:
        if (lookup, key) not in self.found:
            self.found[lookup, key] = lookup(self.session, key)
        return self.found[lookup, key]


def _staff_links(demand: DemandItem, who: _Readers) -> list[tuple[list[int], str]]:
    """(users, link) for the grid workers of the item's grid and its community's secretaries."""
    return [(who(grid_workers_of, demand.grid_id), f"/grid/items/{demand.id}"),
            (who(secretaries_of, demand.community_id), f"/demands/{demand.id}")]


def _tell(session: Session, readers: list[tuple[list[int], str]], *, kind: str, params: dict,
          demand: DemandItem, now: datetime, needs_action: bool = False,
          dedupe_key: str | None = None) -> int:
    """Notify each group of readers with its own link; how many notifications were written."""
    told, made = set(), 0
    for user_ids, link in readers:
        fresh = [u for u in user_ids if u not in told]
        told.update(fresh)
        made += len(notify(session, user_ids=fresh, kind=kind, params=params, now=now, link=link,
                           demand_id=demand.id, needs_action=needs_action,
                           dedupe_key=dedupe_key))
    return made


def escalate(session: Session, demand: DemandItem, *, cause: str, now: datetime,
             who: _Readers | None = None) -> bool:
    """Pass the item up one level (cause "not_accepted", "not_closed" or "unsatisfied"),
    record it and tell the new level's people; False when it is at the top already."""
    before = demand.escalation_level
    if before >= TOP_LEVEL:
        return False
    after = before + 1
    demand.escalation_level, demand.escalated_at = after, now
    audit.record(session, entity_type="demand_items", entity_id=demand.id, demand_id=demand.id,
                 action="escalated", actor=SYSTEM, now=now,
                 data={"from": before, "to": after, "cause": cause})
    who = who or _Readers(session)
    readers = _staff_links(demand, who)
    if after == TOP_LEVEL:
        readers.append((who(subdistrict_admins_of, demand.community_id),
                        f"/demands/{demand.id}"))
    _tell(session, readers, kind="escalated", demand=demand, now=now, needs_action=True,
          params={"title": demand.title, "level": LEVELS[after], "cause": cause},
          dedupe_key=f"escalated:{demand.id}:{after}")
    return True


def late_cause(demand: DemandItem, now: datetime) -> str | None:
    """Why the item is late at `now` ("not_accepted" first, then "not_closed"), if it is."""
    for which, due in unmet_due_times(demand):
        if now > due:
            return "not_accepted" if which == "accept" else "not_closed"
    return None


def _late_ids(session: Session, now: datetime) -> list[int]:
    """Candidates to escalate: running, not paused, late, at the grid; or at the community
    for at least its escalation wait in plain time (working time is never more)."""
    d = DemandItem
    late = or_(and_(d.accepted_at.is_(None), d.accept_due_at < now),
               and_(d.verified_at.is_(None), d.close_due_at < now))
    base = select(d.id).where(d.status.in_(RUNNING), d.paused_at.is_(None), late)
    ids = set(session.scalars(base.where(d.escalation_level == 0)))
    for hours in session.scalars(select(Community.escalate_after_hours).distinct()):
        ids.update(session.scalars(base.where(
            d.escalation_level == 1, d.escalated_at <= now - timedelta(hours=hours),
            d.community_id.in_(select(Community.id).where(
                Community.escalate_after_hours == hours)))))
    return sorted(ids)


def _batches(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start:start + BATCH]


def _locked(session: Session, ids: list[int]) -> list[DemandItem]:
    return list(session.scalars(select(DemandItem).where(DemandItem.id.in_(ids))
                                .order_by(DemandItem.id).with_for_update()
                                .execution_options(populate_existing=True)))


def _due_to_escalate(session: Session, demand: DemandItem, now: datetime) -> str | None:
    """The cause to escalate the item for now, or None (checked again under lock)."""
    cause = late_cause(demand, now)
    if cause is None or demand.paused_at is not None or demand.status not in RUNNING \
            or demand.escalation_level >= TOP_LEVEL:
        return None
    if demand.escalation_level == 1 and demand.escalated_at is not None:
        community = session.get(Community, demand.community_id)
        waited = add_time(session, community, demand.escalated_at,
                          timedelta(hours=community.escalate_after_hours))
        if waited > now:
            return None
    return cause


@write
def _escalate_batch(session: Session, ids: list[int], now: datetime) -> int:
    done, who = 0, _Readers(session)
    for demand in _locked(session, ids):
        cause = _due_to_escalate(session, demand, now)
        if cause is not None and escalate(session, demand, cause=cause, now=now, who=who):
            done += 1
    return done


def _soon_ids(session: Session, now: datetime) -> list[int]:
    d = DemandItem
    return list(session.scalars(select(d.id).where(
        d.status.in_(RUNNING), d.paused_at.is_(None),
        or_(*[_soon(session, due, met, now) for due, met in _clocks()])).order_by(d.id)))


def _workers_on(session: Session, demand: DemandItem) -> list[int]:
    """The admins of the units holding a confirmed share of the item."""
    unit_ids = session.scalars(select(Assignment.unit_id).where(
        Assignment.demand_id == demand.id,
        Assignment.status.in_([str(AssignmentStatus.APPROVED), str(AssignmentStatus.ACCEPTED)])))
    return [u for unit_id in set(unit_ids) for u in unit_admins_of(session, unit_id)]


@write
def _warn_batch(session: Session, ids: list[int], now: datetime) -> int:
    """A "due soon" notice once per item and due time, when that due time turns amber."""
    sent = set(session.scalars(select(Notification.dedupe_key).where(
        Notification.kind == "due_soon", Notification.demand_id.in_(ids))))
    told, who = 0, _Readers(session)
    for demand in session.scalars(select(DemandItem).where(DemandItem.id.in_(ids))):
        if demand.paused_at is not None or demand.status not in RUNNING:
            continue
        for which, due in unmet_due_times(demand):
            key = f"due_soon:{demand.id}:{which}:{due.isoformat()}"
            if key in sent or _light(due, demand.published_at, now) != "amber":
                continue
            readers = _staff_links(demand, who)
            if which == "close":
                readers.append((_workers_on(session, demand), "/unit/work"))
            told += bool(_tell(session, readers, kind="due_soon", demand=demand, now=now,
                               params={"title": demand.title, "due_at": due.isoformat()},
                               needs_action=True, dedupe_key=key))
    return told


def check_service_levels(session: Session, *, now: datetime | None = None) -> dict:
    """The scheduler's service-level job (as the system): escalate late items one level (grid →
    community at once, community → subdistrict after the community's escalation wait), and
    send "due soon" notices; a paused item is left alone."""
    now = now or utcnow()
    escalated = sum(_escalate_batch(session, ids, now) for ids in _batches(
        _late_ids(session, now)))
    warned = sum(_warn_batch(session, ids, now) for ids in _batches(_soon_ids(session, now)))
    return {"escalated": escalated, "due_soon": warned}


# ---- dispatches not answered in time ----------------------------------------------------------

def _local_text(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(LOCAL_TZ)).strftime("%Y-%m-%d %H:%M")


@write
def _expire_batch(session: Session, ids: list[int], now: datetime) -> int:
    from web.services.assignments import end_assignment

    done = 0
    for assignment_id in ids:
        demand = lock(session, DemandItem, session.get(Assignment, assignment_id).demand_id)
        dispatch = lock(session, Assignment, assignment_id)
        if dispatch.status != AssignmentStatus.OFFERED or dispatch.response_deadline is None \
                or dispatch.response_deadline >= now or demand.status not in COVERAGE_STATES:
            continue
        end_assignment(session, dispatch, AssignmentStatus.EXPIRED, actor=SYSTEM, now=now,
                       reason=f"not answered by {_local_text(dispatch.response_deadline)}")
        unit = session.get(Unit, dispatch.unit_id)
        _tell(session, [(secretaries_of(session, demand.community_id), f"/demands/{demand.id}"),
                        (unit_admins_of(session, unit.id), "/unit/work")],
              kind="dispatch_expired", demand=demand, now=now,
              params={"title": demand.title, "unit": unit.name},
              dedupe_key=f"dispatch_expired:{dispatch.id}")
        done += 1
    return done


def expire_dispatches(session: Session, *, now: datetime | None = None) -> dict:
    """The scheduler's job: every dispatch not answered by its deadline expires, and its
    quantity goes back to the demand and the resource as when a unit declines."""
    now = now or utcnow()
    ids = list(session.scalars(select(Assignment.id).where(
        Assignment.status == str(AssignmentStatus.OFFERED),
        Assignment.response_deadline < now).order_by(Assignment.id)))
    return {"expired": sum(_expire_batch(session, batch, now) for batch in _batches(ids))}


# ---- verified work confirmed automatically ----------------------------------------------------

def _confirm_ids(session: Session, now: datetime) -> list[int]:
    d, ids = DemandItem, []
    for days in session.scalars(select(Community.auto_confirm_days).distinct()):
        ids += session.scalars(select(d.id).where(
            d.status == str(S.VERIFIED), d.verified_at <= now - timedelta(days=days),
            d.community_id.in_(select(Community.id).where(Community.auto_confirm_days == days))))
    return sorted(ids)


@write
def _confirm_batch(session: Session, ids: list[int], now: datetime) -> int:
    done = 0
    for demand in _locked(session, ids):
        community = session.get(Community, demand.community_id)
        days = community.auto_confirm_days
        if demand.status != S.VERIFIED or demand.verified_at is None or \
                add_time(session, community, demand.verified_at, timedelta(days=days)) > now:
            continue
        audit.transition(session, demand, S.CLOSED, actor=SYSTEM, now=now,
                         action="auto_confirmed", data={"days": days})
        demand.auto_confirmed = True
        _tell(session, [([demand.beneficiary_user_id], f"/me/services/{demand.id}"),
                        (secretaries_of(session, demand.community_id), f"/demands/{demand.id}")],
              kind="auto_confirmed", demand=demand, now=now,
              params={"title": demand.title, "days": days},
              dedupe_key=f"auto_confirmed:{demand.id}")
        done += 1
    return done


def auto_confirm(session: Session, *, now: datetime | None = None) -> dict:
    """The scheduler's job: verified work the beneficiary has not confirmed within the
    community's days is closed, marked as confirmed automatically, with no rating."""
    now = now or utcnow()
    return {"confirmed": sum(_confirm_batch(session, batch, now)
                             for batch in _batches(_confirm_ids(session, now)))}


# ---- unsatisfactory ratings -------------------------------------------------------------------

def reopen_for_rework(session: Session, demand: DemandItem, *, actor: Actor, rating: int,
                      comment: str | None, on_behalf: bool, now: datetime) -> None:
    """Work rated unsatisfactory goes back to open, needing its whole quantity again, with
    fresh due times; the secretaries are told, and a second time it escalates at once."""
    audit.transition(session, demand, S.OPEN, actor=actor, now=now,
                     action="rated_unsatisfactory", reason=comment,
                     data={"rating": rating, "on_behalf": on_behalf})
    demand.unsatisfied_count = (demand.unsatisfied_count or 0) + 1
    demand.quantity_open, demand.quantity_confirmed = demand.quantity_needed, 0
    demand.verified_at = demand.accepted_at = None
    set_due_times(session, demand, now)
    _tell(session, [(secretaries_of(session, demand.community_id), f"/demands/{demand.id}")],
          kind="rated_unsatisfactory", demand=demand, now=now, needs_action=True,
          params={"title": demand.title, "rating": rating},
          dedupe_key=f"rated_unsatisfactory:{demand.id}:{demand.unsatisfied_count}")
    if demand.unsatisfied_count >= 2:
        escalate(session, demand, cause="unsatisfied", now=now)
