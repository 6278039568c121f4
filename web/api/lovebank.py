"""The love bank: points rules, wallets and statements, awards, gifts, corrections, the journal.

Every request that moves points needs an `Idempotency-Key` header: a retry with the same key and
the same body returns the first result and moves nothing more; the same key with another body
is refused with 409 `idempotency_key_reused`.
"""

from __future__ import annotations

import csv
import io

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from web.api.common import PageArgs, current_actor, db, page_of, page_out, split_args
from web.services import lovebank as service

PREFIX = ""
blp = Blueprint("lovebank", __name__, description="The love bank (爱心银行): points and statements")

IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key() -> str | None:
    """The request's Idempotency-Key header."""
    return request.headers.get(IDEMPOTENCY_HEADER)


class RulesIn(Schema):
    document = fields.Dict(required=True, metadata={"description": "see docs/lovebank.md"})
    effective_from = fields.Date(required=True)
    note = fields.String(validate=validate.Length(max=500))


class RulesOut(Schema):
    id = fields.Integer(strict=True)
    community_id = fields.Integer(strict=True)
    version = fields.Integer(strict=True)
    effective_from = fields.Date()
    document = fields.Dict()
    note = fields.String(allow_none=True)
    created_by = fields.Integer(strict=True, allow_none=True)
    created_at = fields.DateTime()


class SettingsIn(Schema):
    points_expiry_months = fields.Integer(strict=True, allow_none=True)
    allow_gifts = fields.Boolean()
    collect_within_days = fields.Integer(strict=True)
    fund_match_percent = fields.Integer(strict=True)


class SettingsOut(SettingsIn):
    id = fields.Integer(strict=True)
    name = fields.String()


class EntryOut(Schema):
    account_id = fields.Integer(strict=True)
    lot_id = fields.Integer(strict=True, allow_none=True)
    amount = fields.Integer(strict=True)


class TransferOut(Schema):
    id = fields.Integer(strict=True)
    community_id = fields.Integer(strict=True)
    asset = fields.String()
    kind = fields.String()
    reason = fields.String()
    source_type = fields.String()
    source_id = fields.String(allow_none=True)
    reverses_id = fields.Integer(strict=True, allow_none=True)
    rule_version = fields.Integer(strict=True, allow_none=True)
    detail = fields.Dict(allow_none=True)
    created_by = fields.Integer(strict=True, allow_none=True)
    created_at = fields.DateTime()
    chain_seq = fields.Function(lambda t: t.link.seq if t.link else None, metadata={
        "description": "its place in the community's hash chain"})
    hash = fields.Function(lambda t: t.link.hash if t.link else None)
    entries = fields.List(fields.Nested(EntryOut))


class AwardIn(Schema):
    community_id = fields.Integer(strict=True, required=True)
    activity = fields.String(required=True, validate=validate.Length(min=1, max=40))
    user_ids = fields.List(fields.Integer(strict=True), required=True, validate=validate.Length(min=1, max=1000))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    day = fields.Date()


class GiftIn(Schema):
    community_id = fields.Integer(strict=True, required=True)
    to_user_id = fields.Integer(strict=True, required=True)
    points = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=1_000_000))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class AdjustIn(Schema):
    community_id = fields.Integer(strict=True, required=True)
    user_id = fields.Integer(strict=True, required=True)
    points = fields.Integer(strict=True, required=True, validate=validate.Range(min=-1_000_000, max=1_000_000))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class ReverseIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class LotOut(Schema):
    id = fields.Integer(strict=True)
    origin = fields.String()
    earned_on = fields.Date()
    expires_on = fields.Date(allow_none=True)
    amount = fields.Integer(strict=True)
    remaining = fields.Integer(strict=True)


class LineOut(Schema):
    at = fields.DateTime()
    amount = fields.Integer(strict=True)
    kind = fields.String()
    reason = fields.String()
    source_type = fields.String()
    source_id = fields.String(allow_none=True)
    transfer_id = fields.Integer(strict=True)
    rule_version = fields.Integer(strict=True, allow_none=True)
    lots = fields.List(fields.Integer(strict=True))


class WalletOut(Schema):
    community_id = fields.Integer(strict=True)
    user_id = fields.Integer(strict=True)
    balance = fields.Integer(strict=True)
    usable = fields.Integer(strict=True, metadata={"description": "balance less lots past their expiry day"})
    expiring = fields.List(fields.Nested(Schema.from_dict(
        {"on": fields.Date(), "points": fields.Integer(strict=True)}, name="ExpiringOut")),
        metadata={"description": "points that lapse, by day, soonest first"})
    lots = fields.List(fields.Nested(LotOut))
    lines = fields.List(fields.Nested(LineOut))


class StatementArgs(Schema):
    user_id = fields.Integer()
    community_id = fields.Integer()


class StatementLineArgs(PageArgs):
    user_id = fields.Integer()
    community_id = fields.Integer()
    kind = fields.String(validate=validate.OneOf([str(k) for k in service.WALLET_KINDS]))
    on_from = fields.Date(metadata={"description": "from this day (Asia/Shanghai), included"})
    on_to = fields.Date(metadata={"description": "to this day (Asia/Shanghai), included"})
    q = fields.String(validate=validate.Length(max=100),
                      metadata={"description": "words in the line's reason"})


class StatementLineOut(LineOut):
    community_id = fields.Integer(strict=True)


class AccountOut(Schema):
    id = fields.Integer(strict=True)
    kind = fields.String()
    asset = fields.String()
    community_id = fields.Integer(strict=True)
    balance = fields.Integer(strict=True)


class TransferArgs(PageArgs):
    community_id = fields.Integer(required=True)
    kind = fields.String()
    asset = fields.String(validate=validate.OneOf(["points", "fen"]))


@blp.route("/communities/<int:community_id>/points-rules")
class Rules(MethodView):
    @blp.response(200, RulesOut(many=True))
    def get(self, community_id):
        """Every version of the community's points rules (积分制管理办法), newest first."""
        return service.list_rules(db(), actor=current_actor(), community_id=community_id)

    @blp.arguments(RulesIn)
    @blp.response(201, RulesOut)
    def post(self, data, community_id):
        """Publish a new version of the rules, in force from its effective date (the secretary)."""
        return service.publish_rules(db(), actor=current_actor(), community_id=community_id,
                                     **data)


@blp.route("/communities/<int:community_id>/love-bank-settings")
class Settings(MethodView):
    @blp.arguments(SettingsIn)
    @blp.response(200, SettingsOut)
    def patch(self, data, community_id):
        """Change expiry, gifts, days to collect an order, and the fund's matching percent."""
        return service.update_settings(db(), actor=current_actor(), community_id=community_id,
                                       changes=data)


@blp.route("/ledger/statement")
class Statement(MethodView):
    @blp.arguments(StatementArgs, location="query")
    @blp.response(200, WalletOut(many=True))
    def get(self, args):
        """A statement: balance, lots and expiry, every line with its reason (yours by default)."""
        actor = current_actor()
        return service.statement(db(), actor=actor, user_id=args.get("user_id", actor.user_id),
                                 community_id=args.get("community_id"))


@blp.route("/ledger/statement/lines")
class StatementLines(MethodView):
    @blp.arguments(StatementLineArgs, location="query")
    @blp.response(200, page_of(StatementLineOut, "StatementLinePage"))
    def get(self, args):
        """A statement's lines, newest first, a page at a time: by kind, dates and words in
        the reason (yours by default)."""
        actor = current_actor()
        filters, page, per_page = split_args(args)
        user_id = filters.pop("user_id", actor.user_id)
        community_id = filters.pop("community_id", None)
        return page_out(service.list_statement_lines(
            db(), actor=actor, user_id=user_id, community_id=community_id, filters=filters,
            page=page, per_page=per_page))


@blp.route("/ledger/statement.csv")
class StatementCsv(MethodView):
    @blp.arguments(StatementArgs, location="query")
    @blp.response(200, {"type": "string"}, content_type="text/csv")
    def get(self, args):
        """The statement as CSV (date, community, amount, kind, reason, source)."""
        actor = current_actor()
        wallets = service.statement(db(), actor=actor,
                                    user_id=args.get("user_id", actor.user_id),
                                    community_id=args.get("community_id"))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["at", "community_id", "amount", "kind", "reason", "source_type",
                         "source_id", "transfer_id"])
        for wallet in wallets:
            for line in wallet["lines"]:
                writer.writerow([line["at"].isoformat(), wallet["community_id"], line["amount"],
                                 line["kind"], line["reason"], line["source_type"],
                                 line["source_id"] or "", line["transfer_id"]])
        return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=statement.csv"})


@blp.route("/ledger/awards")
class Awards(MethodView):
    @blp.arguments(AwardIn)
    @blp.response(201, TransferOut)
    def post(self, data):
        """Award an activity's points to residents (the secretary); needs Idempotency-Key."""
        return service.award_points(db(), actor=current_actor(), idempotency_key=idempotency_key(),
                                    **data)


@blp.route("/ledger/gifts")
class Gifts(MethodView):
    @blp.arguments(GiftIn)
    @blp.response(201, TransferOut)
    def post(self, data):
        """Give points to another resident of your community (爱心传递); needs Idempotency-Key."""
        return service.give_points(db(), actor=current_actor(), idempotency_key=idempotency_key(),
                                   **data)


@blp.route("/ledger/adjustments")
class Adjustments(MethodView):
    @blp.arguments(AdjustIn)
    @blp.response(201, TransferOut)
    def post(self, data):
        """Correct a wallet up or down with a reason (the secretary); needs Idempotency-Key."""
        return service.adjust_points(db(), actor=current_actor(),
                                     idempotency_key=idempotency_key(), **data)


@blp.route("/ledger/transfers")
class Transfers(MethodView):
    @blp.arguments(TransferArgs, location="query")
    @blp.response(200, page_of(TransferOut, "TransferPage"))
    def get(self, args):
        """A community's journal, newest first (its secretary and subdistrict admin)."""
        filters, page, per_page = split_args(args)
        community_id = filters.pop("community_id")
        return page_out(service.list_transfers(db(), actor=current_actor(),
                                               community_id=community_id, filters=filters,
                                               page=page, per_page=per_page))


@blp.route("/ledger/transfers/<int:transfer_id>/reverse")
class Reverse(MethodView):
    @blp.arguments(ReverseIn)
    @blp.response(201, TransferOut)
    def post(self, data, transfer_id):
        """Undo a mistaken transfer with a mirror transfer linked to it; needs Idempotency-Key."""
        return service.reverse_transfer(db(), actor=current_actor(), transfer_id=transfer_id,
                                        idempotency_key=idempotency_key(), **data)


@blp.route("/ledger/accounts")
class Accounts(MethodView):
    @blp.arguments(Schema.from_dict({"community_id": fields.Integer(required=True)}),
                   location="query")
    @blp.response(200, AccountOut(many=True))
    def get(self, args):
        """The community's accounts (issuing, supermarket, expiry, fund, …) with balances."""
        return service.list_accounts(db(), actor=current_actor(),
                                     community_id=args["community_id"])
