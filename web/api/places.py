"""Places and categories: reference data every signed-in user may read."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from web.api.common import PageArgs, current_actor, db, page_of, page_out, split_args
from web.services import categories as cat_service
from web.services import places as service

PREFIX = ""
blp = Blueprint("places", __name__, description="Subdistricts, communities, grids, estates, "
                "buildings and categories")


class SubdistrictOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()


class CommunityOut(Schema):
    id = fields.Integer()
    subdistrict_id = fields.Integer()
    code = fields.String()
    name = fields.String()
    lat = fields.Float(allow_none=True)
    lng = fields.Float(allow_none=True)
    auto_approve_paired_claims = fields.Boolean()
    dispatch_response_hours = fields.Integer()
    accept_within_hours = fields.Integer()
    close_within_days = fields.Integer()
    sla_working_days = fields.Boolean()
    escalate_after_hours = fields.Integer()
    auto_confirm_days = fields.Integer()
    expiry_notice_days = fields.Integer()
    auto_propose = fields.Boolean()


def _between(low: int, high: int, what: str):
    return fields.Integer(validate=validate.Range(min=low, max=high),
                          metadata={"description": f"{what}, {low}–{high}"})


class CommunitySettingsIn(Schema):
    auto_approve_paired_claims = fields.Boolean()
    dispatch_response_hours = _between(1, 24 * 14, "hours a dispatched unit has to answer")
    accept_within_hours = _between(1, 24 * 14, "hours to accept a published item")
    close_within_days = _between(1, 90, "days to close a published item")
    sla_working_days = fields.Boolean(metadata={
        "description": "the service-level clocks run on Asia/Shanghai working days only"})
    escalate_after_hours = _between(1, 24 * 14, "hours an overdue item waits at the "
                                    "community before it goes up to the subdistrict")
    auto_confirm_days = _between(1, 90, "days before verified work is confirmed automatically")
    expiry_notice_days = _between(1, 365, "days of notice before points expire")
    auto_propose = fields.Boolean(metadata={
        "description": "the scheduler proposes pairs for new open items on its own"})


class GridIn(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    parent_id = fields.Integer(allow_none=True)


class GridOut(Schema):
    id = fields.Integer()
    community_id = fields.Integer()
    parent_id = fields.Integer(allow_none=True)
    level = fields.Integer()
    code = fields.String()
    name = fields.String()


class EstateIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    lat = fields.Float(allow_none=True, validate=validate.Range(-90, 90))
    lng = fields.Float(allow_none=True, validate=validate.Range(-180, 180))


class EstateOut(EstateIn):
    id = fields.Integer()
    community_id = fields.Integer()


class BuildingIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    grid_id = fields.Integer(allow_none=True)


class BuildingOut(BuildingIn):
    id = fields.Integer()
    estate_id = fields.Integer()


class CommunityArgs(PageArgs):
    subdistrict_id = fields.Integer()
    q = fields.String()


class CategoryIn(Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$"))
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=50))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=80))
    sort_order = fields.Integer(load_default=500)


class CategoryPatch(Schema):
    name_zh = fields.String(validate=validate.Length(min=1, max=50))
    name_en = fields.String(validate=validate.Length(min=1, max=80))
    sort_order = fields.Integer()
    is_active = fields.Boolean()


class CategoryOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name_zh = fields.String()
    name_en = fields.String()
    sort_order = fields.Integer()
    is_active = fields.Boolean()


class CategoryArgs(Schema):
    include_inactive = fields.Boolean(load_default=False)


@blp.route("/subdistricts")
class Subdistricts(MethodView):
    @blp.response(200, SubdistrictOut(many=True))
    def get(self):
        """Every subdistrict."""
        current_actor()
        return service.list_subdistricts(db())


@blp.route("/communities")
class Communities(MethodView):
    @blp.arguments(CommunityArgs, location="query")
    @blp.response(200, page_of(CommunityOut, "CommunityPage"))
    def get(self, args):
        """Communities, by subdistrict or name."""
        current_actor()
        filters, page, per_page = split_args(args)
        return page_out(service.list_communities(db(), page=page, per_page=per_page, **filters))


@blp.route("/communities/<int:community_id>")
class CommunityView(MethodView):
    @blp.response(200, CommunityOut)
    def get(self, community_id):
        """One community."""
        current_actor()
        return service.get_community(db(), community_id)

    @blp.arguments(CommunitySettingsIn)
    @blp.response(200, CommunityOut)
    def patch(self, changes, community_id):
        """Change the community's settings (its secretary)."""
        return service.update_community_settings(db(), actor=current_actor(),
                                                 community_id=community_id, changes=changes)


@blp.route("/communities/<int:community_id>/grids")
class Grids(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(GridOut, "GridPage"))
    def get(self, args, community_id):
        """The community's grids, at every level."""
        current_actor()
        _, page, per_page = split_args(args)
        return page_out(service.list_grids(db(), community_id=community_id, page=page,
                                           per_page=per_page))

    @blp.arguments(GridIn)
    @blp.response(201, GridOut)
    def post(self, data, community_id):
        """Add a grid, possibly nested under another (the secretary)."""
        return service.create_grid(db(), actor=current_actor(), community_id=community_id, **data)


@blp.route("/communities/<int:community_id>/estates")
class Estates(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(EstateOut, "EstatePage"))
    def get(self, args, community_id):
        """The community's estates (小区)."""
        current_actor()
        _, page, per_page = split_args(args)
        return page_out(service.list_estates(db(), community_id=community_id, page=page,
                                             per_page=per_page))

    @blp.arguments(EstateIn)
    @blp.response(201, EstateOut)
    def post(self, data, community_id):
        """Add an estate (the secretary)."""
        return service.create_estate(db(), actor=current_actor(), community_id=community_id,
                                     **data)


@blp.route("/estates/<int:estate_id>/buildings")
class Buildings(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(BuildingOut, "BuildingPage"))
    def get(self, args, estate_id):
        """The estate's buildings (楼栋)."""
        current_actor()
        _, page, per_page = split_args(args)
        return page_out(service.list_buildings(db(), estate_id=estate_id, page=page,
                                               per_page=per_page))

    @blp.arguments(BuildingIn)
    @blp.response(201, BuildingOut)
    def post(self, data, estate_id):
        """Add a building (the secretary)."""
        return service.create_building(db(), actor=current_actor(), estate_id=estate_id, **data)


@blp.route("/categories")
class Categories(MethodView):
    @blp.arguments(CategoryArgs, location="query")
    @blp.response(200, CategoryOut(many=True))
    def get(self, args):
        """Categories of demands and resources, in zh-CN and English."""
        current_actor()
        return cat_service.list_categories(db(), **args)

    @blp.arguments(CategoryIn)
    @blp.response(201, CategoryOut)
    def post(self, data):
        """Add a category (subdistrict admins)."""
        return cat_service.create_category(db(), actor=current_actor(), **data)


@blp.route("/categories/<int:category_id>")
class CategoryView(MethodView):
    @blp.arguments(CategoryPatch)
    @blp.response(200, CategoryOut)
    def patch(self, changes, category_id):
        """Rename, reorder or retire a category (subdistrict admins)."""
        return cat_service.update_category(db(), actor=current_actor(), category_id=category_id,
                                           changes=changes)
