"""Volunteers: profiles and reports (双报到), the member map, service posts and claims, teams."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from web.api.common import (
    OptionalReasonIn,
    PageArgs,
    current_actor,
    db,
    page_of,
    page_out,
    split_args,
)
from web.api.resources import Availability
from web.services import volunteers as service

PREFIX = ""
blp = Blueprint("volunteers", __name__, description="Volunteers, service posts and teams")

Tags = fields.List(fields.String(validate=validate.Length(min=1, max=30)),
                   validate=validate.Length(max=30))


class ProfileIn(Schema):
    community_id = fields.Integer(strict=True, metadata={"description": "home community, if you live in "
                                                           "several"})
    unit_id = fields.Integer(strict=True, allow_none=True, metadata={
        "description": "your employer: reports you to your home community (报到)"})
    profession = fields.String(allow_none=True, validate=validate.OneOf(service.PROFESSIONS))
    skills = Tags
    preferred_categories = Tags
    availability = fields.Nested(Availability)
    is_party_member = fields.Boolean()
    contact_consent = fields.Boolean()
    lat = fields.Float(allow_none=True, validate=validate.Range(-90, 90))
    lng = fields.Float(allow_none=True, validate=validate.Range(-180, 180))
    is_active = fields.Boolean()


class ProfileOut(Schema):
    id = fields.Integer(strict=True)
    user_id = fields.Integer(strict=True)
    name = fields.Function(lambda p: p.user.display_name)
    community_id = fields.Integer(strict=True)
    grid_id = fields.Integer(strict=True, allow_none=True)
    unit_id = fields.Integer(strict=True, allow_none=True)
    report_status = fields.String(allow_none=True)
    report_reason = fields.String(allow_none=True)
    profession = fields.String(allow_none=True)
    skills = fields.List(fields.String())
    preferred_categories = fields.List(fields.String())
    availability = fields.Dict()
    is_party_member = fields.Boolean()
    contact_consent = fields.Boolean()
    phone = fields.Function(lambda p: p.user.phone if p.contact_consent else None)
    is_active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ProfileArgs(PageArgs):
    community_id = fields.Integer()
    grid_id = fields.Integer()
    unit_id = fields.Integer()
    report_status = fields.String()
    profession = fields.String()
    is_party_member = fields.Boolean()
    skill = fields.String()
    q = fields.String(validate=validate.Length(max=100))


class DecideIn(Schema):
    confirm = fields.Boolean(required=True)
    reason = fields.String(validate=validate.Length(max=500))


class PostIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(service.POST_KINDS))
    category_id = fields.Integer(strict=True, required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000))
    headcount = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=10_000))
    schedule = fields.Nested(Availability)
    required_skills = Tags


class PostCreateIn(PostIn):
    community_id = fields.Integer(strict=True, required=True)


class PostPatch(PostIn):
    status = fields.String(validate=validate.OneOf(["open", "closed"]))


class PostOut(PostIn):
    id = fields.Integer(strict=True)
    community_id = fields.Integer(strict=True)
    taken = fields.Integer(strict=True)
    places_left = fields.Function(lambda p: p.headcount - p.taken)
    schedule = fields.Dict()
    status = fields.String()
    created_at = fields.DateTime()


class PostArgs(PageArgs):
    community_id = fields.Integer()
    kind = fields.String()
    status = fields.String()
    category_id = fields.Integer()
    unfilled = fields.Boolean(metadata={"description": "only posts with places left"})


class ClaimOut(Schema):
    id = fields.Integer(strict=True)
    post_id = fields.Integer(strict=True)
    user_id = fields.Integer(strict=True)
    status = fields.String()
    origin = fields.String()
    reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    decided_by = fields.Integer(strict=True, allow_none=True)
    decided_at = fields.DateTime(allow_none=True)


class ClaimArgs(PageArgs):
    post_id = fields.Integer()
    user_id = fields.Integer()
    status = fields.String()
    community_id = fields.Integer()


class AnswerIn(Schema):
    accept = fields.Boolean(required=True)
    reason = fields.String(validate=validate.Length(max=500))


class TeamIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    leader_id = fields.Integer(strict=True, required=True)
    member_ids = fields.List(fields.Integer(strict=True), load_default=list,
                             validate=validate.Length(max=500))
    community_id = fields.Integer(strict=True)
    unit_id = fields.Integer(strict=True)
    speciality = fields.String(validate=validate.Length(max=100))


class MembersIn(Schema):
    add = fields.List(fields.Integer(strict=True), load_default=list, validate=validate.Length(max=500))
    remove = fields.List(fields.Integer(strict=True), load_default=list, validate=validate.Length(max=500))


class TeamOut(Schema):
    id = fields.Integer(strict=True)
    name = fields.String()
    community_id = fields.Integer(strict=True, allow_none=True)
    unit_id = fields.Integer(strict=True, allow_none=True)
    leader_id = fields.Integer(strict=True)
    speciality = fields.String(allow_none=True)
    is_active = fields.Boolean()
    member_ids = fields.Function(lambda t: [m.user_id for m in t.members])
    created_at = fields.DateTime()


class TeamArgs(PageArgs):
    community_id = fields.Integer()
    unit_id = fields.Integer()


@blp.route("/volunteers/me")
class MyProfile(MethodView):
    @blp.response(200, ProfileOut)
    def get(self):
        """Your volunteer profile."""
        return service.get_my_profile(db(), actor=current_actor())

    @blp.arguments(ProfileIn)
    @blp.response(200, ProfileOut)
    def put(self, data):
        """Become a volunteer or update your profile; naming your unit reports you (报到)."""
        return service.save_profile(db(), actor=current_actor(), data=data)


@blp.route("/volunteers")
class Profiles(MethodView):
    @blp.arguments(ProfileArgs, location="query")
    @blp.response(200, page_of(ProfileOut, "VolunteerPage"))
    def get(self, args):
        """Volunteers: your community's (secretary, admin), your unit's reported people."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_profiles(db(), actor=current_actor(), filters=filters,
                                              page=page, per_page=per_page))


@blp.route("/volunteers/<int:profile_id>")
class ProfileView(MethodView):
    @blp.response(200, ProfileOut)
    def get(self, profile_id):
        """One volunteer's profile (phone only with their consent)."""
        return service.get_profile(db(), actor=current_actor(), profile_id=profile_id)


@blp.route("/volunteers/<int:profile_id>/report")
class ProfileReport(MethodView):
    @blp.arguments(DecideIn)
    @blp.response(200, ProfileOut)
    def post(self, data, profile_id):
        """Confirm a unit employee's report, or reject it with a reason (the secretary)."""
        return service.decide_report(db(), actor=current_actor(), profile_id=profile_id, **data)


@blp.route("/communities/<int:community_id>/volunteer-map")
class MemberMap(MethodView):
    @blp.response(200, Schema.from_dict({
        "community_id": fields.Integer(strict=True), "volunteers": fields.Integer(strict=True),
        "party_members": fields.Integer(strict=True), "reported": fields.Dict(),
        "by_grid": fields.List(fields.Dict()), "by_skill": fields.Dict(),
        "by_profession": fields.Dict()}, name="VolunteerMapOut"))
    def get(self, community_id):
        """Counts of volunteers by grid, skill, profession and party membership (no names)."""
        return service.member_map(db(), actor=current_actor(), community_id=community_id)


@blp.route("/posts")
class Posts(MethodView):
    @blp.arguments(PostArgs, location="query")
    @blp.response(200, page_of(PostOut, "ServicePostPage"))
    def get(self, args):
        """Service posts (服务岗位); `unfilled=true` lists those with places left."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_posts(db(), actor=current_actor(), filters=filters,
                                           page=page, per_page=per_page))

    @blp.arguments(PostCreateIn)
    @blp.response(201, PostOut)
    def post(self, data):
        """Publish a standing service post (the secretary)."""
        community_id = data.pop("community_id")
        return service.create_post(db(), actor=current_actor(), community_id=community_id,
                                   data=data)


@blp.route("/posts/<int:post_id>")
class PostView(MethodView):
    @blp.response(200, PostOut)
    def get(self, post_id):
        """One service post."""
        return service.get_post(db(), actor=current_actor(), post_id=post_id)

    @blp.arguments(PostPatch(partial=True))
    @blp.response(200, PostOut)
    def patch(self, data, post_id):
        """Change a post, or open/close it (the secretary)."""
        return service.update_post(db(), actor=current_actor(), post_id=post_id, changes=data)


@blp.route("/posts/<int:post_id>/claims")
class PostClaims(MethodView):
    @blp.response(201, ClaimOut)
    def post(self, post_id):
        """Claim a place of a post in your home community (409 post_full when none is left)."""
        return service.claim_post(db(), actor=current_actor(), post_id=post_id)


@blp.route("/post-claims")
class Claims(MethodView):
    @blp.arguments(ClaimArgs, location="query")
    @blp.response(200, page_of(ClaimOut, "PostClaimPage"))
    def get(self, args):
        """Post claims: yours, or your community's."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_claims(db(), actor=current_actor(), filters=filters,
                                            page=page, per_page=per_page))


@blp.route("/post-claims/<int:claim_id>/decide")
class ClaimDecide(MethodView):
    @blp.arguments(DecideIn)
    @blp.response(200, ClaimOut)
    def post(self, data, claim_id):
        """Confirm a claim, or reject it with a reason (the secretary)."""
        return service.decide_claim(db(), actor=current_actor(), claim_id=claim_id, **data)


@blp.route("/post-claims/<int:claim_id>/answer")
class ClaimAnswer(MethodView):
    @blp.arguments(AnswerIn)
    @blp.response(200, ClaimOut)
    def post(self, data, claim_id):
        """Accept or decline a place offered to you from a match proposal."""
        return service.answer_offer(db(), actor=current_actor(), claim_id=claim_id, **data)


@blp.route("/post-claims/<int:claim_id>/withdraw")
class ClaimWithdraw(MethodView):
    @blp.arguments(OptionalReasonIn)
    @blp.response(200, ClaimOut)
    def post(self, data, claim_id):
        """Withdraw your claim; or release a volunteer, with a reason (the secretary)."""
        return service.withdraw_claim(db(), actor=current_actor(), claim_id=claim_id, **data)


@blp.route("/teams")
class Teams(MethodView):
    @blp.arguments(TeamArgs, location="query")
    @blp.response(200, page_of(TeamOut, "VolunteerTeamPage"))
    def get(self, args):
        """Volunteer teams (志愿服务队)."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_teams(db(), actor=current_actor(), filters=filters,
                                           page=page, per_page=per_page))

    @blp.arguments(TeamIn)
    @blp.response(201, TeamOut)
    def post(self, data):
        """Form a team of a community (its secretary) or a unit (its admin), with a leader."""
        return service.create_team(db(), actor=current_actor(), **data)


@blp.route("/teams/<int:team_id>")
class TeamView(MethodView):
    @blp.response(200, TeamOut)
    def get(self, team_id):
        """One team with its members."""
        return service.get_team(db(), actor=current_actor(), team_id=team_id)


@blp.route("/teams/<int:team_id>/members")
class TeamMembers(MethodView):
    @blp.arguments(MembersIn)
    @blp.response(200, TeamOut)
    def post(self, data, team_id):
        """Add or remove members (the leader or the team's owner)."""
        return service.change_members(db(), actor=current_actor(), team_id=team_id, **data)

