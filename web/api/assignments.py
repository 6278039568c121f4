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


ACTIONS = [
    ("approve", service.approve_claim, None, "Approve a pending claim (the secretary)."),
    ("reject", service.reject_claim, ReasonIn, "Reject a pending claim with a reason (the "
     "secretary)."),
    ("withdraw", service.withdraw_claim, OptionalReasonIn, "Withdraw your pending claim."),
    ("accept", service.accept_dispatch, DispatchAcceptIn, "Accept a dispatch before its deadline."),
    ("decline", service.decline_dispatch, ReasonIn, "Decline a dispatch with a reason."),
    ("recall", service.recall_assignment, ReasonIn, "Recall a dispatch or confirmed share before "
     "work starts (the secretary)."),
    ("release", service.release_assignment, ReasonIn, "Give back your confirmed share before "
     "work starts, with a reason."),
]


def _action_view(name, fn, schema, doc):
    def post(*args, assignment_id):
        body = args[1] if len(args) > 1 else {}
        return fn(db(), actor=current_actor(), assignment_id=assignment_id, **body)

    post.__doc__, post.__name__ = doc, f"post_{name}"
    view = blp.response(200, AssignmentOut)(post)
    if schema is not None:
        view = blp.arguments(schema)(view)
    blp.route(f"/<int:assignment_id>/{name}")(
        type(f"Assignment{name.title()}", (MethodView,), {"post": view}))


for _name, _fn, _schema, _doc in ACTIONS:
    _action_view(_name, _fn, _schema, _doc)
