"""Matching people: the optimiser proposes volunteers for service posts with places left, using
the same engine and the same flow as unit proposals — a run, proposals with their score broken
down, approve (the volunteer is offered the place and accepts or declines) or reject with a
reason (not proposed again unless asked), and stale proposals refused.

In the engine's terms each open place of a post is a demand of quantity one (id: post id × PLACES
+ place number; with its weekly schedule), a volunteer is a resource of their own "unit" (capacity one post a run, serving their home
community, within reach of their home), and the volunteer's current posts are the unit's load,
so the fairness term spreads the work. A volunteer who lists preferred categories is proposed
only for posts in them; skills a post requires are a hard rule, as for units.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.problem import ANY, ProblemError, build_problem
from matcher.solve import solve
from web.domain.actor import SYSTEM, Actor
from web.domain.states import MatchRunStatus, PostStatus, ProposalStatus
from web.errors import ConflictError, NotFoundError, ValidationError
from web.models import (
    Category,
    Community,
    MatchRun,
    ServicePost,
    VolunteerProfile,
    VolunteerProposal,
)
from web.services import audit
from web.services.base import Page, lock, need_reason, paginate, require, utcnow, write
from web.services.matching import (
    StaleProposalError,
    check_scope,
    clean_params,
    scope_communities,
    set_progress,
    visible_runs,
)
from web.services.scope import overseen, scoped
from web.services.volunteers import claim_post, post_load

REACH_M = 3000  # how far from home a volunteer is proposed for (when both places are known)
PLACES = 100_000  # a place's id in the problem is post id × PLACES + its number (headcount ≤ 10,000)


def place_ids(post: ServicePost) -> list[int]:
    """The problem's demand ids of a post's open places."""
    return [post.id * PLACES + k for k in range(post.headcount - post.taken)]


def _open_posts(session: Session, communities: list[int]) -> list[ServicePost]:
    return list(session.scalars(select(ServicePost).where(
        ServicePost.community_id.in_(communities), ServicePost.status == str(PostStatus.OPEN),
        ServicePost.taken < ServicePost.headcount).order_by(ServicePost.id)))


def _volunteers(session: Session, communities: list[int]) -> list[VolunteerProfile]:
    return list(session.scalars(select(VolunteerProfile).where(
        VolunteerProfile.community_id.in_(communities), VolunteerProfile.is_active.is_(True))
        .order_by(VolunteerProfile.id)))


def build_people_problem(session: Session, run: MatchRun) -> tuple[dict, dict]:
    """The run's problem in the matcher's record format, and the edit stamps as read."""
    communities = scope_communities(session, run)
    places = {c.id: c for c in session.scalars(select(Community).where(
        Community.id.in_(communities)))}
    posts, people = _open_posts(session, communities), _volunteers(session, communities)
    codes = dict(session.execute(select(Category.id, Category.code)).all())
    held = _held(session, {p.id for p in posts})
    loads = post_load(session, {v.user_id for v in people})
    barred = {(post.id, v.user_id) for v in people for post in posts
              if v.preferred_categories and codes[post.category_id] not in v.preferred_categories}
    barred |= held
    if not run.params.get("include_rejected"):
        barred |= set(session.execute(
            select(VolunteerProposal.post_id, VolunteerProposal.user_id).where(
                VolunteerProposal.post_id.in_({p.id for p in posts}),
                VolunteerProposal.status == str(ProposalStatus.REJECTED))).all())
    by_id = {p.id: p for p in posts}
    forbidden = [{"demand": place, "resource": user_id} for post_id, user_id in sorted(barred)
                 if post_id in by_id for place in place_ids(by_id[post_id])]
    data = {
        "mode": "1+1", "weights": run.params.get("weights") or {},
        "demands": [record for p in posts for record in _place_records(p,
                                                                         places[p.community_id])],
        "resources": [_volunteer_record(v) for v in people],
        "units": [{"id": f"v{v.user_id}", "load": int(loads.get(v.user_id, 0))}
                  for v in people],
        "forbidden": forbidden,
    }
    stamps = {"posts": {p.id: p.updated_at for p in posts},
              "people": {v.user_id: v.updated_at for v in people}}
    return stamps, data


def _held(session: Session, post_ids: set[int]) -> set[tuple[int, int]]:
    """(post, person) pairs already holding a place: never proposed again."""
    from web.domain.states import HOLDING_CLAIM
    from web.models import PostClaim

    return set(session.execute(select(PostClaim.post_id, PostClaim.user_id).where(
        PostClaim.post_id.in_(post_ids),
        PostClaim.status.in_([str(s) for s in HOLDING_CLAIM]))).all())


def _place_records(post: ServicePost, community: Community) -> list[dict]:
    record = {"category": str(post.category_id), "skills": list(post.required_skills or []),
              "quantity": 1, "community": str(post.community_id), "lat": community.lat,
              "lng": community.lng, "team": False}
    weekly = (post.schedule or {}).get("weekly")
    if weekly:
        record["weekly"] = weekly
    return [{"id": place, **record} for place in place_ids(post)]


def _volunteer_record(v: VolunteerProfile) -> dict:
    return {"id": v.user_id, "unit": f"v{v.user_id}", "category": ANY,
            "skills": list(v.skills or []), "share": 1, "quantity": 1, "capacity": 1,
            "communities": [str(v.community_id)], "lat": v.lat, "lng": v.lng,
            "radius_m": REACH_M if v.lat is not None else None,
            "availability": v.availability or {}}


@write
def create_people_run(session: Session, *, actor: Actor, community_id: int | None = None,
                      subdistrict_id: int | None = None, params: dict | None = None,
                      now: datetime | None = None) -> MatchRun:
    """Queue a run proposing volunteers for the open posts of a community or subdistrict."""
    now = now or utcnow()
    check_scope(session, actor, community_id, subdistrict_id)
    params = clean_params(params)
    if params["pinned"] or params["forbidden"]:
        raise ValidationError("pinned and forbidden pairs are for unit runs")
    run = MatchRun(community_id=community_id, subdistrict_id=subdistrict_id, mode="1+1",
                   subject="volunteers", status=str(MatchRunStatus.QUEUED), params=params,
                   progress=0, created_by=actor.user_id, created_at=now)
    session.add(run)
    session.flush()
    audit.record(session, entity_type="match_runs", entity_id=run.id, action="queued",
                 actor=actor, now=now, to_status=run.status, data={"subject": "volunteers"})
    return run


def execute_people_run(session: Session, *, run_id: int, now: datetime | None = None) -> MatchRun:
    """Read, solve outside a transaction, write the proposals; a failure is recorded on the run."""
    clock = (lambda: now) if now is not None else utcnow
    set_progress(session, run_id, 5, MatchRunStatus.RUNNING, now=clock())
    try:
        run = session.get(MatchRun, run_id)
        stamps, data = build_people_problem(session, run)
        params = run.params
        session.rollback()
        result = solve(build_problem(data), time_limit=float(params["time_limit"]),
                       seed=int(params["seed"]))
        _write(session, run_id=run_id, result=result, stamps=stamps, now=clock())
    except (ProblemError, ValidationError) as exc:
        session.rollback()
        set_progress(session, run_id, 100, MatchRunStatus.FAILED, now=clock(), error=str(exc))
    return session.get(MatchRun, run_id)


@write
def _write(session: Session, *, run_id: int, result, stamps: dict, now: datetime) -> None:
    run = session.get(MatchRun, run_id)
    records = result.assignments()
    posts = {p.id: p for p in session.scalars(select(ServicePost).where(
        ServicePost.id.in_({a["demand"] // PLACES for a in records})))}
    for old in session.scalars(select(VolunteerProposal).where(
            VolunteerProposal.post_id.in_(set(posts)),
            VolunteerProposal.status == str(ProposalStatus.PROPOSED))):
        audit.transition(session, old, ProposalStatus.SUPERSEDED, actor=SYSTEM, now=now)
    for a in records:
        post = posts[a["demand"] // PLACES]
        session.add(VolunteerProposal(
            run_id=run.id, post_id=post.id, user_id=a["resource"],
            community_id=post.community_id, score=a["score"], terms=a["terms"],
            status=str(ProposalStatus.PROPOSED), post_updated_at=stamps["posts"][post.id],
            profile_updated_at=stamps["people"][a["resource"]], created_at=now))
    run.summary, run.progress, run.finished_at = result.summary(), 100, now
    audit.transition(session, run, MatchRunStatus.DONE, actor=SYSTEM, now=now,
                     data={"proposals": len(records), "objective": result.objective})


def _visible(actor: Actor):
    conds = overseen(actor, VolunteerProposal.community_id)
    if actor.user_id is not None:
        conds.append(VolunteerProposal.user_id == actor.user_id)
    return scoped(VolunteerProposal, conds, actor)


def list_people_proposals(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                          per_page: int = 20) -> Page:
    stmt = _visible(actor)
    for key in ("run_id", "post_id", "user_id", "status", "community_id"):
        if filters.get(key):
            stmt = stmt.where(getattr(VolunteerProposal, key) == filters[key])
    return paginate(session, stmt.order_by(VolunteerProposal.id), page, per_page)


def get_people_proposal(session: Session, *, actor: Actor, proposal_id: int) -> VolunteerProposal:
    proposal = session.scalar(_visible(actor).where(VolunteerProposal.id == proposal_id))
    if proposal is None:
        raise NotFoundError("VolunteerProposal", proposal_id)
    return proposal


def stale_reason(session: Session, proposal: VolunteerProposal) -> str | None:
    """Why the proposal no longer holds, or None."""
    post = session.get(ServicePost, proposal.post_id)
    profile = session.scalar(select(VolunteerProfile).where(
        VolunteerProfile.user_id == proposal.user_id))
    if post.updated_at != proposal.post_updated_at or post.status != PostStatus.OPEN:
        return "the post changed since the run"
    if post.taken >= post.headcount:
        return "the post has no place left"
    if profile is None or profile.updated_at != proposal.profile_updated_at \
            or not profile.is_active:
        return "the volunteer's profile changed since the run"
    return None


def _decide(session: Session, actor: Actor, proposal_id: int) -> VolunteerProposal:
    proposal = get_people_proposal(session, actor=actor, proposal_id=proposal_id)
    require(actor.is_system or actor.is_secretary_of(proposal.community_id),
            "only the community's secretary")
    proposal = lock(session, VolunteerProposal, proposal.id)
    if proposal.status != ProposalStatus.PROPOSED:
        raise ConflictError(f"this proposal is {proposal.status}", status=proposal.status)
    return proposal


@write
def _approve(session: Session, *, actor: Actor, proposal_id: int, now: datetime):
    proposal = _decide(session, actor, proposal_id)
    reason = stale_reason(session, proposal)
    if reason:
        return proposal, reason
    claim = claim_post.__wrapped__(session, actor=actor, post_id=proposal.post_id,
                                   origin="proposal", user_id=proposal.user_id, now=now)
    audit.transition(session, proposal, ProposalStatus.APPROVED, actor=actor, now=now,
                     data={"claim_id": claim.id})
    proposal.claim_id, proposal.decided_by, proposal.decided_at = claim.id, actor.user_id, now
    return proposal, None


@write
def _mark_stale(session: Session, *, actor: Actor, proposal_id: int, reason: str,
                now: datetime) -> None:
    proposal = lock(session, VolunteerProposal, proposal_id)
    audit.transition(session, proposal, ProposalStatus.STALE, actor=actor, now=now, reason=reason)


def approve_people_proposal(session: Session, *, actor: Actor, proposal_id: int,
                            now: datetime | None = None) -> VolunteerProposal:
    """Approve: the volunteer is offered the place (they accept or decline); 409 if stale."""
    now = now or utcnow()
    proposal, reason = _approve(session, actor=actor, proposal_id=proposal_id, now=now)
    if reason:
        _mark_stale(session, actor=actor, proposal_id=proposal_id, reason=reason, now=now)
        raise StaleProposalError(f"this proposal is stale: {reason}", reason=reason)
    return proposal


@write
def reject_people_proposal(session: Session, *, actor: Actor, proposal_id: int,
                           reason: str | None, now: datetime | None = None) -> VolunteerProposal:
    """Reject with a reason; the pair is not proposed again unless a run asks for it."""
    now = now or utcnow()
    reason = need_reason(reason)
    proposal = _decide(session, actor, proposal_id)
    audit.transition(session, proposal, ProposalStatus.REJECTED, actor=actor, now=now,
                     reason=reason)
    proposal.reason, proposal.decided_by, proposal.decided_at = reason, actor.user_id, now
    return proposal


def get_people_run(session: Session, *, actor: Actor, run_id: int) -> MatchRun:
    run = session.scalar(visible_runs(actor).where(MatchRun.id == run_id,
                                                    MatchRun.subject == "volunteers"))
    if run is None:
        raise NotFoundError("MatchRun", run_id)
    return run


def approve_people_run(session: Session, *, actor: Actor, run_id: int,
                       now: datetime | None = None) -> list[dict]:
    """Approve every open proposal of a run, each on its own; stale ones are marked and listed."""
    run = get_people_run(session, actor=actor, run_id=run_id)
    ids = list(session.scalars(select(VolunteerProposal.id).where(
        VolunteerProposal.run_id == run.id,
        VolunteerProposal.status == str(ProposalStatus.PROPOSED)).order_by(VolunteerProposal.id)))
    outcomes = []
    for proposal_id in ids:
        try:
            done = approve_people_proposal(session, actor=actor, proposal_id=proposal_id, now=now)
            outcomes.append({"id": proposal_id, "status": done.status, "claim_id": done.claim_id,
                             "code": "approved", "message": "offered to the volunteer"})
        except ConflictError as exc:
            outcomes.append({"id": proposal_id, "status": "stale" if isinstance(
                exc, StaleProposalError) else "proposed", "claim_id": None, "code": exc.code,
                "message": exc.message})
    return outcomes
