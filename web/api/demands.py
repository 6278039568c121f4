"""Demand items (需求清单) and what is done on them: claims, dispatches, teams, reports, confirmation."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from scoring.hours import hours_to_minutes
from web.api.assignments import AssignmentOut
from web.api.common import (
    DateRangeArgs,
    OptionalReasonIn,
    ReasonIn,
    current_actor,
    db,
    page_of,
    page_out,
    split_args,
)
from web.api.reports import ReportOut
from web.domain.states import DemandStatus
from web.services import assignments as assign_service
from web.services import demands as service
from web.services import reports as report_service
from web.services import service_levels
from web.services.base import utcnow
from web.services.demands import SOURCES, URGENCIES

PREFIX = "/demands"
blp = Blueprint("demands", __name__, description="Communities' demand lists (需求清单) and the "
                "workflow on each item")

CONTACT = ("beneficiary_name", "beneficiary_phone", "beneficiary_address")


class DemandPatch(Schema):
    grid_id = fields.Integer(allow_none=True)
    building_id = fields.Integer(allow_none=True)
    category_id = fields.Integer()
    title = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000))
    required_skills = fields.List(fields.String(validate=validate.Length(min=1, max=30)),
                                  validate=validate.Length(max=20))
    quantity_needed = fields.Integer(validate=validate.Range(min=1, max=100_000))
    window_start = fields.AwareDateTime(allow_none=True)
    window_end = fields.AwareDateTime(allow_none=True)
    deadline = fields.AwareDateTime(allow_none=True)
    urgency = fields.String(validate=validate.OneOf(URGENCIES))
    beneficiaries_count = fields.Integer(validate=validate.Range(min=0, max=1_000_000))
    beneficiary_vulnerable = fields.Boolean()
    beneficiary_name = fields.String(allow_none=True, validate=validate.Length(max=100))
    beneficiary_phone = fields.String(allow_none=True, validate=validate.Length(max=32))
    beneficiary_address = fields.String(allow_none=True, validate=validate.Length(max=300))
    lat = fields.Float(allow_none=True, validate=validate.Range(-90, 90))
    lng = fields.Float(allow_none=True, validate=validate.Range(-180, 180))

    @validates_schema
    def _window(self, data, **_):
        start, end = data.get("window_start"), data.get("window_end")
        if start and end and end < start:
            raise ValidationError("ends before it starts", "window_end")


class DemandIn(DemandPatch):
    community_id = fields.Integer(required=True)
    category_id = fields.Integer(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    quantity_needed = fields.Integer(required=True, validate=validate.Range(min=1, max=100_000))
    publish = fields.Boolean(load_default=False)


class DemandOut(Schema):
    id = fields.Integer()
    community_id = fields.Integer()
    grid_id = fields.Integer(allow_none=True)
    building_id = fields.Integer(allow_none=True)
    category_id = fields.Integer()
    title = fields.String()
    description = fields.String()
    required_skills = fields.List(fields.String())
    quantity_needed = fields.Integer()
    quantity_open = fields.Integer()
    quantity_confirmed = fields.Integer()
    window_start = fields.DateTime(allow_none=True)
    window_end = fields.DateTime(allow_none=True)
    deadline = fields.DateTime(allow_none=True)
    urgency = fields.String()
    beneficiaries_count = fields.Integer()
    beneficiary_vulnerable = fields.Boolean()
    source = fields.String()
    beneficiary_name = fields.String(allow_none=True)
    beneficiary_phone = fields.String(allow_none=True)
    beneficiary_address = fields.String(allow_none=True)
    contact_visible = fields.Boolean()
    lat = fields.Float(allow_none=True)
    lng = fields.Float(allow_none=True)
    status = fields.String()
    rating = fields.Integer(allow_none=True)
    rating_comment = fields.String(allow_none=True)
    rated_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    # Service levels (当日受理、三日办结).
    published_at = fields.DateTime(allow_none=True)
    accept_due_at = fields.DateTime(allow_none=True)
    close_due_at = fields.DateTime(allow_none=True)
    accepted_at = fields.DateTime(allow_none=True)
    verified_at = fields.DateTime(allow_none=True)
    paused = fields.Boolean()
    paused_at = fields.DateTime(allow_none=True)
    pause_reason = fields.String(allow_none=True)
    sla_state = fields.String(allow_none=True, metadata={
        "description": "red (a due time passed), amber (due soon), green; null when no clock "
                       "runs (draft, verified, closed, cancelled)"})
    escalation_level = fields.Integer(metadata={
        "description": "0 grid, 1 community, 2 subdistrict"})
    escalated_at = fields.DateTime(allow_none=True)
    unsatisfied_count = fields.Integer()
    auto_confirmed = fields.Boolean()


SORTS = ["created_at", "-created_at", "deadline", "-deadline", "title", "-title",
         "quantity_open", "-quantity_open", "urgency", "-urgency", "next_due", "-next_due"]
SLA_STATES = ("red", "amber")


class DemandArgs(DateRangeArgs):
    status = fields.String(metadata={"description": "one status or several, comma-separated"})
    category_id = fields.Integer()
    community_id = fields.Integer()
    grid_id = fields.Integer()
    unit_id = fields.Integer()
    urgency = fields.String(validate=validate.OneOf(URGENCIES))
    source = fields.String(validate=validate.OneOf(SOURCES))
    skill = fields.String()
    claimable = fields.Boolean(metadata={"description": "only items with quantity still open"})
    sla_state = fields.String(metadata={"description": "red or amber, or both comma-separated"})
    escalation_level = fields.Integer(validate=validate.Range(0, 2), metadata={
        "description": "escalated at least this far: 1 community, 2 subdistrict"})
    sort = fields.String(load_default="-created_at", validate=validate.OneOf(SORTS), metadata={
        "description": "next_due: the first due time still to meet, soonest first"})

    @validates_schema
    def _statuses(self, data, **_):
        known = {s.value for s in DemandStatus}
        if data.get("status") and not set(data["status"].split(",")) <= known:
            raise ValidationError(f"one or more of {', '.join(sorted(known))}", "status")
        if data.get("sla_state") and not set(data["sla_state"].split(",")) <= set(SLA_STATES):
            raise ValidationError("red, amber, or both comma-separated", "sla_state")


class ClaimIn(Schema):
    unit_id = fields.Integer(required=True)
    resource_id = fields.Integer(required=True)
    quantity = fields.Integer(required=True, validate=validate.Range(min=1))
    note = fields.String(validate=validate.Length(max=500))


class DispatchIn(Schema):
    unit_id = fields.Integer(required=True)
    quantity = fields.Integer(required=True, validate=validate.Range(min=1))
    resource_id = fields.Integer(allow_none=True)
    response_hours = fields.Integer(validate=validate.Range(min=1, max=24 * 14))
    note = fields.String(validate=validate.Length(max=500))


class LeadIn(Schema):
    assignment_id = fields.Integer(required=True)


class VolunteerIn(Schema):
    user_id = fields.Integer(allow_none=True)
    name = fields.String(validate=validate.Length(max=100))
    phone = fields.String(validate=validate.Length(max=32))
    hours = fields.Decimal(required=True, places=2, as_string=True,
                           validate=validate.Range(min=0.01, max=24 * 31))


class ReportIn(Schema):
    started_on = fields.Date(required=True)
    ended_on = fields.Date(required=True)
    volunteers = fields.List(fields.Nested(VolunteerIn), required=True,
                             validate=validate.Length(min=1, max=500))
    beneficiaries_served = fields.Integer(required=True, validate=validate.Range(min=0))
    value_fen = fields.Integer(required=True, validate=validate.Range(min=0))
    summary = fields.String(load_default="", validate=validate.Length(max=5000))


class ConfirmIn(Schema):
    rating = fields.Integer(required=True, validate=validate.Range(1, 5))
    comment = fields.String(validate=validate.Length(max=1000))


class EventOut(Schema):
    id = fields.Integer()
    entity_type = fields.String()
    entity_id = fields.Integer()
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    actor_id = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    data = fields.Method("_data")
    created_at = fields.DateTime()

    def _data(self, event):
        import json

        return json.loads(event.data) if event.data else None


def present_all(demands, actor) -> list[dict]:
    """Demands as the caller may see them: the beneficiary's contact only for those who need it."""
    visible = service.contact_visible_ids(db(), actor, demands)
    now, out = utcnow(), []
    for demand in demands:
        row = {c.key: getattr(demand, c.key) for c in demand.__table__.columns}
        row["contact_visible"] = demand.id in visible
        row["paused"] = demand.paused_at is not None
        row["sla_state"] = service_levels.sla_state(demand, now)
        if not row["contact_visible"]:  # a pause's reason may be about the beneficiary
            row.update(dict.fromkeys(CONTACT + ("pause_reason",)))
        out.append(row)
    return out


def present(demand, actor) -> dict:
    """One demand as the caller may see it."""
    return present_all([demand], actor)[0]


@blp.route("")
class Demands(MethodView):
    @blp.arguments(DemandArgs, location="query")
    @blp.response(200, page_of(DemandOut, "DemandPage"))
    def get(self, args):
        """Demands you may see: your community's or grid's, the units' board, your own."""
        actor = current_actor()
        filters, page, per_page = split_args(args)
        sort = filters.pop("sort")
        result = service.list_demands(db(), actor=actor, filters=filters, page=page,
                                      per_page=per_page, sort=sort, with_names=False)
        return {**page_out(result), "items": present_all(result.items, actor)}

    @blp.arguments(DemandIn)
    @blp.response(201, DemandOut)
    def post(self, data):
        """Record a demand (secretary, or grid worker in their grid); secretaries may publish."""
        actor = current_actor()
        community_id, publish = data.pop("community_id"), data.pop("publish")
        demand = service.create_demand(db(), actor=actor, community_id=community_id, data=data,
                                       publish=publish)
        return present(demand, actor)


@blp.route("/<int:demand_id>")
class DemandView(MethodView):
    @blp.response(200, DemandOut)
    def get(self, demand_id):
        """One demand."""
        actor = current_actor()
        return present(service.get_demand(db(), actor=actor, demand_id=demand_id), actor)

    @blp.arguments(DemandPatch)
    @blp.response(200, DemandOut)
    def patch(self, changes, demand_id):
        """Edit a demand before work starts (the secretary)."""
        actor = current_actor()
        demand = service.update_demand(db(), actor=actor, demand_id=demand_id, changes=changes)
        return present(demand, actor)


@blp.route("/<int:demand_id>/publish")
class DemandPublish(MethodView):
    @blp.response(200, DemandOut)
    def post(self, demand_id):
        """Publish a draft onto the demand list (the secretary)."""
        actor = current_actor()
        return present(service.publish_demand(db(), actor=actor, demand_id=demand_id), actor)


@blp.route("/<int:demand_id>/cancel")
class DemandCancel(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, DemandOut)
    def post(self, data, demand_id):
        """Cancel a demand with a reason; open claims and dispatches are cancelled with it."""
        actor = current_actor()
        demand = service.cancel_demand(db(), actor=actor, demand_id=demand_id, **data)
        return present(demand, actor)


@blp.route("/<int:demand_id>/pause")
class DemandPause(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, DemandOut)
    def post(self, data, demand_id):
        """Pause the item's service-level clocks, with a reason (the secretary, or the grid
        worker of the item's grid)."""
        actor = current_actor()
        demand = service_levels.pause_demand(db(), actor=actor, demand_id=demand_id, **data)
        return present(demand, actor)


@blp.route("/<int:demand_id>/resume")
class DemandResume(MethodView):
    @blp.arguments(OptionalReasonIn)
    @blp.response(200, DemandOut)
    def post(self, data, demand_id):
        """Restart a paused item's clocks; its due times move on by the time it was paused."""
        actor = current_actor()
        demand = service_levels.resume_demand(db(), actor=actor, demand_id=demand_id, **data)
        return present(demand, actor)


@blp.route("/<int:demand_id>/start")
class DemandStart(MethodView):
    @blp.response(200, DemandOut)
    def post(self, demand_id):
        """Mark work as started (the lead unit); waiting claims and dispatches are cancelled."""
        actor = current_actor()
        return present(service.start_work(db(), actor=actor, demand_id=demand_id), actor)


@blp.route("/<int:demand_id>/confirmation")
class DemandConfirmation(MethodView):
    @blp.arguments(ConfirmIn)
    @blp.response(200, DemandOut)
    def post(self, data, demand_id):
        """Confirm verified work and rate it 1–5 (the beneficiary, or their grid worker)."""
        actor = current_actor()
        demand = service.confirm_demand(db(), actor=actor, demand_id=demand_id, **data)
        return present(demand, actor)


@blp.route("/<int:demand_id>/history")
class DemandHistory(MethodView):
    @blp.response(200, EventOut(many=True))
    def get(self, demand_id):
        """Every recorded step of the demand and its claims, dispatches and reports."""
        return service.history(db(), actor=current_actor(), demand_id=demand_id)


@blp.route("/<int:demand_id>/claims")
class DemandClaims(MethodView):
    @blp.arguments(ClaimIn)
    @blp.response(201, AssignmentOut)
    def post(self, data, demand_id):
        """Claim part of the demand for your unit with one of its resource items (自主选单)."""
        return assign_service.claim_demand(db(), actor=current_actor(), demand_id=demand_id,
                                           **data)


@blp.route("/<int:demand_id>/dispatches")
class DemandDispatches(MethodView):
    @blp.arguments(DispatchIn)
    @blp.response(201, AssignmentOut)
    def post(self, data, demand_id):
        """Dispatch the demand, or part of it, to a unit (社区派单; the secretary)."""
        return assign_service.dispatch_demand(db(), actor=current_actor(), demand_id=demand_id,
                                              **data)


@blp.route("/<int:demand_id>/lead")
class DemandLead(MethodView):
    @blp.arguments(LeadIn)
    @blp.response(200, AssignmentOut)
    def post(self, data, demand_id):
        """Name the lead unit of the team among the confirmed units (the secretary)."""
        return service.set_lead(db(), actor=current_actor(), demand_id=demand_id, **data)


@blp.route("/<int:demand_id>/assignments")
class DemandAssignments(MethodView):
    @blp.response(200, AssignmentOut(many=True))
    def get(self, demand_id):
        """The claims and dispatches on this demand that you may see."""
        actor = current_actor()
        service.get_demand(db(), actor=actor, demand_id=demand_id)
        page = assign_service.list_assignments(db(), actor=actor, filters={"demand_id": demand_id},
                                               per_page=1000)
        return page.items


@blp.route("/<int:demand_id>/reports")
class DemandReports(MethodView):
    @blp.arguments(ReportIn)
    @blp.response(201, ReportOut)
    def post(self, data, demand_id):
        """Report the work done for the team (the lead unit): volunteers, hours, value."""
        volunteers = [{**{k: v for k, v in line.items() if k != "hours"},
                       "minutes": hours_to_minutes(line["hours"])} for line in data["volunteers"]]
        data["volunteers"] = volunteers
        return report_service.submit_report(db(), actor=current_actor(), demand_id=demand_id,
                                            **data)
