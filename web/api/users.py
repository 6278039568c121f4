"""Users and roles: people within your scope."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from web.api.auth import GrantOut, UserOut
from web.api.common import PageArgs, current_actor, db, page_of, page_out, split_args
from web.models.people import Role
from web.services import users as service

PREFIX = "/users"
blp = Blueprint("users", __name__, description="Users and their scoped roles")


class RoleIn(Schema):
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in Role]))
    subdistrict_id = fields.Integer(allow_none=True)
    community_id = fields.Integer(allow_none=True)
    grid_id = fields.Integer(allow_none=True)
    unit_id = fields.Integer(allow_none=True)


class UserIn(Schema):
    username = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.\-]{3,64}$"))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=8, max=200))
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    phone = fields.String(allow_none=True, validate=validate.Length(max=32))
    locale = fields.String(load_default="zh_CN", validate=validate.OneOf(["zh_CN", "en"]))
    roles = fields.List(fields.Nested(RoleIn), required=True, validate=validate.Length(min=1))


class UserArgs(PageArgs):
    q = fields.String()
    role = fields.String(validate=validate.OneOf([r.value for r in Role]))


@blp.route("")
class Users(MethodView):
    @blp.arguments(UserArgs, location="query")
    @blp.response(200, page_of(UserOut, "UserPage"))
    def get(self, args):
        """Users within your scope."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_users(db(), actor=current_actor(), page=page,
                                           per_page=per_page, **filters))

    @blp.arguments(UserIn)
    @blp.response(201, UserOut)
    def post(self, data):
        """Create a user whose roles lie within your scope."""
        return service.create_user(db(), actor=current_actor(), **data)


@blp.route("/<int:user_id>")
class UserView(MethodView):
    @blp.response(200, UserOut)
    def get(self, user_id):
        """One user within your scope."""
        return service.get_user(db(), actor=current_actor(), user_id=user_id)


@blp.route("/<int:user_id>/roles")
class UserRoles(MethodView):
    @blp.arguments(RoleIn)
    @blp.response(201, GrantOut)
    def post(self, spec, user_id):
        """Give the user one more role within your scope."""
        return service.grant_role(db(), actor=current_actor(), user_id=user_id, spec=spec)


@blp.route("/<int:user_id>/roles/<int:grant_id>")
class UserRole(MethodView):
    @blp.response(204)
    def delete(self, user_id, grant_id):
        """Take a role away."""
        service.revoke_role(db(), actor=current_actor(), user_id=user_id, grant_id=grant_id)
