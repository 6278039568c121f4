"""Resource items (资源清单): what units offer."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from web.api.common import (
    DateRangeArgs,
    ReasonIn,
    current_actor,
    db,
    page_of,
    page_out,
    split_args,
)
from web.domain.states import ResourceStatus
from web.services import resources as service
from web.services.resources import KINDS

PREFIX = "/resources"
blp = Blueprint("resources", __name__, description="Units' resource lists (资源清单)")

TIME = r"^([01]\d|2[0-3]):[0-5]\d$"


class DateRange(Schema):
    start = fields.Date(required=True)
    end = fields.Date(required=True)

    @validates_schema
    def _order(self, data, **_):
        if data["end"] < data["start"]:
            raise ValidationError("ends before it starts", "end")

    @post_load
    def _as_text(self, data, **_):
        """Stored in a JSON column, so as ISO dates (the matcher reads them so)."""
        return {"start": data["start"].isoformat(), "end": data["end"].isoformat()}


class WeeklyWindow(Schema):
    weekday = fields.Integer(required=True, validate=validate.Range(0, 6))  # Monday = 0
    start = fields.String(required=True, validate=validate.Regexp(TIME))
    end = fields.String(required=True, validate=validate.Regexp(TIME))

    @validates_schema
    def _order(self, data, **_):
        if data["end"] <= data["start"]:
            raise ValidationError("ends before it starts", "end")


class Availability(Schema):
    date_ranges = fields.List(fields.Nested(DateRange), load_default=list)
    weekly = fields.List(fields.Nested(WeeklyWindow), load_default=list)


class ResourcePatch(Schema):
    kind = fields.String(validate=validate.OneOf(KINDS))
    category_id = fields.Integer()
    title = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(validate=validate.Length(max=5000))
    skills = fields.List(fields.String(validate=validate.Length(min=1, max=30)),
                         validate=validate.Length(max=30))
    capacity_per_occasion = fields.Integer(validate=validate.Range(min=1))
    quantity_total = fields.Integer(validate=validate.Range(min=1, max=1_000_000))
    availability = fields.Nested(Availability)
    service_community_ids = fields.List(fields.Integer())
    lat = fields.Float(allow_none=True, validate=validate.Range(-90, 90))
    lng = fields.Float(allow_none=True, validate=validate.Range(-180, 180))
    radius_m = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=200_000))
    value_fen_per_unit = fields.Integer(validate=validate.Range(min=0))
    is_standing_offer = fields.Boolean()
    expires_on = fields.Date(allow_none=True)


class ResourceIn(ResourcePatch):
    unit_id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    category_id = fields.Integer(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    capacity_per_occasion = fields.Integer(required=True, validate=validate.Range(min=1))
    quantity_total = fields.Integer(required=True, validate=validate.Range(min=1, max=1_000_000))
    service_community_ids = fields.List(fields.Integer(), load_default=list)
    publish = fields.Boolean(load_default=False)


class ResourceOut(Schema):
    id = fields.Integer()
    unit_id = fields.Integer()
    unit_name = fields.Function(lambda r: r.unit.name)
    kind = fields.String()
    category_id = fields.Integer()
    title = fields.String()
    description = fields.String()
    skills = fields.List(fields.String())
    capacity_per_occasion = fields.Integer()
    quantity_total = fields.Integer()
    quantity_remaining = fields.Integer()
    availability = fields.Dict()
    service_community_ids = fields.Function(lambda r: sorted(c.id for c in r.service_communities))
    lat = fields.Float(allow_none=True)
    lng = fields.Float(allow_none=True)
    radius_m = fields.Integer(allow_none=True)
    value_fen_per_unit = fields.Integer()
    is_standing_offer = fields.Boolean()
    expires_on = fields.Date(allow_none=True)
    status = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


SORTS = ["created_at", "-created_at", "title", "-title", "quantity_remaining",
         "-quantity_remaining", "value_fen_per_unit", "-value_fen_per_unit"]


class ResourceArgs(DateRangeArgs):
    status = fields.String(metadata={"description": "one status or several, comma-separated"})
    kind = fields.String(validate=validate.OneOf(KINDS))
    category_id = fields.Integer()
    unit_id = fields.Integer()
    community_id = fields.Integer()
    skill = fields.String()
    sort = fields.String(load_default="-created_at", validate=validate.OneOf(SORTS))

    @validates_schema
    def _statuses(self, data, **_):
        known = {s.value for s in ResourceStatus}
        if data.get("status") and not set(data["status"].split(",")) <= known:
            raise ValidationError(f"one or more of {', '.join(sorted(known))}", "status")


@blp.route("")
class Resources(MethodView):
    @blp.arguments(ResourceArgs, location="query")
    @blp.response(200, page_of(ResourceOut, "ResourcePage"))
    def get(self, args):
        """Published resources, and every item of your own unit; filter, search, sort."""
        filters, page, per_page = split_args(args)
        sort = filters.pop("sort")
        return page_out(service.list_resources(db(), actor=current_actor(), filters=filters,
                                               page=page, per_page=per_page, sort=sort))

    @blp.arguments(ResourceIn)
    @blp.response(201, ResourceOut)
    def post(self, data):
        """Add an item to your unit's resource list (a draft unless publish is true)."""
        unit_id, publish = data.pop("unit_id"), data.pop("publish")
        areas = data.pop("service_community_ids")
        return service.create_resource(db(), actor=current_actor(), unit_id=unit_id, data=data,
                                       service_community_ids=areas, publish=publish)


@blp.route("/<int:resource_id>")
class ResourceView(MethodView):
    @blp.response(200, ResourceOut)
    def get(self, resource_id):
        """One resource item."""
        return service.get_resource(db(), actor=current_actor(), resource_id=resource_id)

    @blp.arguments(ResourcePatch)
    @blp.response(200, ResourceOut)
    def patch(self, changes, resource_id):
        """Edit an item of your unit; what remains follows the total."""
        return service.update_resource(db(), actor=current_actor(), resource_id=resource_id,
                                       changes=changes)


@blp.route("/<int:resource_id>/publish")
class ResourcePublish(MethodView):
    @blp.response(200, ResourceOut)
    def post(self, resource_id):
        """Publish a draft or withdrawn item."""
        return service.publish_resource(db(), actor=current_actor(), resource_id=resource_id)


@blp.route("/<int:resource_id>/withdraw")
class ResourceWithdraw(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, ResourceOut)
    def post(self, data, resource_id):
        """Withdraw an item, with a reason."""
        return service.withdraw_resource(db(), actor=current_actor(), resource_id=resource_id,
                                         **data)
