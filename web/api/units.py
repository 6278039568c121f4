"""Co-building units: apply, approve, suspend, pairings (结对)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from web.api.common import PageArgs, ReasonIn, current_actor, db, page_of, page_out, split_args
from web.models.people import UnitType
from web.services import units as service

PREFIX = "/units"
blp = Blueprint("units", __name__, description="Co-building units and their pairings")


class UnitPatch(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    contact_name = fields.String(validate=validate.Length(min=1, max=100))
    contact_phone = fields.String(validate=validate.Length(min=5, max=32))
    address = fields.String(allow_none=True, validate=validate.Length(max=300))
    description = fields.String(allow_none=True, validate=validate.Length(max=5000))
    lat = fields.Float(allow_none=True, validate=validate.Range(-90, 90))
    lng = fields.Float(allow_none=True, validate=validate.Range(-180, 180))


class UnitIn(UnitPatch):
    subdistrict_id = fields.Integer(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.OneOf([t.value for t in UnitType]))
    contact_name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    contact_phone = fields.String(required=True, validate=validate.Length(min=5, max=32))


class UnitOut(UnitIn):
    id = fields.Integer()
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()


class UnitArgs(PageArgs):
    status = fields.String()
    type = fields.String()
    q = fields.String()
    subdistrict_id = fields.Integer()
    community_id = fields.Integer()


class PairingIn(Schema):
    community_id = fields.Integer(required=True)
    grid_id = fields.Integer(allow_none=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(allow_none=True)
    note = fields.String(allow_none=True, validate=validate.Length(max=500))


class PairingOut(PairingIn):
    id = fields.Integer()
    unit_id = fields.Integer()
    created_at = fields.DateTime()


class PairingEndIn(ReasonIn):
    ends_on = fields.Date(required=True)


@blp.route("")
class Units(MethodView):
    @blp.arguments(UnitArgs, location="query")
    @blp.response(200, page_of(UnitOut, "UnitPage"))
    def get(self, args):
        """Approved units, plus the ones you administer or oversee."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_units(db(), actor=current_actor(), page=page,
                                           per_page=per_page, **filters))

    @blp.arguments(UnitIn)
    @blp.response(201, UnitOut)
    def post(self, data):
        """Apply as a unit; you become its admin, the subdistrict admin decides."""
        sub = data.pop("subdistrict_id")
        return service.apply_unit(db(), actor=current_actor(), subdistrict_id=sub, data=data)


@blp.route("/<int:unit_id>")
class UnitView(MethodView):
    @blp.response(200, UnitOut)
    def get(self, unit_id):
        """One unit."""
        return service.get_unit(db(), actor=current_actor(), unit_id=unit_id)

    @blp.arguments(UnitPatch)
    @blp.response(200, UnitOut)
    def patch(self, changes, unit_id):
        """Edit the unit's name and contact details (its admin)."""
        return service.update_unit(db(), actor=current_actor(), unit_id=unit_id, changes=changes)


@blp.route("/<int:unit_id>/approve")
class UnitApprove(MethodView):
    @blp.response(200, UnitOut)
    def post(self, unit_id):
        """Approve an application (the subdistrict admin)."""
        return service.approve_unit(db(), actor=current_actor(), unit_id=unit_id)


@blp.route("/<int:unit_id>/reject")
class UnitReject(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, UnitOut)
    def post(self, data, unit_id):
        """Reject an application with a reason (the subdistrict admin)."""
        return service.reject_unit(db(), actor=current_actor(), unit_id=unit_id, **data)


@blp.route("/<int:unit_id>/suspend")
class UnitSuspend(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, UnitOut)
    def post(self, data, unit_id):
        """Suspend an approved unit with a reason (the subdistrict admin)."""
        return service.suspend_unit(db(), actor=current_actor(), unit_id=unit_id, **data)


@blp.route("/<int:unit_id>/reinstate")
class UnitReinstate(MethodView):
    @blp.response(200, UnitOut)
    def post(self, unit_id):
        """Lift a suspension (the subdistrict admin)."""
        return service.reinstate_unit(db(), actor=current_actor(), unit_id=unit_id)


@blp.route("/<int:unit_id>/pairings")
class Pairings(MethodView):
    @blp.response(200, PairingOut(many=True))
    def get(self, unit_id):
        """The unit's co-building agreements."""
        actor = current_actor()
        service.get_unit(db(), actor=actor, unit_id=unit_id)
        return service.list_pairings(db(), actor=actor, unit_id=unit_id)

    @blp.arguments(PairingIn)
    @blp.response(201, PairingOut)
    def post(self, data, unit_id):
        """Record an agreement with a community or grid (its secretary or the subdistrict admin)."""
        return service.create_pairing(db(), actor=current_actor(), unit_id=unit_id, **data)


@blp.route("/pairings/<int:pairing_id>/end")
class PairingEnd(MethodView):
    @blp.arguments(PairingEndIn)
    @blp.response(200, PairingOut)
    def post(self, data, pairing_id):
        """End an agreement on a date, with a reason."""
        return service.end_pairing(db(), actor=current_actor(), pairing_id=pairing_id, **data)
