"""Work reports, their verification, and the service records verification creates."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from scoring.hours import minutes_to_hours
from web.api.common import PageArgs, ReasonIn, current_actor, db, page_of, page_out, split_args
from web.services import reports as service

PREFIX = ""
blp = Blueprint("reports", __name__, description="Work reports, verification, service records")


class VolunteerOut(Schema):
    id = fields.Integer()
    user_id = fields.Integer(allow_none=True)
    name = fields.String()
    minutes = fields.Integer()
    hours = fields.Function(lambda v: str(minutes_to_hours(v.minutes)))


class ReportOut(Schema):
    id = fields.Integer()
    demand_id = fields.Integer()
    unit_id = fields.Integer()
    started_on = fields.Date()
    ended_on = fields.Date()
    summary = fields.String()
    beneficiaries_served = fields.Integer()
    value_fen = fields.Integer()
    status = fields.String()
    return_reason = fields.String(allow_none=True)
    submitted_by = fields.Integer()
    submitted_at = fields.DateTime()
    decided_by = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    volunteers = fields.List(fields.Nested(VolunteerOut))


class ReportArgs(PageArgs):
    status = fields.String()
    demand_id = fields.Integer()
    unit_id = fields.Integer()
    q = fields.String(validate=validate.Length(max=100),
                      metadata={"description": "words in the item's title or the unit's name"})


class ServiceRecordOut(Schema):
    id = fields.String()
    report_id = fields.Integer()
    demand_id = fields.Integer()
    unit_id = fields.Integer()
    community_id = fields.Integer()
    category_id = fields.Integer()
    user_id = fields.Integer(allow_none=True)
    name = fields.String()
    minutes = fields.Integer()
    hours = fields.Function(lambda r: str(minutes_to_hours(r.minutes)))
    served_on = fields.Date()
    verified_at = fields.DateTime()


class ServiceRecordArgs(PageArgs):
    user_id = fields.Integer()
    unit_id = fields.Integer()
    community_id = fields.Integer()
    demand_id = fields.Integer()
    report_id = fields.Integer()
    category_id = fields.Integer()
    year = fields.Integer(validate=validate.Range(min=1, max=9998),
                          metadata={"description": "served in this calendar year"})
    q = fields.String(validate=validate.Length(max=100), metadata={
        "description": "words in the item's or activity's title, the unit or the category"})


@blp.route("/reports")
class Reports(MethodView):
    @blp.arguments(ReportArgs, location="query")
    @blp.response(200, page_of(ReportOut, "ReportPage"))
    def get(self, args):
        """Reports of your unit, or on your community's demands."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_reports(db(), actor=current_actor(), filters=filters,
                                             page=page, per_page=per_page))


@blp.route("/reports/<int:report_id>")
class ReportView(MethodView):
    @blp.response(200, ReportOut)
    def get(self, report_id):
        """One work report with its volunteers."""
        return service.get_report(db(), actor=current_actor(), report_id=report_id)


@blp.route("/reports/<int:report_id>/verify")
class ReportVerify(MethodView):
    @blp.response(200, ReportOut)
    def post(self, report_id):
        """Verify a report (the secretary): each volunteer line becomes a service record."""
        return service.verify_report(db(), actor=current_actor(), report_id=report_id)


@blp.route("/reports/<int:report_id>/return")
class ReportReturn(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, ReportOut)
    def post(self, data, report_id):
        """Return a report for correction, with a reason (the secretary)."""
        return service.return_report(db(), actor=current_actor(), report_id=report_id, **data)


@blp.route("/service-records")
class ServiceRecords(MethodView):
    @blp.arguments(ServiceRecordArgs, location="query")
    @blp.response(200, page_of(ServiceRecordOut, "ServiceRecordPage"))
    def get(self, args):
        """Verified service records: yours, your unit's, or your community's."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_service_records(db(), actor=current_actor(),
                                                     filters=filters, page=page,
                                                     per_page=per_page))
