"""The public-welfare supermarket (公益超市): catalogue, baskets and codes, the counter, stock, fund.

Ordering, cancelling, buying stock and money donations need an `Idempotency-Key` header.
"""

from __future__ import annotations

import io

import segno
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from web.api.common import PageArgs, current_actor, db, page_of, page_out, split_args
from web.api.lovebank import TransferOut, idempotency_key
from web.services import market as service

PREFIX = "/market"
blp = Blueprint("market", __name__, description="The public-welfare supermarket (公益超市)")


class ItemIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    category = fields.String(required=True, validate=validate.Length(min=1, max=40))
    kind = fields.String(required=True, validate=validate.OneOf(["goods", "service"]))
    description = fields.String(validate=validate.Length(max=5000))
    points_price = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=1_000_000))
    monthly_limit = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=1000))
    visible_from = fields.AwareDateTime(allow_none=True)
    visible_until = fields.AwareDateTime(allow_none=True)
    value_fen = fields.Integer(strict=True, validate=validate.Range(min=0, max=10**9))
    photo_url = fields.String(allow_none=True, validate=validate.Length(max=500))


class ItemCreateIn(ItemIn):
    community_id = fields.Integer(strict=True, required=True)


class ItemPatch(ItemIn):
    is_active = fields.Boolean()


class ItemOut(ItemIn):
    id = fields.Integer(strict=True)
    community_id = fields.Integer(strict=True)
    stock = fields.Integer(strict=True, allow_none=True)
    is_active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ItemArgs(PageArgs):
    community_id = fields.Integer(required=True)
    category = fields.String()
    kind = fields.String()
    q = fields.String(validate=validate.Length(max=100))


class LineIn(Schema):
    item_id = fields.Integer(strict=True, required=True)
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=99))


class OrderIn(Schema):
    community_id = fields.Integer(strict=True, required=True)
    lines = fields.List(fields.Nested(LineIn), required=True,
                        validate=validate.Length(min=1, max=service.MAX_LINES))
    user_id = fields.Integer(strict=True, metadata={"description": "at the counter: the resident served "
                                                      "(the clerk orders; handed over at once)"})


class OrderLineOut(Schema):
    item_id = fields.Integer(strict=True)
    name = fields.Function(lambda line: line.item.name)
    quantity = fields.Integer(strict=True)
    points_each = fields.Integer(strict=True)
    value_fen_each = fields.Integer(strict=True)


class OrderOut(Schema):
    id = fields.Integer(strict=True)
    community_id = fields.Integer(strict=True)
    user_id = fields.Integer(strict=True)
    code = fields.String()
    status = fields.String()
    total_points = fields.Integer(strict=True)
    transfer_id = fields.Integer(strict=True)
    refund_transfer_id = fields.Integer(strict=True, allow_none=True)
    collect_by = fields.DateTime()
    at_counter = fields.Boolean()
    created_at = fields.DateTime()
    handed_over_by = fields.Integer(strict=True, allow_none=True)
    handed_over_at = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Nested(OrderLineOut))


class OrderArgs(PageArgs):
    status = fields.String()
    community_id = fields.Integer()
    user_id = fields.Integer()


class CancelIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class HandOverIn(Schema):
    code = fields.String(required=True, validate=validate.Length(min=4, max=32))


class DonationIn(Schema):
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=100_000))
    value_fen = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=10**9))
    reason = fields.String(validate=validate.Length(max=500))
    unit_id = fields.Integer(strict=True)
    donor_user_id = fields.Integer(strict=True)
    donor_name = fields.String(validate=validate.Length(max=100))


class PurchaseIn(Schema):
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=100_000))
    cost_fen = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=10**9))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class MovementOut(Schema):
    id = fields.Integer(strict=True)
    item_id = fields.Integer(strict=True)
    community_id = fields.Integer(strict=True)
    delta = fields.Integer(strict=True)
    kind = fields.String()
    reason = fields.String(allow_none=True)
    unit_id = fields.Integer(strict=True, allow_none=True)
    donor_user_id = fields.Integer(strict=True, allow_none=True)
    donor_name = fields.String(allow_none=True)
    value_fen = fields.Integer(strict=True)
    order_id = fields.Integer(strict=True, allow_none=True)
    fund_transfer_id = fields.Integer(strict=True, allow_none=True)
    count_id = fields.Integer(strict=True, allow_none=True)
    created_by = fields.Integer(strict=True, allow_none=True)
    created_at = fields.DateTime()


class MovementArgs(PageArgs):
    community_id = fields.Integer(required=True)
    item_id = fields.Integer()
    kind = fields.String()
    unit_id = fields.Integer()
    q = fields.String(validate=validate.Length(max=100),
                      metadata={"description": "the goods' name, the reason or the donor"})


class CountLineIn(Schema):
    item_id = fields.Integer(strict=True, required=True)
    counted = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=10**7))


class CountIn(Schema):
    community_id = fields.Integer(strict=True, required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    lines = fields.List(fields.Nested(CountLineIn), required=True,
                        validate=validate.Length(min=1, max=1000))


class CountLineOut(Schema):
    item_id = fields.Integer(strict=True)
    expected = fields.Integer(strict=True)
    counted = fields.Integer(strict=True)
    difference = fields.Function(lambda line: line.counted - line.expected)


class CountOut(Schema):
    id = fields.Integer(strict=True)
    community_id = fields.Integer(strict=True)
    reason = fields.String()
    created_by = fields.Integer(strict=True, allow_none=True)
    created_at = fields.DateTime()
    lines = fields.List(fields.Nested(CountLineOut))


class MoneyIn(Schema):
    community_id = fields.Integer(strict=True, required=True)
    amount_fen = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=10**9))
    donor_type = fields.String(required=True, validate=validate.OneOf(["unit", "resident",
                                                                        "other"]))
    unit_id = fields.Integer(strict=True)
    donor_name = fields.String(validate=validate.Length(max=100))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class FundOut(Schema):
    community_id = fields.Integer(strict=True)
    balance_fen = fields.Integer(strict=True)
    donations_fen = fields.Integer(strict=True)
    matching_grants_fen = fields.Integer(strict=True)
    purchases_fen = fields.Integer(strict=True)


@blp.route("/items")
class Items(MethodView):
    @blp.arguments(ItemArgs, location="query")
    @blp.response(200, page_of(ItemOut, "MarketItemPage"))
    def get(self, args):
        """The catalogue: residents see what is on offer now; the clerk sees every item."""
        filters, page, per_page = split_args(args)
        community_id = filters.pop("community_id")
        return page_out(service.list_items(db(), actor=current_actor(), community_id=community_id,
                                           filters=filters, page=page, per_page=per_page))

    @blp.arguments(ItemCreateIn)
    @blp.response(201, ItemOut)
    def post(self, data):
        """Add goods or a service to the catalogue (the clerk or secretary)."""
        community_id = data.pop("community_id")
        return service.create_item(db(), actor=current_actor(), community_id=community_id,
                                   data=data)


@blp.route("/items/<int:item_id>")
class Item(MethodView):
    @blp.response(200, ItemOut)
    def get(self, item_id):
        """One item of the catalogue."""
        return service.get_item(db(), actor=current_actor(), item_id=item_id)

    @blp.arguments(ItemPatch(partial=True))
    @blp.response(200, ItemOut)
    def patch(self, data, item_id):
        """Change an item's details (stock moves only through stock movements)."""
        return service.update_item(db(), actor=current_actor(), item_id=item_id, changes=data)


@blp.route("/items/<int:item_id>/donations")
class ItemDonations(MethodView):
    @blp.arguments(DonationIn)
    @blp.response(201, MovementOut)
    def post(self, data, item_id):
        """Take in donated goods from a unit (its contribution) or a resident."""
        return service.receive_donation(db(), actor=current_actor(), item_id=item_id, **data)


@blp.route("/items/<int:item_id>/purchases")
class ItemPurchases(MethodView):
    @blp.arguments(PurchaseIn)
    @blp.response(201, MovementOut)
    def post(self, data, item_id):
        """Buy stock with the community fund (the secretary); needs Idempotency-Key."""
        return service.purchase_stock(db(), actor=current_actor(), item_id=item_id,
                                      idempotency_key=idempotency_key(), **data)


@blp.route("/stock-movements")
class Movements(MethodView):
    @blp.arguments(MovementArgs, location="query")
    @blp.response(200, page_of(MovementOut, "StockMovementPage"))
    def get(self, args):
        """Every movement of stock, newest first."""
        filters, page, per_page = split_args(args)
        community_id = filters.pop("community_id")
        return page_out(service.list_stock_movements(db(), actor=current_actor(),
                                                     community_id=community_id,
                                                     filters=filters, page=page,
                                                     per_page=per_page))


@blp.route("/stock-counts")
class Counts(MethodView):
    @blp.arguments(CountIn)
    @blp.response(201, CountOut)
    def post(self, data):
        """Record a stock count (盘点); each difference becomes an adjustment with the reason."""
        return service.count_stock(db(), actor=current_actor(), **data)


@blp.route("/orders")
class Orders(MethodView):
    @blp.arguments(OrderArgs, location="query")
    @blp.response(200, page_of(OrderOut, "MarketOrderPage"))
    def get(self, args):
        """Orders: your own, or your supermarket's."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_orders(db(), actor=current_actor(), filters=filters,
                                            page=page, per_page=per_page))

    @blp.arguments(OrderIn)
    @blp.response(201, OrderOut)
    def post(self, data):
        """Order a basket: points debited, stock held, a code issued — all or nothing.
        Needs Idempotency-Key."""
        return service.place_order(db(), actor=current_actor(), community_id=data["community_id"],
                                   lines=data["lines"], for_user_id=data.get("user_id"),
                                   idempotency_key=idempotency_key())


@blp.route("/orders/<int:order_id>")
class OrderView(MethodView):
    @blp.response(200, OrderOut)
    def get(self, order_id):
        """One order with its code and lines."""
        return service.get_order(db(), actor=current_actor(), order_id=order_id)


@blp.route("/orders/<int:order_id>/qr.svg")
class OrderQr(MethodView):
    @blp.response(200, {"type": "string"}, content_type="image/svg+xml")
    def get(self, order_id):
        """The order's code as a QR code (SVG) to show at the counter."""
        order = service.get_order(db(), actor=current_actor(), order_id=order_id)
        out = io.BytesIO()
        segno.make(order.code, error="m").save(out, kind="svg", scale=6, border=2)
        return Response(out.getvalue(), mimetype="image/svg+xml")


@blp.route("/orders/<int:order_id>/cancel")
class OrderCancel(MethodView):
    @blp.arguments(CancelIn)
    @blp.response(200, OrderOut)
    def post(self, data, order_id):
        """Cancel an order not yet collected: points refunded, stock returned.
        Needs Idempotency-Key."""
        return service.cancel_order(db(), actor=current_actor(), order_id=order_id,
                                    idempotency_key=idempotency_key(), **data)


@blp.route("/hand-over")
class HandOver(MethodView):
    @blp.arguments(HandOverIn)
    @blp.response(200, OrderOut)
    def post(self, data):
        """The counter: enter or scan a code and hand the basket over (the clerk)."""
        return service.hand_over(db(), actor=current_actor(), code=data["code"])


@blp.route("/fund")
class Fund(MethodView):
    @blp.arguments(Schema.from_dict({"community_id": fields.Integer(required=True)},
                                    name="FundArgs"), location="query")
    @blp.response(200, FundOut)
    def get(self, args):
        """The community fund (社区基金) in fen: balance, donations, matching grants, purchases."""
        return service.fund_summary(db(), actor=current_actor(), community_id=args["community_id"])


@blp.route("/fund/donations")
class FundDonations(MethodView):
    @blp.arguments(MoneyIn)
    @blp.response(201, TransferOut)
    def post(self, data):
        """Record money given to the fund, with the matching grant; needs Idempotency-Key."""
        return service.donate_money(db(), actor=current_actor(),
                                    idempotency_key=idempotency_key(), **data)
