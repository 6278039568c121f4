"""Micro-wishes (微心愿): residents' small wishes and their triage."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from web.api.common import PageArgs, ReasonIn, current_actor, db, page_of, page_out, split_args
from web.api.demands import DemandOut, DemandPatch, present
from web.services import wishes as service

PREFIX = "/micro-wishes"
blp = Blueprint("micro_wishes", __name__, description="Residents' micro-wishes (微心愿)")


class WishIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    category_id = fields.Integer(allow_none=True)


class WishOut(Schema):
    id = fields.Integer()
    resident_id = fields.Integer()
    community_id = fields.Integer()
    grid_id = fields.Integer(allow_none=True)
    category_id = fields.Integer(allow_none=True)
    title = fields.String()
    description = fields.String()
    status = fields.String()
    decision_reason = fields.String(allow_none=True)
    demand_id = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class WishArgs(PageArgs):
    status = fields.String()
    community_id = fields.Integer()
    grid_id = fields.Integer()
    category_id = fields.Integer()
    mine = fields.Boolean()
    q = fields.String(validate=validate.Length(max=100),
                      metadata={"description": "words in the title or description"})


class WishAcceptIn(Schema):
    demand = fields.Nested(DemandPatch, load_default=dict)
    publish = fields.Boolean(load_default=False)


class AcceptOut(Schema):
    wish = fields.Nested(WishOut)
    demand = fields.Nested(DemandOut)


@blp.route("")
class Wishes(MethodView):
    @blp.arguments(WishArgs, location="query")
    @blp.response(200, page_of(WishOut, "WishPage"))
    def get(self, args):
        """Your own wishes, or those of your grid or community."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_wishes(db(), actor=current_actor(), filters=filters,
                                            page=page, per_page=per_page))

    @blp.arguments(WishIn)
    @blp.response(201, WishOut)
    def post(self, data):
        """Submit a micro-wish to your home community (residents)."""
        return service.submit_wish(db(), actor=current_actor(), **data)


@blp.route("/<int:wish_id>")
class WishView(MethodView):
    @blp.response(200, WishOut)
    def get(self, wish_id):
        """One micro-wish and what happened to it."""
        return service.get_wish(db(), actor=current_actor(), wish_id=wish_id)


@blp.route("/<int:wish_id>/accept")
class WishAccept(MethodView):
    @blp.arguments(WishAcceptIn)
    @blp.response(200, AcceptOut)
    def post(self, data, wish_id):
        """Turn the wish into a demand item (grid worker or secretary)."""
        actor = current_actor()
        wish, demand = service.accept_wish(db(), actor=actor, wish_id=wish_id, **data)
        return {"wish": wish, "demand": present(demand, actor)}


@blp.route("/<int:wish_id>/decline")
class WishDecline(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, WishOut)
    def post(self, data, wish_id):
        """Decline the wish with a reason the resident sees (grid worker or secretary)."""
        return service.decline_wish(db(), actor=current_actor(), wish_id=wish_id, **data)


@blp.route("/<int:wish_id>/withdraw")
class WishWithdraw(MethodView):
    @blp.response(200, WishOut)
    def post(self, wish_id):
        """Withdraw your wish before anyone acts on it."""
        return service.withdraw_wish(db(), actor=current_actor(), wish_id=wish_id)
