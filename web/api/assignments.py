"""Assignments: claims and dispatches, and each move on them."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from web.api.common import (
    OptionalReasonIn,
    PageArgs,
    ReasonIn,
    current_actor,
    db,
    page_of,
    page_out,
    split_args,
)
from web.services import assignments as service

PREFIX = "/assignments"
blp = Blueprint("assignments", __name__, description="Claims (自主选单) and dispatches (社区派单)")


class AssignmentOut(Schema):
    id = fields.Integer()
    demand_id = fields.Integer()
    unit_id = fields.Integer()
    unit_name = fields.Function(lambda a: a.unit.name)
    resource_id = fields.Integer(allow_none=True)
    quantity = fields.Integer()
    origin = fields.String()
    status = fields.String()
    is_lead = fields.Boolean()
    response_deadline = fields.DateTime(allow_none=True)
    note = fields.String(allow_none=True)
    created_by = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)


class AssignmentArgs(PageArgs):
    status = fields.String()
    origin = fields.String(validate=validate.OneOf(["claim", "dispatch"]))
    demand_id = fields.Integer()
    unit_id = fields.Integer()
    community_id = fields.Integer()
    q = fields.String(validate=validate.Length(max=100),
                      metadata={"description": "the demand's title, the unit's name or the note"})


class DispatchAcceptIn(Schema):
    resource_id = fields.Integer(allow_none=True)


@blp.route("")
class Assignments(MethodView):
    @blp.arguments(AssignmentArgs, location="query")
    @blp.response(200, page_of(AssignmentOut, "AssignmentPage"))
    def get(self, args):
        """Claims and dispatches of your unit, or on your community's demands."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_assignments(db(), actor=current_actor(), filters=filters,
                                                 page=page, per_page=per_page))


@blp.route("/<int:assignment_id>")
class AssignmentView(MethodView):
    @blp.response(200, AssignmentOut)
    def get(self, assignment_id):
        """One claim or dispatch."""
        return service.get_assignment(db(), actor=current_actor(), assignment_id=assignment_id)


@blp.route("/<int:assignment_id>/approve")
class AssignmentApprove(MethodView):
    @blp.response(200, AssignmentOut)
    def post(self, assignment_id):
        """Approve a pending claim (the secretary)."""
        return service.approve_claim(db(), actor=current_actor(), assignment_id=assignment_id)


@blp.route("/<int:assignment_id>/reject")
class AssignmentReject(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, AssignmentOut)
    def post(self, data, assignment_id):
        """Reject a pending claim with a reason (the secretary)."""
        return service.reject_claim(db(), actor=current_actor(), assignment_id=assignment_id, **data)


@blp.route("/<int:assignment_id>/withdraw")
class AssignmentWithdraw(MethodView):
    @blp.arguments(OptionalReasonIn)
    @blp.response(200, AssignmentOut)
    def post(self, data, assignment_id):
        """Withdraw your pending claim."""
        return service.withdraw_claim(db(), actor=current_actor(), assignment_id=assignment_id, **data)


@blp.route("/<int:assignment_id>/accept")
class AssignmentAccept(MethodView):
    @blp.arguments(DispatchAcceptIn)
    @blp.response(200, AssignmentOut)
    def post(self, data, assignment_id):
        """Accept a dispatch before its deadline, optionally naming the resource used."""
        return service.accept_dispatch(db(), actor=current_actor(), assignment_id=assignment_id, **data)


@blp.route("/<int:assignment_id>/decline")
class AssignmentDecline(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, AssignmentOut)
    def post(self, data, assignment_id):
        """Decline a dispatch with a reason."""
        return service.decline_dispatch(db(), actor=current_actor(), assignment_id=assignment_id, **data)


@blp.route("/<int:assignment_id>/recall")
class AssignmentRecall(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, AssignmentOut)
    def post(self, data, assignment_id):
        """Recall a dispatch or confirmed share before work starts (the secretary)."""
        return service.recall_assignment(db(), actor=current_actor(), assignment_id=assignment_id, **data)


@blp.route("/<int:assignment_id>/release")
class AssignmentRelease(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, AssignmentOut)
    def post(self, data, assignment_id):
        """Give back your confirmed share before work starts, with a reason."""
        return service.release_assignment(db(), actor=current_actor(), assignment_id=assignment_id, **data)
