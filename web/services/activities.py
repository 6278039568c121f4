"""Activity sessions: sign-ups with a waiting list, check-in and out, and confirmed hours that
become service records the love bank credits once.

A session belongs to a covered demand or to a service post. Its places are counted under the
session's row lock, so a session never takes more people than its headcount; when someone
withdraws, the first on the waiting list moves up in the same transaction.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.domain.states import (
    HOLDING_SIGNUP,
    WORKABLE_STATES,
    SessionStatus,
    SignupStatus,
)
from web.errors import ConflictError, NotFoundError
from web.models import (
    ActivitySession,
    ServicePost,
    ServiceRecord,
    SessionSignup,
    TeamMember,
    User,
    VolunteerProfile,
    VolunteerTeam,
)
from web.services import audit
from web.services.base import (
    Page,
    get_or_404,
    invalid,
    like_pattern,
    local_date,
    lock,
    paginate,
    require,
    utcnow,
    write,
)
from web.services.demands import get_demand, lead_assignment
from web.services.lovebank import credit_service_record
from web.services.scope import overseen, scoped

SIGNUP_RECORD_NAMESPACE = uuid.UUID("0c5a3f57-9f0e-4d53-8a0e-2b8f1d6c7e21")
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
MAX_MINUTES = 24 * 60


def signup_record_id(signup_id: int) -> str:
    """The stable id of the service record for one sign-up (the same on every retry)."""
    return str(uuid.uuid5(SIGNUP_RECORD_NAMESPACE, f"signup:{signup_id}"))


def _may_schedule(session: Session, actor: Actor, community_id: int,
                  demand_id: int | None) -> bool:
    """The community's secretary schedules sessions; so does a demand's lead unit."""
    if actor.is_system or actor.is_secretary_of(community_id):
        return True
    if demand_id is not None:
        lead = lead_assignment(session, demand_id)
        return lead is not None and actor.is_unit_admin_of(lead.unit_id)
    return False


def _organises(session: Session, actor: Actor, act: ActivitySession) -> bool:
    """The community's secretary, the session's organiser, or the demand's lead unit."""
    if actor.is_system or actor.is_secretary_of(act.community_id):
        return True
    if act.organiser_id is not None and act.organiser_id == actor.user_id:
        return True
    if act.demand_id is not None:
        lead = lead_assignment(session, act.demand_id)
        return lead is not None and actor.is_unit_admin_of(lead.unit_id)
    return False


@write
def create_session(session: Session, *, actor: Actor, data: dict,
                   now: datetime | None = None) -> ActivitySession:
    """Schedule a session of a covered demand or of a service post."""
    now = now or utcnow()
    demand_id, post_id = data.get("demand_id"), data.get("post_id")
    if (demand_id is None) == (post_id is None):
        raise invalid("demand_id", "name a demand or a post, one of them")
    if demand_id is not None:
        subject = get_demand(session, actor=actor, demand_id=demand_id)
        if subject.status not in WORKABLE_STATES:
            raise ConflictError("sessions are held for covered demands", status=subject.status)
        community_id, category_id = subject.community_id, subject.category_id
    else:
        subject = get_or_404(session, ServicePost, post_id, "ServicePost")
        community_id, category_id = subject.community_id, subject.category_id
    act = ActivitySession(community_id=community_id, demand_id=demand_id, post_id=post_id,
                          category_id=category_id, title=data["title"].strip(),
                          place=data["place"].strip(), starts_at=data["starts_at"],
                          ends_at=data["ends_at"], headcount=data["headcount"],
                          checkin_code=_code(), status=str(SessionStatus.SCHEDULED),
                          organiser_id=data.get("organiser_id") or actor.user_id,
                          created_by=actor.user_id, created_at=now)
    require(_may_schedule(session, actor, community_id, demand_id),
            "only the community's secretary or the demand's lead unit")
    if data.get("organiser_id") is not None and session.get(User, data["organiser_id"]) is None:
        raise invalid("organiser_id", "no such user")
    if act.ends_at <= act.starts_at:
        raise invalid("ends_at", "ends before it starts")
    if not 1 <= act.headcount <= 10_000:
        raise invalid("headcount", "from 1 to 10,000")
    session.add(act)
    session.flush()
    audit.record(session, entity_type="activity_sessions", entity_id=act.id, action="scheduled",
                 actor=actor, now=now, demand_id=demand_id, to_status=act.status)
    return act


def _code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))


def get_session(session: Session, *, actor: Actor, session_id: int) -> ActivitySession:
    return get_or_404(session, ActivitySession, session_id, "ActivitySession")


def _words(q: str, *columns):
    """SQL for `q` anywhere in any of `columns` (case-insensitive, wildcards taken literally)."""
    like = like_pattern(q)
    return or_(*(column.ilike(like, escape="\\") for column in columns))


def list_sessions(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                  per_page: int = 20) -> Page:
    """Sessions anyone signed in may browse, soonest first; filter by community, demand, post,
    status, start dates, `ids`, and `q` in the title or place."""
    stmt = select(ActivitySession)
    for key in ("community_id", "demand_id", "post_id", "status"):
        if filters.get(key):
            stmt = stmt.where(getattr(ActivitySession, key) == filters[key])
    if filters.get("ids") is not None:
        stmt = stmt.where(ActivitySession.id.in_(filters["ids"]))
    if filters.get("starts_from"):
        stmt = stmt.where(ActivitySession.starts_at >= filters["starts_from"])
    if filters.get("starts_to"):
        stmt = stmt.where(ActivitySession.starts_at <= filters["starts_to"])
    if filters.get("q"):
        stmt = stmt.where(_words(filters["q"], ActivitySession.title, ActivitySession.place))
    return paginate(session, stmt.order_by(ActivitySession.starts_at, ActivitySession.id),
                    page, per_page)


def places_taken(session: Session, session_ids: list[int]) -> dict[int, int]:
    """Places taken in each of `session_ids` (0 for none), in one query for a whole page."""
    rows = session.execute(select(SessionSignup.session_id, func.count())
                           .where(SessionSignup.session_id.in_(session_ids),
                                  SessionSignup.status.in_([str(s) for s in HOLDING_SIGNUP]))
                           .group_by(SessionSignup.session_id)).all()
    return {session_id: 0 for session_id in session_ids} | dict(rows)


def holding(session: Session, session_id: int) -> int:
    """Places taken in a session."""
    return session.scalar(select(func.count()).select_from(SessionSignup).where(
        SessionSignup.session_id == session_id,
        SessionSignup.status.in_([str(s) for s in HOLDING_SIGNUP]))) or 0


def _signup_one(session: Session, act: ActivitySession, user_id: int, team_id: int | None, *,
                actor: Actor, now: datetime) -> SessionSignup:
    existing = session.scalar(select(SessionSignup).where(
        SessionSignup.session_id == act.id, SessionSignup.user_id == user_id))
    if existing is not None and existing.status != SignupStatus.WITHDRAWN:
        raise ConflictError("already signed up for this session", signup_id=existing.id)
    full = holding(session, act.id) >= act.headcount
    status = SignupStatus.WAITLISTED if full else SignupStatus.SIGNED_UP
    previous = existing.status if existing else None
    signup = existing or SessionSignup(session_id=act.id, user_id=user_id)
    # signing up again after withdrawing takes a new place at the end of the queue
    signup.team_id, signup.status, signup.signed_up_at = team_id, str(status), now
    session.add(signup)
    session.flush()
    audit.record(session, entity_type="session_signups", entity_id=signup.id,
                 action=str(status), actor=actor, now=now, demand_id=act.demand_id,
                 from_status=previous, to_status=signup.status,
                 data={"session_id": act.id, "team_id": team_id})
    return signup


def _open_for_signup(session: Session, session_id: int, now: datetime) -> ActivitySession:
    act = lock(session, ActivitySession, session_id)
    if act is None:
        raise NotFoundError("ActivitySession", session_id)
    if act.status != SessionStatus.SCHEDULED or act.ends_at <= now:
        raise ConflictError("this session is not taking sign-ups", status=act.status)
    return act


@write
def sign_up(session: Session, *, actor: Actor, session_id: int, team_id: int | None = None,
            now: datetime | None = None) -> list[SessionSignup]:
    """Sign up (or join the waiting list when full); a team's leader signs the whole team up."""
    now = now or utcnow()
    act = _open_for_signup(session, session_id, now)
    if team_id is None:
        _need_profile(session, actor.user_id, actor)
        return [_signup_one(session, act, actor.user_id, None, actor=actor, now=now)]
    team = get_or_404(session, VolunteerTeam, team_id, "VolunteerTeam")
    require(team.leader_id == actor.user_id, "only the team's leader signs the team up")
    members = sorted(m.user_id for m in session.scalars(select(TeamMember).where(
        TeamMember.team_id == team.id)))
    return [_signup_one(session, act, u, team.id, actor=actor, now=now) for u in members
            if not _signed(session, act.id, u)]


def _signed(session: Session, session_id: int, user_id: int) -> bool:
    return session.scalar(select(SessionSignup.id).where(
        SessionSignup.session_id == session_id, SessionSignup.user_id == user_id,
        SessionSignup.status != str(SignupStatus.WITHDRAWN))) is not None


def _need_profile(session: Session, user_id: int | None, actor: Actor | None = None) -> None:
    if actor is not None:
        require(actor.is_system or bool(actor.resident_communities),
                "only residents volunteer")
    if user_id is None or session.scalar(select(VolunteerProfile.id).where(
            VolunteerProfile.user_id == user_id, VolunteerProfile.is_active.is_(True))) is None:
        raise ConflictError("become a volunteer first (your volunteer profile)")


def _promote(session: Session, act: ActivitySession, *, actor: Actor, now: datetime) -> None:
    """Move the first on the waiting list up while places are free."""
    while holding(session, act.id) < act.headcount:
        first = session.scalar(select(SessionSignup).where(
            SessionSignup.session_id == act.id,
            SessionSignup.status == str(SignupStatus.WAITLISTED))
            .order_by(SessionSignup.signed_up_at, SessionSignup.id).limit(1))
        if first is None:
            return
        audit.transition(session, first, SignupStatus.SIGNED_UP, actor=actor, now=now,
                         action="promoted")


def _signup_for(session: Session, actor: Actor,
                signup_id: int) -> tuple[SessionSignup, ActivitySession]:
    signup = session.scalar(_visible_signups(actor).where(SessionSignup.id == signup_id))
    if signup is None:
        raise NotFoundError("SessionSignup", signup_id)
    act = lock(session, ActivitySession, signup.session_id)
    return lock(session, SessionSignup, signup.id), act


@write
def withdraw_signup(session: Session, *, actor: Actor, signup_id: int,
                    now: datetime | None = None) -> SessionSignup:
    """The volunteer (or the organiser) withdraws a sign-up; the waiting list moves up."""
    now = now or utcnow()
    signup, act = _signup_for(session, actor, signup_id)
    require(signup.user_id == actor.user_id or _organises(session, actor, act),
            "only the volunteer or the organiser")
    audit.transition(session, signup, SignupStatus.WITHDRAWN, actor=actor, now=now)
    _promote(session, act, actor=actor, now=now)
    return signup


@write
def check_in(session: Session, *, actor: Actor, session_id: int, code: str | None = None,
             user_id: int | None = None, now: datetime | None = None) -> SessionSignup:
    """Check in with the code shown at the venue, or by the organiser naming the volunteer."""
    return _clock(session, actor, session_id, code, user_id, now or utcnow(), out=False)


@write
def check_out(session: Session, *, actor: Actor, session_id: int, code: str | None = None,
              user_id: int | None = None, now: datetime | None = None) -> SessionSignup:
    """Check out the same way; the minutes between in and out are the hours to confirm."""
    return _clock(session, actor, session_id, code, user_id, now or utcnow(), out=True)


def _clock(session: Session, actor: Actor, session_id: int, code: str | None,
           user_id: int | None, now: datetime, *, out: bool) -> SessionSignup:
    act = lock(session, ActivitySession, session_id)
    if act is None:
        raise NotFoundError("ActivitySession", session_id)
    if user_id is not None and user_id != actor.user_id:
        require(_organises(session, actor, act), "only the organiser checks others in or out")
    else:
        user_id = actor.user_id
        if (code or "").strip().upper() != act.checkin_code:
            raise invalid("code", "not this session's code")
    if act.status != SessionStatus.SCHEDULED:
        raise ConflictError("this session is over", status=act.status)
    signup = session.scalar(select(SessionSignup).where(
        SessionSignup.session_id == act.id, SessionSignup.user_id == user_id,
        SessionSignup.status != str(SignupStatus.WITHDRAWN)))
    if signup is None:
        raise ConflictError("not signed up for this session")
    if out:
        audit.transition(session, signup, SignupStatus.CHECKED_OUT, actor=actor, now=now)
        signup.checked_out_at = now
        spent = int((now - signup.checked_in_at).total_seconds() // 60)
        signup.minutes = max(1, min(spent, MAX_MINUTES))
    else:
        audit.transition(session, signup, SignupStatus.CHECKED_IN, actor=actor, now=now)
        signup.checked_in_at = now
    return signup


@write
def confirm_hours(session: Session, *, actor: Actor, signup_id: int, minutes: int | None = None,
                  now: datetime | None = None) -> SessionSignup:
    """The organiser or secretary confirms a checked-out volunteer's hours: one service record,
    credited by the love bank once."""
    now = now or utcnow()
    signup, act = _signup_for(session, actor, signup_id)
    require(_organises(session, actor, act), "only the organiser or the secretary")
    if minutes is not None:
        if not 1 <= minutes <= MAX_MINUTES:
            raise invalid("minutes", "from 1 to 1440")
        signup.minutes = minutes
    audit.transition(session, signup, SignupStatus.CONFIRMED, actor=actor, now=now,
                     data={"minutes": signup.minutes})
    signup.decided_by, signup.decided_at = actor.user_id, now
    user = session.get(User, signup.user_id)
    record = ServiceRecord(
        id=signup_record_id(signup.id), signup_id=signup.id, demand_id=act.demand_id,
        community_id=act.community_id, category_id=act.category_id, user_id=user.id,
        name=user.display_name, minutes=signup.minutes,
        served_on=local_date(signup.checked_in_at or act.starts_at), verified_by=actor.user_id,
        verified_at=now)
    session.add(record)
    session.flush()
    signup.service_record_id = record.id
    credit_service_record(session, record, actor=actor, now=now)
    return signup


@write
def close_session(session: Session, *, actor: Actor, session_id: int, cancel: bool = False,
                  reason: str | None = None, now: datetime | None = None) -> ActivitySession:
    """Complete a session (who never checked in is marked absent) or cancel it."""
    now = now or utcnow()
    act = lock(session, ActivitySession, session_id)
    if act is None:
        raise NotFoundError("ActivitySession", session_id)
    require(_organises(session, actor, act), "only the organiser or the secretary")
    target = SessionStatus.CANCELLED if cancel else SessionStatus.COMPLETED
    audit.transition(session, act, target, actor=actor, now=now, reason=reason)
    for signup in session.scalars(select(SessionSignup).where(
            SessionSignup.session_id == act.id,
            SessionSignup.status.in_([str(SignupStatus.SIGNED_UP),
                                      str(SignupStatus.WAITLISTED)]))):
        absent = SignupStatus.NO_SHOW if signup.status == SignupStatus.SIGNED_UP and not cancel \
            else SignupStatus.WITHDRAWN
        audit.transition(session, signup, absent, actor=actor, now=now, reason=reason)
    return act


def _visible_signups(actor: Actor) -> Select:
    conds = overseen(actor, ActivitySession.community_id)
    if actor.user_id is not None:
        conds += [SessionSignup.user_id == actor.user_id,
                  ActivitySession.organiser_id == actor.user_id]
    stmt = scoped(SessionSignup, conds, actor)
    return stmt.join(ActivitySession, ActivitySession.id == SessionSignup.session_id)


def list_signups(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                 per_page: int = 20, newest_first: bool = False) -> Page:
    """Sign-ups: your own, your sessions', or your community's; by session (or `session_ids`),
    person, status (comma-separated for several), team, and `q` in the session's title or place
    or the person's name."""
    stmt = _visible_signups(actor)
    for key, column in (("session_id", SessionSignup.session_id),
                        ("user_id", SessionSignup.user_id), ("team_id", SessionSignup.team_id)):
        if filters.get(key):
            stmt = stmt.where(column == filters[key])
    if filters.get("status"):
        stmt = stmt.where(SessionSignup.status.in_(str(filters["status"]).split(",")))
    if filters.get("session_ids") is not None:
        stmt = stmt.where(SessionSignup.session_id.in_(filters["session_ids"]))
    if filters.get("q"):
        named = select(User.id).where(_words(filters["q"], User.display_name))
        stmt = stmt.where(or_(_words(filters["q"], ActivitySession.title, ActivitySession.place),
                              SessionSignup.user_id.in_(named)))
    order = SessionSignup.signed_up_at.desc() if newest_first else SessionSignup.signed_up_at
    return paginate(session, stmt.order_by(order, SessionSignup.id), page, per_page)


def team_hours(session: Session, *, actor: Actor, team_id: int) -> dict:
    """A team's confirmed hours and sessions, counted per member."""
    team = get_or_404(session, VolunteerTeam, team_id, "VolunteerTeam")
    rows = session.execute(select(SessionSignup.user_id, func.count(),
                                  func.coalesce(func.sum(SessionSignup.minutes), 0))
                           .where(SessionSignup.team_id == team.id,
                                  SessionSignup.status == str(SignupStatus.CONFIRMED))
                           .group_by(SessionSignup.user_id)).all()
    members = [{"user_id": u, "sessions": n, "minutes": int(m)} for u, n, m in rows]
    return {"team_id": team.id, "members": members,
            "minutes": sum(m["minutes"] for m in members)}

