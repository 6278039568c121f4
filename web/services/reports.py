"""Work reports by the lead unit, the secretary's verification, and the service records it yields."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.domain.states import WORKABLE_STATES, DemandStatus, ReportStatus
from web.errors import ConflictError, NotFoundError
from web.models import (
    ActivitySession,
    Category,
    DemandItem,
    ReportVolunteer,
    ServiceRecord,
    SessionSignup,
    Unit,
    User,
    WorkReport,
)
from web.services import audit
from web.services.assignments import close_open_offers, complete_assignments
from web.services.base import (
    Page,
    invalid,
    like_pattern,
    local_date,
    lock,
    need_reason,
    paginate,
    require,
    utcnow,
    write,
)
from web.services.demands import get_demand, lead_assignment
from web.services.lovebank import credit_service_record
from web.services.notifications import (
    grid_workers_of,
    notify,
    secretaries_of,
    unit_admins_of,
)
from web.services.scope import handled_demands, item_or_unit_named, overseen, scoped

SERVICE_RECORD_NAMESPACE = uuid.UUID("6f1d0c8e-3b0a-4c5e-9a57-7c1b2f3e4d50")


def service_record_id(report_volunteer_id: int) -> str:
    """The stable id of the service record for one report line (the same on every retry)."""
    return str(uuid.uuid5(SERVICE_RECORD_NAMESPACE, f"report-volunteer:{report_volunteer_id}"))


@write
def submit_report(session: Session, *, actor: Actor, demand_id: int, started_on: date,
                  ended_on: date, volunteers: list[dict], beneficiaries_served: int,
                  value_fen: int, summary: str = "", now: datetime | None = None) -> WorkReport:
    """The lead unit reports the work done: dates, volunteers and their minutes, people, value."""
    now = now or utcnow()
    demand = lock(session, DemandItem, get_demand(session, actor=actor, demand_id=demand_id).id)
    lead = lead_assignment(session, demand.id)
    require(lead is not None and actor.is_unit_admin_of(lead.unit_id),
            "only the lead unit reports for the team")
    if demand.status not in WORKABLE_STATES:
        raise ConflictError("work cannot be reported on this demand now", status=demand.status)
    _check_dates(started_on, ended_on, local_date(now))
    if beneficiaries_served < 0:
        raise invalid("beneficiaries_served", "cannot be negative")
    if value_fen < 0:
        raise invalid("value_fen", "cannot be negative")
    lines = [_volunteer_line(session, i, v) for i, v in enumerate(volunteers)]
    if not lines:
        raise invalid("volunteers", "name at least one volunteer")
    close_open_offers(session, demand, actor=actor, now=now)
    report = WorkReport(demand_id=demand.id, unit_id=lead.unit_id, started_on=started_on,
                        ended_on=ended_on, summary=summary,
                        beneficiaries_served=beneficiaries_served, value_fen=value_fen,
                        status=str(ReportStatus.SUBMITTED), submitted_by=actor.user_id,
                        submitted_at=now, volunteers=lines)
    session.add(report)
    session.flush()
    audit.record(session, entity_type="work_reports", entity_id=report.id, demand_id=demand.id,
                 action="submitted", actor=actor, now=now, to_status=report.status,
                 data={"volunteers": len(lines), "minutes": sum(v.minutes for v in lines)})
    audit.transition(session, demand, DemandStatus.REPORTED, actor=actor, now=now,
                     action="reported", data={"report_id": report.id})
    notify(session, user_ids=secretaries_of(session, demand.community_id),
           kind="report_submitted", now=now, link="/secretary", demand_id=demand.id,
           params={"title": demand.title, "unit": session.get(Unit, report.unit_id).name},
           needs_action=True, dedupe_key=f"report_submitted:{report.id}")
    return report


def _check_dates(started_on: date, ended_on: date, today: date) -> None:
    if ended_on < started_on:
        raise invalid("ended_on", "ends before it starts")
    if ended_on > today:
        raise invalid("ended_on", "work cannot be reported for days to come")


def _volunteer_line(session: Session, index: int, data: dict) -> ReportVolunteer:
    field = f"volunteers.{index}"
    minutes = data.get("minutes")
    if minutes is None or minutes < 1 or minutes > 24 * 60 * 31:
        raise invalid(f"{field}.hours", "between one minute and 31 days")
    if data.get("user_id") is not None:
        user = session.get(User, data["user_id"])
        if user is None:
            raise invalid(f"{field}.user_id", "no such user")
        return ReportVolunteer(user_id=user.id, name=data.get("name") or user.display_name,
                               phone=data.get("phone") or user.phone, minutes=minutes)
    if not (data.get("name") or "").strip() or not (data.get("phone") or "").strip():
        raise invalid(field, "a volunteer without an account needs a name and a phone")
    return ReportVolunteer(name=data["name"].strip(), phone=data["phone"].strip(), minutes=minutes)


def _visible(session: Session, actor: Actor) -> Select:
    """Reports of the actor's unit, or on demands the actor handles."""
    conds = [WorkReport.unit_id.in_(actor.admin_units)] if actor.admin_units else []
    handled = handled_demands(session, actor)
    if handled:
        conds.append(WorkReport.demand_id.in_(select(DemandItem.id).where(or_(*handled))))
    return scoped(WorkReport, conds, actor)


def get_report(session: Session, *, actor: Actor, report_id: int) -> WorkReport:
    """A report the actor may read, else 404."""
    report = session.scalar(_visible(session, actor).where(WorkReport.id == report_id))
    if report is None:
        raise NotFoundError("WorkReport", report_id)
    return report


def list_reports(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                 per_page: int = 20) -> Page:
    stmt = _visible(session, actor)
    for key in ("status", "demand_id", "unit_id"):
        if filters.get(key):
            stmt = stmt.where(getattr(WorkReport, key) == filters[key])
    if filters.get("q"):
        stmt = stmt.where(item_or_unit_named(WorkReport, filters["q"]))
    return paginate(session, stmt.order_by(WorkReport.id.desc()), page, per_page)


def _decide(session: Session, actor: Actor, report_id: int) -> tuple[WorkReport, DemandItem]:
    report = get_report(session, actor=actor, report_id=report_id)
    demand = lock(session, DemandItem, report.demand_id)
    require(actor.is_secretary_of(demand.community_id), "only the community's secretary")
    return lock(session, WorkReport, report.id), demand


@write
def verify_report(session: Session, *, actor: Actor, report_id: int,
                  now: datetime | None = None) -> WorkReport:
    """The secretary verifies a report: each volunteer line becomes one service record."""
    now = now or utcnow()
    report, demand = _decide(session, actor, report_id)
    audit.transition(session, report, ReportStatus.VERIFIED, actor=actor, now=now)
    report.decided_by, report.decided_at = actor.user_id, now
    for line in report.volunteers:
        record = ServiceRecord(
            id=service_record_id(line.id), report_volunteer_id=line.id, report_id=report.id,
            demand_id=demand.id, unit_id=report.unit_id, community_id=demand.community_id,
            category_id=demand.category_id, user_id=line.user_id, name=line.name,
            minutes=line.minutes, served_on=report.ended_on, verified_by=actor.user_id,
            verified_at=now)
        session.add(record)
        session.flush()
        credit_service_record(session, record, actor=actor, now=now)
    demand.verified_at = now  # the close clock is met
    audit.transition(session, demand, DemandStatus.VERIFIED, actor=actor, now=now,
                     data={"report_id": report.id})
    complete_assignments(session, demand.id, actor=actor, now=now)
    _tell_unit(session, report, demand, "report_verified", now)
    _ask_to_confirm(session, demand, now)
    return report


def _tell_unit(session: Session, report: WorkReport, demand: DemandItem, kind: str,
               now: datetime, **params) -> None:
    """Tell the reporting unit's admins what became of their report."""
    notify(session, user_ids=unit_admins_of(session, report.unit_id), kind=kind, now=now,
           params={"title": demand.title, **params}, link="/unit/work", demand_id=demand.id,
           dedupe_key=f"{kind}:{report.id}")


def _ask_to_confirm(session: Session, demand: DemandItem, now: datetime) -> None:
    """Ask the beneficiary (or, without an account, the grid's workers) to confirm and rate."""
    if demand.beneficiary_user_id is not None:
        readers, link = [demand.beneficiary_user_id], f"/me/services/{demand.id}"
    else:
        readers, link = grid_workers_of(session, demand.grid_id), f"/grid/items/{demand.id}"
    notify(session, user_ids=readers, kind="confirm_requested", now=now, link=link,
           params={"title": demand.title}, demand_id=demand.id, needs_action=True,
           dedupe_key=f"confirm_requested:{demand.id}:{demand.unsatisfied_count}")


@write
def return_report(session: Session, *, actor: Actor, report_id: int, reason: str | None,
                  now: datetime | None = None) -> WorkReport:
    """The secretary returns a report for correction; the lead unit reports again."""
    now = now or utcnow()
    report, demand = _decide(session, actor, report_id)
    reason = need_reason(reason)
    audit.transition(session, report, ReportStatus.RETURNED, actor=actor, now=now, reason=reason)
    report.return_reason = reason
    report.decided_by, report.decided_at = actor.user_id, now
    audit.transition(session, demand, DemandStatus.IN_PROGRESS, actor=actor, now=now,
                     action="returned", reason=reason)
    _tell_unit(session, report, demand, "report_returned", now, reason=reason)
    return report


def _service_records(actor: Actor, filters: dict) -> Select:
    """The service records the actor may read that match `filters`."""
    conds = overseen(actor, ServiceRecord.community_id)
    if actor.user_id is not None:
        conds.append(ServiceRecord.user_id == actor.user_id)
    if actor.admin_units:
        conds.append(ServiceRecord.unit_id.in_(actor.admin_units))
    stmt = scoped(ServiceRecord, conds, actor)
    for key in ("user_id", "unit_id", "community_id", "demand_id", "report_id", "category_id"):
        if filters.get(key):
            stmt = stmt.where(getattr(ServiceRecord, key) == filters[key])
    if filters.get("year"):  # a range, so the date's index serves
        if not 1 <= filters["year"] < 9999:
            raise invalid("year", "not a year")
        stmt = stmt.where(ServiceRecord.served_on >= date(filters["year"], 1, 1),
                          ServiceRecord.served_on < date(filters["year"] + 1, 1, 1))
    if filters.get("q"):
        stmt = stmt.where(_record_words(like_pattern(filters["q"])))
    return stmt


def _record_words(like: str):
    """Words in what the service was for (the item's or the activity's title), the unit's
    name or the category's name, wildcards taken literally."""
    def has(column):
        return column.ilike(like, escape="\\")

    return or_(
        ServiceRecord.demand_id.in_(select(DemandItem.id).where(has(DemandItem.title))),
        ServiceRecord.unit_id.in_(select(Unit.id).where(has(Unit.name))),
        ServiceRecord.signup_id.in_(select(SessionSignup.id).join(
            ActivitySession, SessionSignup.session_id == ActivitySession.id)
            .where(has(ActivitySession.title))),
        ServiceRecord.category_id.in_(select(Category.id).where(
            or_(has(Category.name_zh), has(Category.name_en)))))


def list_service_records(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                         per_page: int = 20) -> Page:
    """Service records of the actor, their unit, or their community/subdistrict, newest first:
    by person, unit, community, item, report, `category_id`, `year` (served in) and `q`."""
    stmt = _service_records(actor, filters)
    return paginate(session, stmt.order_by(ServiceRecord.verified_at.desc(), ServiceRecord.id),
                    page, per_page)


def service_minutes(session: Session, *, actor: Actor, filters: dict,
                    by: str) -> list[tuple[int, int, int]]:
    """(category id or year, records, minutes) of the matching service records, summed in the
    database, most minutes first; `by` is "category" or "year"."""
    found = _service_records(actor, filters).subquery()
    key = found.c.category_id if by == "category" else func.extract("year", found.c.served_on)
    rows = session.execute(select(key, func.count(), func.sum(found.c.minutes))
                           .group_by(key)).all()
    return sorted(((int(k), int(n), int(m or 0)) for k, n, m in rows),
                  key=lambda row: (-row[2], row[0]))
