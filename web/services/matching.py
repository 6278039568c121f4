"""Match runs: the optimiser pairs a community's (or a subdistrict's) open demands with published
resources, and writes proposals that the secretary approves (each becomes a dispatch) or rejects.

A run reads the lists, solves with `matcher` outside any transaction, then writes its proposals in
one. Small runs finish within the request; larger ones are queued and run in the background, and
the caller polls the run's progress. The same functions serve the API and `linli match run`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from matcher.problem import ANY, MODES, ProblemError, Weights, build_problem
from matcher.solve import solve
from web.domain.actor import SYSTEM, Actor
from web.domain.states import (
    ACTIVE_ASSIGNMENT,
    COVERAGE_STATES,
    AssignmentStatus,
    MatchRunStatus,
    ProposalStatus,
    ResourceStatus,
    UnitStatus,
    check_transition,
)
from web.errors import ConflictError, NotFoundError, ValidationError
from web.models import (
    Assignment,
    Community,
    DemandItem,
    MatchProposal,
    MatchRun,
    Pairing,
    ResourceItem,
    Subdistrict,
    Unit,
    resource_service_areas,
)
from web.services import audit
from web.services.assignments import dispatch_in_transaction
from web.services.base import (
    get_or_404,
    invalid,
    local_date,
    lock,
    need_reason,
    paginate,
    require,
    utcnow,
    write,
)
from web.services.scope import item_or_unit_named, overseen, scoped

log = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT = 5.0
MAX_TIME_LIMIT = 120.0
# Above this many open demands a run goes to the background instead of the request.
INLINE_DEMANDS = 2_000


class StaleProposalError(ConflictError):
    """The demand or the resource changed since the run: the proposal no longer holds."""

    code = "stale_proposal"


# ---- scope and parameters ---------------------------------------------------------------------

def scope_communities(session: Session, run: MatchRun) -> list[int]:
    if run.community_id is not None:
        return [run.community_id]
    return list(session.scalars(select(Community.id).where(
        Community.subdistrict_id == run.subdistrict_id)))


def check_scope(session: Session, actor: Actor, community_id, subdistrict_id) -> None:
    if (community_id is None) == (subdistrict_id is None):
        raise invalid("community_id", "give either a community or a subdistrict")
    if community_id is not None:
        community = get_or_404(session, Community, community_id, "community")
        require(actor.is_system or actor.is_secretary_of(community.id)
                or actor.is_admin_of_subdistrict(community.subdistrict_id),
                "only the community's secretary or its subdistrict's admin")
    else:
        get_or_404(session, Subdistrict, subdistrict_id, "subdistrict")
        require(actor.is_system or actor.is_admin_of_subdistrict(subdistrict_id),
                "only the subdistrict's admin")


def _pairs(value, field: str) -> list[dict]:
    if not isinstance(value, list) or not all(
            isinstance(p, dict) and isinstance(p.get("demand_id"), int)
            and isinstance(p.get("resource_id"), int) for p in value):
        raise invalid(field, "a list of {demand_id, resource_id}")
    return [{"demand_id": p["demand_id"], "resource_id": p["resource_id"]} for p in value]


def clean_params(params: dict | None) -> dict:
    """The run's parameters with defaults, or a 422 naming the bad one."""
    params = dict(params or {})
    out = {"mode": params.pop("mode", "auto"),
           "time_limit": params.pop("time_limit", DEFAULT_TIME_LIMIT),
           "seed": params.pop("seed", 0), "weights": params.pop("weights", None) or {},
           "pinned": _pairs(params.pop("pinned", []) or [], "pinned"),
           "forbidden": _pairs(params.pop("forbidden", []) or [], "forbidden"),
           "include_rejected": bool(params.pop("include_rejected", False))}
    if params:
        raise invalid(sorted(params)[0], "unknown parameter")
    if out["mode"] not in MODES:
        raise invalid("mode", f"one of {', '.join(MODES)}")
    limit = out["time_limit"]
    if not isinstance(limit, int | float) or isinstance(limit, bool) or \
            not 0.1 <= limit <= MAX_TIME_LIMIT:
        raise invalid("time_limit", f"seconds from 0.1 to {MAX_TIME_LIMIT:g}")
    if not isinstance(out["seed"], int) or isinstance(out["seed"], bool) or out["seed"] < 0:
        raise invalid("seed", "a whole number of at least 0")
    try:
        Weights.from_dict(out["weights"])
    except ProblemError as exc:
        raise invalid("weights", str(exc)) from None
    return out


# ---- reading the lists into a problem ---------------------------------------------------------

def _open_in(communities: list[int]) -> tuple:
    """The demands a run considers: published, still taking units, with quantity open."""
    return (DemandItem.community_id.in_(communities),
            DemandItem.status.in_([str(s) for s in COVERAGE_STATES]),
            DemandItem.quantity_open > 0)


def _open_demands(session: Session, communities: list[int]) -> list[DemandItem]:
    return list(session.scalars(select(DemandItem).where(*_open_in(communities))
                                .order_by(DemandItem.id)))


def _usable_resources(session: Session, communities: list[int], now: datetime):
    serving = select(resource_service_areas.c.resource_id).where(
        resource_service_areas.c.community_id.in_(communities))
    stmt = (select(ResourceItem).join(Unit, Unit.id == ResourceItem.unit_id)
            .options(selectinload(ResourceItem.service_communities),
                     selectinload(ResourceItem.category))
            .where(ResourceItem.status == str(ResourceStatus.PUBLISHED),
                   ResourceItem.quantity_remaining > 0,
                   Unit.status == str(UnitStatus.APPROVED),
                   (ResourceItem.expires_on.is_(None))
                   | (ResourceItem.expires_on >= local_date(now)),
                   ResourceItem.id.in_(serving) | ResourceItem.radius_m.is_not(None))
            .order_by(ResourceItem.id))
    return list(session.scalars(stmt))


def _unit_records(session: Session, unit_ids: set[int]) -> list[dict]:
    ratings = dict(session.execute(
        select(Assignment.unit_id, func.avg(DemandItem.rating))
        .join(DemandItem, DemandItem.id == Assignment.demand_id)
        .where(Assignment.unit_id.in_(unit_ids), DemandItem.rating.is_not(None),
               Assignment.status == str(AssignmentStatus.COMPLETED))
        .group_by(Assignment.unit_id)).all())
    loads = dict(session.execute(
        select(Assignment.unit_id, func.count())
        .where(Assignment.unit_id.in_(unit_ids),
               Assignment.status.in_([str(s) for s in ACTIVE_ASSIGNMENT]))
        .group_by(Assignment.unit_id)).all())
    return [{"id": u, "rating": None if ratings.get(u) is None else float(ratings[u]),
             "load": int(loads.get(u, 0))} for u in sorted(unit_ids)]


def _demand_record(demand: DemandItem, community: Community, now: datetime) -> dict:
    lat, lng = (demand.lat, demand.lng) if demand.lat is not None else (community.lat,
                                                                        community.lng)
    record = {"id": demand.id, "category": str(demand.category_id),
              "skills": list(demand.required_skills or []), "quantity": demand.quantity_open,
              "community": str(demand.community_id), "grid": demand.grid_id, "lat": lat,
              "lng": lng, "urgency": demand.urgency,
              "waited_days": max(0, (now - demand.created_at).days)}
    if demand.window_start is not None:
        record["window"] = {"start": demand.window_start.isoformat(),
                            "end": (demand.window_end or demand.window_start).isoformat()}
    return record


def _resource_record(resource: ResourceItem) -> dict:
    return {"id": resource.id, "unit": resource.unit_id,
            "category": ANY if resource.category.code == "other" else str(resource.category_id),
            "skills": list(resource.skills or []),
            "share": min(resource.capacity_per_occasion, resource.quantity_remaining),
            "quantity": resource.quantity_remaining, "capacity": resource.quantity_remaining,
            "communities": [str(c.id) for c in resource.service_communities],
            "lat": resource.lat, "lng": resource.lng,
            "radius_m": resource.radius_m if resource.lat is not None and resource.lng is not None
            else None,
            "availability": resource.availability or {}, "exclusive": resource.kind == "venue"}


def build_match_problem(session: Session, run: MatchRun, now: datetime) -> tuple[dict, dict]:
    """The run's problem in the matcher's record format (docs/matching.md), and when each
    demand and resource was last edited as read (a later edit makes a proposal stale)."""
    communities = scope_communities(session, run)
    by_id = {c.id: c for c in session.scalars(select(Community).where(
        Community.id.in_(communities)))}
    demands = _open_demands(session, communities)
    resources = _usable_resources(session, communities, now)
    r_ids = {r.id for r in resources}
    d_ids = {d.id for d in demands}
    params = run.params
    locked, forbidden = _held(session, d_ids, resources)
    if not params.get("include_rejected"):
        forbidden += [{"demand": d, "resource": r} for d, r in session.execute(
            select(MatchProposal.demand_id, MatchProposal.resource_id).where(
                MatchProposal.demand_id.in_(d_ids),
                MatchProposal.status == str(ProposalStatus.REJECTED))).all() if r in r_ids]
    _check_pairs_in(params, d_ids, r_ids)
    forbidden += [{"demand": p["demand_id"], "resource": p["resource_id"]}
                  for p in params.get("forbidden", [])]
    today = local_date(now)
    pairings = [{"unit": p.unit_id, "community": str(p.community_id), "grid": p.grid_id}
                for p in session.scalars(select(Pairing).where(
                    Pairing.community_id.in_(communities))) if p.active_on(today)]
    unit_ids = {r.unit_id for r in resources}
    stamps = {"demands": {d.id: d.updated_at for d in demands},
              "resources": {r.id: r.updated_at for r in resources}}
    return stamps, {"mode": params.get("mode", "auto"), "weights": params.get("weights") or {},
            "demands": [_demand_record(d, by_id[d.community_id], now) for d in demands],
            "resources": [_resource_record(r) for r in resources],
            "units": _unit_records(session, unit_ids),
            "pairings": [p for p in pairings if p["unit"] in unit_ids],
            "locked": locked, "forbidden": forbidden,
            "pinned": [{"demand": p["demand_id"], "resource": p["resource_id"]}
                       for p in params.get("pinned", [])]}


def _check_pairs_in(params: dict, d_ids: set[int], r_ids: set[int]) -> None:
    for field in ("pinned", "forbidden"):
        for pair in params.get(field, []):
            if pair["demand_id"] not in d_ids or pair["resource_id"] not in r_ids:
                raise invalid(field, f"demand {pair['demand_id']} or resource "
                                     f"{pair['resource_id']} is not open in this run's scope")


def _check_pairs(session: Session, run: MatchRun, now: datetime) -> None:
    """Pinned and forbidden pairs must name open demands and usable resources of the scope."""
    if not run.params.get("pinned") and not run.params.get("forbidden"):
        return
    communities = scope_communities(session, run)
    _check_pairs_in(run.params, {d.id for d in _open_demands(session, communities)},
                    {r.id for r in _usable_resources(session, communities, now)})


def _held(session: Session, d_ids: set[int], resources: list[ResourceItem]):
    """Existing claims and dispatches: locked pairs, or (no resource named) the unit's resources
    forbidden for that demand."""
    by_unit = defaultdict(list)
    for r in resources:
        by_unit[r.unit_id].append(r.id)
    r_ids = {r.id for r in resources}
    locked, forbidden = [], []
    for a in session.scalars(select(Assignment).where(
            Assignment.demand_id.in_(d_ids),
            Assignment.status.in_([str(s) for s in ACTIVE_ASSIGNMENT]))):
        if a.resource_id in r_ids:
            locked.append({"demand": a.demand_id, "resource": a.resource_id,
                           "quantity": a.quantity, "lead": bool(a.is_lead)})
        else:
            forbidden += [{"demand": a.demand_id, "resource": r} for r in by_unit[a.unit_id]]
    return locked, forbidden


# ---- runs -------------------------------------------------------------------------------------

@write
def create_match_run(session: Session, *, actor: Actor, community_id: int | None = None,
                     subdistrict_id: int | None = None, params: dict | None = None,
                     now: datetime | None = None) -> MatchRun:
    """Queue a run over a community (its secretary) or a subdistrict (its admin)."""
    now = now or utcnow()
    check_scope(session, actor, community_id, subdistrict_id)
    params = clean_params(params)
    run = MatchRun(community_id=community_id, subdistrict_id=subdistrict_id,
                   mode=params["mode"], status=str(MatchRunStatus.QUEUED), params=params,
                   progress=0, created_by=actor.user_id, created_at=now)
    _check_pairs(session, run, now)
    session.add(run)
    session.flush()
    audit.record(session, entity_type="match_runs", entity_id=run.id, action="queued",
                 actor=actor, now=now, to_status=run.status, data=params)
    return run


def runs_inline(session: Session, run: MatchRun) -> bool:
    """Whether the run is small enough to finish within the request."""
    count = session.scalar(select(func.count()).select_from(DemandItem).where(
        *_open_in(scope_communities(session, run))))
    return (count or 0) <= INLINE_DEMANDS


@write
def set_progress(session: Session, run_id: int, progress: int, target=None, *, now,
                  error: str | None = None, summary: dict | None = None) -> None:
    run = session.get(MatchRun, run_id)
    run.progress = progress
    if target is not None:
        audit.transition(session, run, target, actor=SYSTEM, now=now,
                         data={"error": error} if error else None)
        if target == MatchRunStatus.RUNNING:
            run.started_at = now
        else:
            run.finished_at = now
    if error is not None:
        run.error = error[:500]
    if summary is not None:
        run.summary = summary


def execute_match_run(session: Session, *, run_id: int, now: datetime | None = None) -> MatchRun:
    """Run a queued match run to the end: read, solve (outside a transaction), write proposals.

    A failure is recorded on the run (status failed, with the reason) rather than raised.
    """
    clock = (lambda: now) if now is not None else utcnow  # tests pin the time; runs take real time
    now = clock()
    set_progress(session, run_id, 5, MatchRunStatus.RUNNING, now=now)
    try:
        run = session.get(MatchRun, run_id)
        stamps, data = build_match_problem(session, run, now)
        params = run.params
        session.rollback()  # end the read transaction before the long solve
        set_progress(session, run_id, 30, now=now)
        result = _solve(data, params)
        set_progress(session, run_id, 80, now=now)
        _write_proposals(session, run_id=run_id, result=result, stamps=stamps, now=clock())
    except (ProblemError, ValidationError) as exc:
        session.rollback()
        set_progress(session, run_id, 100, MatchRunStatus.FAILED, now=clock(), error=str(exc))
    except Exception as exc:  # the run records what went wrong; the caller goes on
        log.exception("match run %s failed", run_id)
        session.rollback()
        set_progress(session, run_id, 100, MatchRunStatus.FAILED, now=clock(),
                      error=f"internal error: {type(exc).__name__}")
    return session.get(MatchRun, run_id)


def _solve(data: dict, params: dict):
    problem = build_problem(data)
    return solve(problem, time_limit=float(params.get("time_limit", DEFAULT_TIME_LIMIT)),
                 seed=int(params.get("seed", 0)))


def preview_match(session: Session, *, actor: Actor, community_id: int | None = None,
                  subdistrict_id: int | None = None, params: dict | None = None,
                  now: datetime | None = None) -> dict:
    """A dry run: the proposals a run would make and its figures; nothing is written."""
    now = now or utcnow()
    check_scope(session, actor, community_id, subdistrict_id)
    params = clean_params(params)
    run = MatchRun(community_id=community_id, subdistrict_id=subdistrict_id, params=params)
    try:
        result = _solve(build_match_problem(session, run, now)[1], params)
    except ProblemError as exc:
        raise ValidationError(str(exc)) from None
    finally:
        session.rollback()
    return {"summary": result.summary(), "proposals": result.assignments()}


@write
def _write_proposals(session: Session, *, run_id: int, result, stamps: dict,
                     now: datetime) -> None:
    run = session.get(MatchRun, run_id)
    records = result.assignments()
    demands = {d.id: d for d in session.scalars(select(DemandItem).where(
        DemandItem.id.in_({a["demand"] for a in records})))}
    resources = {r.id: r for r in session.scalars(select(ResourceItem).where(
        ResourceItem.id.in_({a["resource"] for a in records})))}
    _supersede(session, set(demands), now)
    for a in records:
        demand, resource = demands[a["demand"]], resources[a["resource"]]
        proposal = MatchProposal(
            run_id=run.id, demand_id=demand.id, resource_id=resource.id, unit_id=a["unit"],
            community_id=demand.community_id, quantity=a["quantity"], role=a["role"],
            score=a["score"], terms=a["terms"], status=str(ProposalStatus.PROPOSED),
            demand_updated_at=stamps["demands"][demand.id],
            resource_updated_at=stamps["resources"][resource.id],
            created_at=now)
        session.add(proposal)
    run.summary = result.summary()
    run.progress = 100
    run.finished_at = now
    audit.transition(session, run, MatchRunStatus.DONE, actor=SYSTEM, now=now,
                     data={"proposals": len(records), "objective": result.objective})


def _supersede(session: Session, demand_ids: set[int], now: datetime) -> None:
    """Earlier open proposals for the same demands give way to the new run's."""
    for old in session.scalars(select(MatchProposal).where(
            MatchProposal.demand_id.in_(demand_ids),
            MatchProposal.status == str(ProposalStatus.PROPOSED))):
        audit.transition(session, old, ProposalStatus.SUPERSEDED, actor=SYSTEM, now=now)


def visible_runs(actor: Actor):
    conds = overseen(actor, MatchRun.community_id)
    if actor.admin_subdistricts:
        conds.append(MatchRun.subdistrict_id.in_(actor.admin_subdistricts))
    if actor.secretary_communities:  # a subdistrict-wide run proposes for her community too
        conds.append(MatchRun.subdistrict_id.in_(select(Community.subdistrict_id).where(
            Community.id.in_(actor.secretary_communities))))
    return scoped(MatchRun, conds, actor)


def get_match_run(session: Session, *, actor: Actor, run_id: int) -> MatchRun:
    run = session.scalar(visible_runs(actor).where(MatchRun.id == run_id))
    if run is None:
        raise NotFoundError("match run", run_id)
    return run


def list_match_runs(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                    per_page: int = 20):
    stmt = visible_runs(actor)
    for key in ("community_id", "subdistrict_id", "status"):
        if filters.get(key) is not None:
            stmt = stmt.where(getattr(MatchRun, key) == filters[key])
    return paginate(session, stmt.order_by(MatchRun.id.desc()), page, per_page)


# ---- proposals --------------------------------------------------------------------------------

def _visible_proposals(actor: Actor):
    return scoped(MatchProposal, overseen(actor, MatchProposal.community_id), actor)


def list_proposals(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                   per_page: int = 20):
    """Proposals in the actor's communities, best first within a run; `q` reads words in the
    item's title or the unit's name."""
    stmt = _visible_proposals(actor).options(selectinload(MatchProposal.demand),
                                             selectinload(MatchProposal.resource),
                                             selectinload(MatchProposal.unit))
    for key in ("run_id", "demand_id", "unit_id", "community_id", "status"):
        if filters.get(key) is not None:
            stmt = stmt.where(getattr(MatchProposal, key) == filters[key])
    if filters.get("q"):
        stmt = stmt.where(item_or_unit_named(MatchProposal, filters["q"]))
    stmt = stmt.order_by(MatchProposal.run_id.desc(), MatchProposal.demand_id,
                         MatchProposal.role.desc(), MatchProposal.score.desc(), MatchProposal.id)
    return paginate(session, stmt, page, per_page)


def get_proposal(session: Session, *, actor: Actor, proposal_id: int) -> MatchProposal:
    proposal = session.scalar(_visible_proposals(actor).where(MatchProposal.id == proposal_id))
    if proposal is None:
        raise NotFoundError("proposal", proposal_id)
    return proposal


def stale_reason(proposal: MatchProposal) -> str | None:
    """Why an open proposal no longer holds; None while it does, and once it is decided."""
    if proposal.status != ProposalStatus.PROPOSED:
        return None
    demand, resource = proposal.demand, proposal.resource
    if demand.updated_at != proposal.demand_updated_at:
        return "the demand was edited after the run"
    if resource.updated_at != proposal.resource_updated_at:
        return "the resource was edited after the run"
    if demand.status not in COVERAGE_STATES or demand.quantity_open < proposal.quantity:
        return "the demand no longer needs this much"
    if resource.status != ResourceStatus.PUBLISHED or \
            resource.quantity_remaining < proposal.quantity:
        return "the resource no longer offers this much"
    if proposal.unit.status != UnitStatus.APPROVED:
        return "the unit is not approved now"
    return None


def _lock_proposal(session: Session, actor: Actor, proposal_id: int) -> MatchProposal:
    proposal = get_proposal(session, actor=actor, proposal_id=proposal_id)
    require(actor.is_system or actor.is_secretary_of(proposal.community_id),
            "only the community's secretary")
    lock(session, DemandItem, proposal.demand_id)
    return lock(session, MatchProposal, proposal.id)


@write
def _approve(session: Session, *, actor: Actor, proposal_id: int, now: datetime):
    proposal = _lock_proposal(session, actor, proposal_id)
    check_transition(proposal.status, ProposalStatus.APPROVED)
    reason = stale_reason(proposal)
    if reason:
        raise StaleProposalError(f"the proposal is stale: {reason}")
    dispatch = dispatch_in_transaction(
        session, actor=actor, demand_id=proposal.demand_id, unit_id=proposal.unit_id,
        quantity=proposal.quantity, resource_id=proposal.resource_id,
        note=f"match run {proposal.run_id}", now=now)
    proposal.assignment_id = dispatch.id
    proposal.decided_by, proposal.decided_at = actor.user_id, now
    audit.transition(session, proposal, ProposalStatus.APPROVED, actor=actor, now=now,
                     data={"assignment_id": dispatch.id})
    return proposal


@write
def _mark_stale(session: Session, *, actor: Actor, proposal_id: int, reason: str,
                now: datetime) -> None:
    proposal = lock(session, MatchProposal, proposal_id)
    if proposal.status == ProposalStatus.PROPOSED:
        proposal.reason, proposal.decided_at = reason, now
        audit.transition(session, proposal, ProposalStatus.STALE, actor=actor, now=now,
                         reason=reason)


def approve_proposal(session: Session, *, actor: Actor, proposal_id: int,
                     now: datetime | None = None) -> MatchProposal:
    """The secretary approves a proposal: it becomes a dispatch the unit accepts or declines.

    A proposal whose demand or resource changed since the run is marked stale and refused (409).
    """
    now = now or utcnow()
    try:
        return _approve(session, actor=actor, proposal_id=proposal_id, now=now)
    except StaleProposalError as exc:
        _mark_stale(session, actor=actor, proposal_id=proposal_id, reason=exc.message, now=now)
        raise


def approve_run(session: Session, *, actor: Actor, run_id: int,
                now: datetime | None = None) -> list[dict]:
    """Approve every open proposal of a run, leads first; each succeeds or fails on its own."""
    now = now or utcnow()
    run = get_match_run(session, actor=actor, run_id=run_id)
    ids = list(session.scalars(_visible_proposals(actor).where(
        MatchProposal.run_id == run.id, MatchProposal.status == str(ProposalStatus.PROPOSED))
        .order_by(MatchProposal.demand_id, MatchProposal.role.desc(), MatchProposal.id)
        .with_only_columns(MatchProposal.id)))
    session.rollback()
    outcomes = []
    for proposal_id in ids:
        try:
            proposal = approve_proposal(session, actor=actor, proposal_id=proposal_id, now=now)
            outcomes.append({"id": proposal_id, "status": proposal.status,
                             "assignment_id": proposal.assignment_id})
        except ConflictError as exc:
            outcomes.append({"id": proposal_id, "status": "refused", "code": exc.code,
                             "message": exc.message})
    return outcomes


@write
def reject_proposal(session: Session, *, actor: Actor, proposal_id: int, reason: str | None,
                    now: datetime | None = None) -> MatchProposal:
    """The secretary rejects a proposal with a reason; the pair is not proposed again."""
    now = now or utcnow()
    reason = need_reason(reason)
    proposal = _lock_proposal(session, actor, proposal_id)
    proposal.reason, proposal.decided_by, proposal.decided_at = reason, actor.user_id, now
    audit.transition(session, proposal, ProposalStatus.REJECTED, actor=actor, now=now,
                     reason=reason)
    return proposal

