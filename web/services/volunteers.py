"""Volunteers: profiles and reports to the home community (双报到), service posts and claims,
volunteer teams, and the secretary's member map.

Activity sessions (sign-ups, check-in, hours) live in `web.services.activities`.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.domain.states import HOLDING_CLAIM, PostClaimStatus, PostStatus, ReportInStatus
from web.errors import ConflictError, NotFoundError
from web.models import (
    Category,
    Community,
    Grid,
    PostClaim,
    RoleGrant,
    ServicePost,
    TeamMember,
    Unit,
    User,
    VolunteerProfile,
    VolunteerTeam,
)
from web.models.people import Role
from web.services import audit
from web.services.base import (
    Page,
    get_or_404,
    invalid,
    like_pattern,
    lock,
    need_reason,
    paginate,
    require,
    utcnow,
    write,
)
from web.services.scope import overseen, scoped

POST_KINDS = ("policy_explanation", "civilised_promotion", "sanitation", "elderly_visiting",
              "patrol", "building_head", "mediation", "child_care", "health_service", "other")
PROFESSIONS = ("doctor", "nurse", "lawyer", "teacher", "electrician", "plumber", "social_worker",
               "police", "accountant", "engineer", "other")
POST_FIELDS = ("kind", "category_id", "title", "description", "headcount", "schedule",
               "required_skills")
PROFILE_FIELDS = ("profession", "skills", "preferred_categories", "availability",
                  "is_party_member", "contact_consent", "lat", "lng", "is_active")


class PostFullError(ConflictError):
    """Every place of the post is taken."""

    code = "post_full"


# ---- profiles and reports (报到) ---------------------------------------------------------------

def _home(session: Session, actor: Actor, community_id: int | None) -> RoleGrant:
    """The resident grant naming the volunteer's home community (and grid)."""
    grants = list(session.scalars(select(RoleGrant).where(
        RoleGrant.user_id == actor.user_id, RoleGrant.role == str(Role.RESIDENT))))
    if community_id is not None:
        grants = [g for g in grants if g.community_id == community_id]
    if not grants:
        raise invalid("community_id", "you are not a resident of that community")
    if len(grants) > 1:
        raise invalid("community_id", "name which community you live in")
    return grants[0]


def get_my_profile(session: Session, *, actor: Actor) -> VolunteerProfile:
    profile = session.scalar(select(VolunteerProfile).where(
        VolunteerProfile.user_id == actor.user_id))
    if profile is None:
        raise NotFoundError("VolunteerProfile", actor.user_id)
    return profile


@write
def save_profile(session: Session, *, actor: Actor, data: dict,
                 now: datetime | None = None) -> VolunteerProfile:
    """A resident becomes a volunteer, or updates what they can do; naming an employer unit
    reports to the home community (报到), which the secretary confirms."""
    now = now or utcnow()
    require(actor.user_id is not None and bool(actor.resident_communities),
            "only residents become volunteers")
    home = _home(session, actor, data.get("community_id"))
    profile = session.scalar(select(VolunteerProfile).where(
        VolunteerProfile.user_id == actor.user_id))
    created = profile is None
    if created:
        profile = VolunteerProfile(user_id=actor.user_id, created_at=now, updated_at=now, skills=[],
                                   preferred_categories=[], availability={})
        session.add(profile)
    profile.community_id, profile.grid_id = home.community_id, home.grid_id
    with session.no_autoflush:
        _fill(session, profile, data)
    profile.updated_at = now
    session.flush()
    if "unit_id" in data:
        _report_to(session, profile, data["unit_id"], actor=actor, now=now)
    audit.record(session, entity_type="volunteer_profiles", entity_id=profile.id,
                 action="created" if created else "updated", actor=actor, now=now)
    return profile


def _fill(session: Session, profile: VolunteerProfile, data: dict) -> None:
    for key in PROFILE_FIELDS:
        if key in data:
            setattr(profile, key, data[key])
    _check_profile(session, profile)


def _check_profile(session: Session, profile: VolunteerProfile) -> None:
    if profile.profession is not None and profile.profession not in PROFESSIONS:
        raise invalid("profession", f"one of {', '.join(PROFESSIONS)}")
    known = set(session.scalars(select(Category.code)))
    unknown = set(profile.preferred_categories or []) - known
    if unknown:
        raise invalid("preferred_categories", f"unknown categories: {sorted(unknown)}")
    if (profile.lat is None) != (profile.lng is None):
        raise invalid("lat", "give both lat and lng, or neither")


def _report_to(session: Session, profile: VolunteerProfile, unit_id: int | None, *,
               actor: Actor, now: datetime) -> None:
    """Name (or clear) the employer; a new employer means a new report to confirm."""
    if unit_id == profile.unit_id and profile.report_status != ReportInStatus.REJECTED:
        return
    if unit_id is None:
        profile.unit_id, profile.report_status = None, None
        audit.record(session, entity_type="volunteer_profiles", entity_id=profile.id,
                     action="report_withdrawn", actor=actor, now=now)
        return
    get_or_404(session, Unit, unit_id, "Unit")
    previous, profile.unit_id = profile.report_status, unit_id
    profile.report_status, profile.report_reason = str(ReportInStatus.PENDING), None
    audit.record(session, entity_type="volunteer_profiles", entity_id=profile.id,
                 action="reported", actor=actor, now=now, from_status=previous,
                 to_status=profile.report_status, data={"unit_id": unit_id})


@write
def decide_report(session: Session, *, actor: Actor, profile_id: int, confirm: bool,
                  reason: str | None = None, now: datetime | None = None) -> VolunteerProfile:
    """The secretary confirms (or, with a reason, rejects) a unit employee's report."""
    now = now or utcnow()
    profile = get_profile(session, actor=actor, profile_id=profile_id)
    require(actor.is_secretary_of(profile.community_id), "only the community's secretary")
    profile = lock(session, VolunteerProfile, profile.id)
    if profile.report_status is None:
        raise ConflictError("this volunteer has not reported from a unit")
    target = ReportInStatus.CONFIRMED if confirm else ReportInStatus.REJECTED
    reason = None if confirm else need_reason(reason)
    audit.transition(session, profile, target, actor=actor, now=now, reason=reason)
    profile.report_reason = reason
    return profile


def _visible_profiles(actor: Actor) -> Select:
    conds = overseen(actor, VolunteerProfile.community_id)
    if actor.admin_units:
        conds.append(VolunteerProfile.unit_id.in_(actor.admin_units))
    if actor.user_id is not None:
        conds.append(VolunteerProfile.user_id == actor.user_id)
    return scoped(VolunteerProfile, conds, actor)


def list_profiles(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                  per_page: int = 20) -> Page:
    """Volunteers the actor may see: a community's (its secretary or subdistrict admin), a
    unit's reported people (its admin), or oneself."""
    stmt = _visible_profiles(actor)
    for key in ("community_id", "grid_id", "unit_id", "report_status", "profession",
                "is_party_member"):
        if filters.get(key) is not None:
            stmt = stmt.where(getattr(VolunteerProfile, key) == filters[key])
    if filters.get("skill"):
        from web.models.types import tag_pattern

        stmt = stmt.where(VolunteerProfile.skills.like(tag_pattern(filters["skill"]),
                                                        escape="\\"))
    if filters.get("q"):
        stmt = stmt.join(User, User.id == VolunteerProfile.user_id).where(
            User.display_name.ilike(like_pattern(filters["q"]), escape="\\"))
    return paginate(session, stmt.order_by(VolunteerProfile.id), page, per_page)


def get_profile(session: Session, *, actor: Actor, profile_id: int) -> VolunteerProfile:
    profile = session.scalar(_visible_profiles(actor).where(VolunteerProfile.id == profile_id))
    if profile is None:
        raise NotFoundError("VolunteerProfile", profile_id)
    return profile


def member_map(session: Session, *, actor: Actor, community_id: int) -> dict:
    """Counts of a community's volunteers by grid, skill, profession and party membership —
    no names, for the secretary and the subdistrict admin."""
    community = get_or_404(session, Community, community_id)
    require(actor.is_system or actor.is_secretary_of(community_id)
            or actor.is_admin_of_subdistrict(community.subdistrict_id),
            "only the community's secretary or subdistrict admin")
    profiles = list(session.scalars(select(VolunteerProfile).where(
        VolunteerProfile.community_id == community_id, VolunteerProfile.is_active.is_(True))))
    grids = dict(session.execute(select(Grid.id, Grid.name).where(
        Grid.community_id == community_id)).all())
    skills = Counter(skill for p in profiles for skill in p.skills or [])
    return {
        "community_id": community_id, "volunteers": len(profiles),
        "party_members": sum(p.is_party_member for p in profiles),
        "reported": Counter(p.report_status for p in profiles if p.report_status),
        "by_grid": [{"grid_id": g, "name": grids.get(g), "volunteers": n,
                     "party_members": sum(p.is_party_member for p in profiles if p.grid_id == g)}
                    for g, n in sorted(Counter(p.grid_id for p in profiles).items(),
                                       key=lambda kv: (kv[0] is None, kv[0] or 0))],
        "by_skill": dict(skills.most_common()),
        "by_profession": dict(Counter(p.profession or "unknown" for p in profiles)),
    }


# ---- service posts --------------------------------------------------------------------------

def _check_post(session: Session, post: ServicePost) -> None:
    if post.kind not in POST_KINDS:
        raise invalid("kind", f"one of {', '.join(POST_KINDS)}")
    if not post.headcount or post.headcount < 1 or post.headcount > 10_000:
        raise invalid("headcount", "from 1 to 10,000")
    if post.headcount < (post.taken or 0):
        raise invalid("headcount", f"{post.taken} places are already taken")
    if session.get(Category, post.category_id) is None:
        raise invalid("category_id", "no such category")


@write
def create_post(session: Session, *, actor: Actor, community_id: int, data: dict,
                now: datetime | None = None) -> ServicePost:
    """The secretary publishes a standing service post (服务岗位)."""
    now = now or utcnow()
    get_or_404(session, Community, community_id)
    require(actor.is_system or actor.is_secretary_of(community_id),
            "only the community's secretary")
    fields = {"description": "", "schedule": {}, "required_skills": [],
              **{k: v for k, v in data.items() if k in POST_FIELDS}}
    post = ServicePost(community_id=community_id, taken=0, status=str(PostStatus.OPEN),
                       created_by=actor.user_id, created_at=now, updated_at=now, **fields)
    _check_post(session, post)
    session.add(post)
    session.flush()
    audit.record(session, entity_type="service_posts", entity_id=post.id, action="published",
                 actor=actor, now=now, to_status=post.status)
    return post


@write
def update_post(session: Session, *, actor: Actor, post_id: int, changes: dict,
                now: datetime | None = None) -> ServicePost:
    """Change a post's details, or open/close it (`status`)."""
    now = now or utcnow()
    post = get_or_404(session, ServicePost, post_id, "ServicePost")
    require(actor.is_system or actor.is_secretary_of(post.community_id),
            "only the community's secretary")
    post = lock(session, ServicePost, post.id)
    status = changes.pop("status", None)
    for key, value in changes.items():
        if key in POST_FIELDS:
            setattr(post, key, value)
    _check_post(session, post)
    post.updated_at = now
    if status and status != post.status:
        audit.transition(session, post, PostStatus(status), actor=actor, now=now)
    return post


def list_posts(session: Session, *, actor: Actor, filters: dict, page: int = 1,
               per_page: int = 20) -> Page:
    """Posts: any signed-in user may browse; `unfilled` lists posts with places left."""
    stmt = select(ServicePost)
    for key in ("community_id", "kind", "status", "category_id"):
        if filters.get(key):
            stmt = stmt.where(getattr(ServicePost, key) == filters[key])
    if filters.get("unfilled"):
        stmt = stmt.where(ServicePost.taken < ServicePost.headcount)
    return paginate(session, stmt.order_by(ServicePost.id), page, per_page)


def get_post(session: Session, *, actor: Actor, post_id: int) -> ServicePost:
    return get_or_404(session, ServicePost, post_id, "ServicePost")


def _take_place(session: Session, post: ServicePost) -> None:
    """Take one place of the post (locked): refused when the headcount is reached."""
    if post.status != PostStatus.OPEN:
        raise ConflictError("this post is closed")
    if post.taken >= post.headcount:
        raise PostFullError("every place of this post is taken", headcount=post.headcount)
    post.taken += 1


def _free_place(post: ServicePost) -> None:
    post.taken -= 1


@write
def claim_post(session: Session, *, actor: Actor, post_id: int, origin: str = "claim",
               user_id: int | None = None, now: datetime | None = None) -> PostClaim:
    """A volunteer claims a place of a post of their home community; the secretary confirms."""
    now = now or utcnow()
    post = lock(session, ServicePost, get_post(session, actor=actor, post_id=post_id).id)
    user_id = user_id or actor.user_id
    if origin != "proposal":
        require(actor.is_system or bool(actor.resident_communities), "only residents volunteer")
    profile = session.scalar(select(VolunteerProfile).where(VolunteerProfile.user_id == user_id))
    if profile is None or not profile.is_active:
        raise ConflictError("become a volunteer first (your volunteer profile)")
    require(profile.community_id == post.community_id, "posts are claimed in your home community")
    _take_place(session, post)
    status = PostClaimStatus.OFFERED if origin == "proposal" else PostClaimStatus.PENDING
    claim = PostClaim(post_id=post.id, active_post_id=post.id, user_id=user_id,
                      status=str(status), origin=origin, created_at=now)
    session.add(claim)
    session.flush()
    audit.record(session, entity_type="post_claims", entity_id=claim.id, action=str(status),
                 actor=actor, now=now, to_status=claim.status, data={"post_id": post.id})
    return claim


def _claim_for(session: Session, actor: Actor, claim_id: int) -> tuple[PostClaim, ServicePost]:
    claim = get_claim(session, actor=actor, claim_id=claim_id)
    post = lock(session, ServicePost, claim.post_id)
    return lock(session, PostClaim, claim.id), post


def _end(session: Session, claim: PostClaim, post: ServicePost, target: PostClaimStatus, *,
         actor: Actor, now: datetime, reason: str | None = None) -> PostClaim:
    was_holding = PostClaimStatus(claim.status) in HOLDING_CLAIM
    audit.transition(session, claim, target, actor=actor, now=now, reason=reason)
    claim.decided_by, claim.decided_at, claim.reason = actor.user_id, now, reason
    if was_holding and target not in HOLDING_CLAIM:
        claim.active_post_id = None
        _free_place(post)
    return claim


@write
def decide_claim(session: Session, *, actor: Actor, claim_id: int, confirm: bool,
                 reason: str | None = None, now: datetime | None = None) -> PostClaim:
    """The secretary confirms a claim, or rejects it with a reason (the place is freed)."""
    now = now or utcnow()
    claim, post = _claim_for(session, actor, claim_id)
    require(actor.is_secretary_of(post.community_id), "only the community's secretary")
    if confirm:
        if claim.status != PostClaimStatus.PENDING:
            raise ConflictError("only a pending claim is confirmed by the secretary")
        return _end(session, claim, post, PostClaimStatus.CONFIRMED, actor=actor, now=now)
    return _end(session, claim, post, PostClaimStatus.REJECTED, actor=actor, now=now,
                reason=need_reason(reason))


@write
def answer_offer(session: Session, *, actor: Actor, claim_id: int, accept: bool,
                 reason: str | None = None, now: datetime | None = None) -> PostClaim:
    """The volunteer accepts or declines a place offered from an approved proposal."""
    now = now or utcnow()
    claim, post = _claim_for(session, actor, claim_id)
    require(claim.user_id == actor.user_id, "only the volunteer offered the place")
    target = PostClaimStatus.CONFIRMED if accept else PostClaimStatus.DECLINED
    if claim.status != PostClaimStatus.OFFERED:
        raise ConflictError("this place was not offered to you, or is decided already")
    return _end(session, claim, post, target, actor=actor, now=now, reason=reason)


@write
def withdraw_claim(session: Session, *, actor: Actor, claim_id: int, reason: str | None = None,
                   now: datetime | None = None) -> PostClaim:
    """The volunteer withdraws; or the secretary releases a confirmed volunteer, with a reason."""
    now = now or utcnow()
    claim, post = _claim_for(session, actor, claim_id)
    if claim.user_id == actor.user_id:
        return _end(session, claim, post, PostClaimStatus.WITHDRAWN, actor=actor, now=now,
                    reason=reason)
    require(actor.is_secretary_of(post.community_id), "only the volunteer or the secretary")
    return _end(session, claim, post, PostClaimStatus.RELEASED, actor=actor, now=now,
                reason=need_reason(reason))


def _visible_claims(actor: Actor) -> Select:
    conds = overseen(actor, ServicePost.community_id)
    if actor.user_id is not None:
        conds.append(PostClaim.user_id == actor.user_id)
    stmt = scoped(PostClaim, conds, actor)
    return stmt.join(ServicePost, ServicePost.id == PostClaim.post_id)


def get_claim(session: Session, *, actor: Actor, claim_id: int) -> PostClaim:
    claim = session.scalar(_visible_claims(actor).where(PostClaim.id == claim_id))
    if claim is None:
        raise NotFoundError("PostClaim", claim_id)
    return claim


def list_claims(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                per_page: int = 20) -> Page:
    stmt = _visible_claims(actor)
    for key, column in (("post_id", PostClaim.post_id), ("user_id", PostClaim.user_id),
                        ("status", PostClaim.status),
                        ("community_id", ServicePost.community_id)):
        if filters.get(key):
            stmt = stmt.where(column == filters[key])
    return paginate(session, stmt.order_by(PostClaim.id.desc()), page, per_page)


def post_load(session: Session, user_ids: set[int]) -> dict[int, int]:
    """How many posts each person holds now (to spread the work)."""
    return dict(session.execute(select(PostClaim.user_id, func.count()).where(
        PostClaim.user_id.in_(user_ids),
        PostClaim.status.in_([str(s) for s in HOLDING_CLAIM])).group_by(PostClaim.user_id)).all())


# ---- teams ----------------------------------------------------------------------------------

def _may_run_team(actor: Actor, team: VolunteerTeam) -> bool:
    if team.unit_id is not None and actor.is_unit_admin_of(team.unit_id):
        return True
    if team.community_id is not None and actor.is_secretary_of(team.community_id):
        return True
    return actor.is_system or team.leader_id == actor.user_id


@write
def create_team(session: Session, *, actor: Actor, name: str, leader_id: int,
                member_ids: list[int], community_id: int | None = None,
                unit_id: int | None = None, speciality: str | None = None,
                now: datetime | None = None) -> VolunteerTeam:
    """A community's secretary or a unit's admin forms a volunteer team (志愿服务队)."""
    now = now or utcnow()
    if (community_id is None) == (unit_id is None):
        raise invalid("community_id", "a team belongs to one community or one unit")
    team = VolunteerTeam(name=name.strip(), community_id=community_id, unit_id=unit_id,
                         leader_id=leader_id, speciality=speciality, is_active=True,
                         created_by=actor.user_id, created_at=now)
    if community_id is not None:
        get_or_404(session, Community, community_id)
    else:
        get_or_404(session, Unit, unit_id, "Unit")
    require(actor.is_system or (community_id and actor.is_secretary_of(community_id))
            or (unit_id and actor.is_unit_admin_of(unit_id)),
            "only the community's secretary or the unit's admin")
    if not team.name:
        raise invalid("name", "required")
    people = sorted(set(member_ids) | {leader_id})
    _check_volunteers(session, people)
    session.add(team)
    session.flush()
    session.add_all(TeamMember(team_id=team.id, user_id=u, joined_at=now) for u in people)
    session.flush()
    session.refresh(team)
    audit.record(session, entity_type="volunteer_teams", entity_id=team.id, action="created",
                 actor=actor, now=now, data={"members": people})
    return team


def _check_volunteers(session: Session, user_ids: list[int]) -> None:
    found = set(session.scalars(select(VolunteerProfile.user_id).where(
        VolunteerProfile.user_id.in_(user_ids))))
    missing = sorted(set(user_ids) - found)
    if missing:
        raise invalid("member_ids", f"not volunteers yet: {missing}")


@write
def change_members(session: Session, *, actor: Actor, team_id: int, add: list[int] = (),
                   remove: list[int] = (), now: datetime | None = None) -> VolunteerTeam:
    """The leader (or the team's owner) adds or removes members; the leader stays."""
    now = now or utcnow()
    team = get_or_404(session, VolunteerTeam, team_id, "VolunteerTeam")
    require(_may_run_team(actor, team), "only the team's leader or owner")
    if team.leader_id in remove:
        raise invalid("remove", "the leader stays in the team")
    _check_volunteers(session, list(add))
    have = {m.user_id: m for m in team.members}
    session.add_all(TeamMember(team_id=team.id, user_id=u, joined_at=now)
                    for u in sorted(set(add) - set(have)))
    for user_id in remove:
        if user_id in have:
            session.delete(have[user_id])
    session.flush()
    session.expire(team, ["members"])
    audit.record(session, entity_type="volunteer_teams", entity_id=team.id, action="members",
                 actor=actor, now=now, data={"added": list(add), "removed": list(remove)})
    return team


def list_teams(session: Session, *, actor: Actor, filters: dict, page: int = 1,
               per_page: int = 20) -> Page:
    stmt = select(VolunteerTeam)
    for key in ("community_id", "unit_id"):
        if filters.get(key):
            stmt = stmt.where(getattr(VolunteerTeam, key) == filters[key])
    return paginate(session, stmt.order_by(VolunteerTeam.id), page, per_page)


def get_team(session: Session, *, actor: Actor, team_id: int) -> VolunteerTeam:
    return get_or_404(session, VolunteerTeam, team_id, "VolunteerTeam")
