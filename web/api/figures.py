"""Figures kept by the day: one community's or one unit's daily snapshots, for charts."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from web.api.common import PageArgs, current_actor, db, page_of, page_out, split_args
from web.services import snapshots as service

PREFIX = "/figures"
blp = Blueprint("figures", __name__, description="Daily figures of communities and units")

ID = validate.Range(min=1, max=2**31 - 1)


class DailyArgs(PageArgs):
    community_id = fields.Integer(validate=ID)
    unit_id = fields.Integer(validate=ID)
    start = fields.Date()
    end = fields.Date()
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=100))

    @validates_schema
    def _one_scope(self, data, **_):
        if ("community_id" in data) == ("unit_id" in data):
            raise ValidationError("give either a community or a unit", "community_id")


class DailyFiguresOut(Schema):
    day = fields.Date()
    scope = fields.String()
    scope_id = fields.Integer()
    figures = fields.Dict()
    created_at = fields.DateTime()


@blp.route("/daily")
class DailyFigures(MethodView):
    @blp.arguments(DailyArgs, location="query")
    @blp.response(200, page_of(DailyFiguresOut, "DailyFiguresPage"))
    def get(self, args):
        """A community's or a unit's figures by day (default: the last 30 days), oldest first."""
        filters, page, per_page = split_args(args)
        scope = "community" if "community_id" in filters else "unit"
        return page_out(service.list_daily_figures(
            db(), actor=current_actor(), scope=scope, scope_id=filters.pop(f"{scope}_id"),
            page=page, per_page=per_page, **filters))
