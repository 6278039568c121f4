"""Activity sessions: schedule, sign up (waiting list when full), check in and out, confirm hours."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from web.api.common import (
    OptionalReasonIn,
    PageArgs,
    current_actor,
    db,
    page_of,
    page_out,
    split_args,
)
from web.services import activities as service

PREFIX = ""
blp = Blueprint("activities", __name__, description="Activity sessions and sign-ups")


class ActivitySessionIn(Schema):
    demand_id = fields.Integer(strict=True)
    post_id = fields.Integer(strict=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    place = fields.String(required=True, validate=validate.Length(min=1, max=300))
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    headcount = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=10_000))
    organiser_id = fields.Integer(strict=True)

    @validates_schema
    def _order(self, data, **_):
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("ends before it starts", "ends_at")


class ActivitySessionOut(Schema):
    id = fields.Integer(strict=True)
    community_id = fields.Integer(strict=True)
    demand_id = fields.Integer(strict=True, allow_none=True)
    post_id = fields.Integer(strict=True, allow_none=True)
    category_id = fields.Integer(strict=True)
    title = fields.String()
    place = fields.String()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    headcount = fields.Integer(strict=True)
    status = fields.String()
    organiser_id = fields.Integer(strict=True, allow_none=True)
    created_at = fields.DateTime()


class ActivitySessionStaffOut(ActivitySessionOut):
    checkin_code = fields.String(metadata={"description": "shown at the venue"})


class ActivitySessionArgs(PageArgs):
    community_id = fields.Integer()
    demand_id = fields.Integer()
    post_id = fields.Integer()
    status = fields.String()
    starts_from = fields.AwareDateTime()
    starts_to = fields.AwareDateTime()
    q = fields.String(validate=validate.Length(max=100),
                      metadata={"description": "words in the title or place"})


class SignupOut(Schema):
    id = fields.Integer(strict=True)
    session_id = fields.Integer(strict=True)
    user_id = fields.Integer(strict=True)
    team_id = fields.Integer(strict=True, allow_none=True)
    status = fields.String()
    signed_up_at = fields.DateTime()
    checked_in_at = fields.DateTime(allow_none=True)
    checked_out_at = fields.DateTime(allow_none=True)
    minutes = fields.Integer(strict=True, allow_none=True)
    service_record_id = fields.String(allow_none=True)


class SignupArgs(PageArgs):
    session_id = fields.Integer()
    user_id = fields.Integer()
    status = fields.String()
    team_id = fields.Integer()
    q = fields.String(validate=validate.Length(max=100),
                      metadata={"description": "the session's title or place, or the person's name"})


class SignUpIn(Schema):
    team_id = fields.Integer(strict=True, metadata={"description": "the leader signs the whole team up"})


class ClockIn(Schema):
    code = fields.String(validate=validate.Length(max=12))
    user_id = fields.Integer(strict=True, metadata={"description": "the organiser checks someone in or out"})


class HoursConfirmIn(Schema):
    minutes = fields.Integer(strict=True, validate=validate.Range(min=1, max=1440))


class CloseIn(OptionalReasonIn):
    cancel = fields.Boolean(load_default=False)


@blp.route("/sessions")
class Sessions(MethodView):
    @blp.arguments(ActivitySessionArgs, location="query")
    @blp.response(200, page_of(ActivitySessionOut, "SessionPage"))
    def get(self, args):
        """Activity sessions, soonest first."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_sessions(db(), actor=current_actor(), filters=filters,
                                              page=page, per_page=per_page))

    @blp.arguments(ActivitySessionIn)
    @blp.response(201, ActivitySessionStaffOut)
    def post(self, data):
        """Schedule a session of a covered demand or a post (secretary or lead unit)."""
        return service.create_session(db(), actor=current_actor(), data=data)


@blp.route("/sessions/<int:session_id>")
class SessionView(MethodView):
    @blp.response(200, ActivitySessionOut)
    def get(self, session_id):
        """One session."""
        return service.get_session(db(), actor=current_actor(), session_id=session_id)


@blp.route("/sessions/<int:session_id>/signups")
class SessionSignups(MethodView):
    @blp.arguments(SignUpIn)
    @blp.response(201, SignupOut(many=True))
    def post(self, data, session_id):
        """Sign up (waiting list when full); a leader may sign the whole team up."""
        return service.sign_up(db(), actor=current_actor(), session_id=session_id, **data)


@blp.route("/sessions/<int:session_id>/check-in")
class CheckIn(MethodView):
    @blp.arguments(ClockIn)
    @blp.response(200, SignupOut)
    def post(self, data, session_id):
        """Check in with the venue's code, or the organiser checks someone in."""
        return service.check_in(db(), actor=current_actor(), session_id=session_id, **data)


@blp.route("/sessions/<int:session_id>/check-out")
class CheckOut(MethodView):
    @blp.arguments(ClockIn)
    @blp.response(200, SignupOut)
    def post(self, data, session_id):
        """Check out the same way; the minutes between become the hours to confirm."""
        return service.check_out(db(), actor=current_actor(), session_id=session_id, **data)


@blp.route("/sessions/<int:session_id>/close")
class SessionClose(MethodView):
    @blp.arguments(CloseIn)
    @blp.response(200, ActivitySessionOut)
    def post(self, data, session_id):
        """Complete the session (absentees marked) or cancel it (the organiser)."""
        return service.close_session(db(), actor=current_actor(), session_id=session_id, **data)


@blp.route("/signups")
class Signups(MethodView):
    @blp.arguments(SignupArgs, location="query")
    @blp.response(200, page_of(SignupOut, "SignupPage"))
    def get(self, args):
        """Sign-ups: yours, your sessions', your community's."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_signups(db(), actor=current_actor(), filters=filters,
                                             page=page, per_page=per_page))


@blp.route("/signups/<int:signup_id>/withdraw")
class SignupWithdraw(MethodView):
    @blp.response(200, SignupOut)
    def post(self, signup_id):
        """Withdraw a sign-up; the first on the waiting list moves up."""
        return service.withdraw_signup(db(), actor=current_actor(), signup_id=signup_id)


@blp.route("/signups/<int:signup_id>/confirm")
class SignupConfirm(MethodView):
    @blp.arguments(HoursConfirmIn)
    @blp.response(200, SignupOut)
    def post(self, data, signup_id):
        """Confirm hours: a service record the love bank credits once (the organiser)."""
        return service.confirm_hours(db(), actor=current_actor(), signup_id=signup_id, **data)


@blp.route("/teams/<int:team_id>/hours")
class TeamHours(MethodView):
    @blp.response(200, Schema.from_dict({"team_id": fields.Integer(strict=True),
                                         "minutes": fields.Integer(strict=True),
                                         "members": fields.List(fields.Dict())},
                                        name="TeamHoursOut"))
    def get(self, team_id):
        """A team's confirmed minutes and sessions, per member."""
        return service.team_hours(db(), actor=current_actor(), team_id=team_id)
