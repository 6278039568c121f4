"""Signing in: bearer tokens for API clients, a session cookie (with CSRF) for browsers."""

from __future__ import annotations

from flask import current_app, session
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from web.api.common import bearer_token, csrf_token, current_actor, db
from web.models import User
from web.services import auth as auth_service

PREFIX = "/auth"
blp = Blueprint("auth", __name__, description="Sign in and out; who am I")


class CredentialsIn(Schema):
    username = fields.String(required=True)
    password = fields.String(required=True, load_only=True)


class GrantOut(Schema):
    id = fields.Integer()
    role = fields.String()
    subdistrict_id = fields.Integer(allow_none=True)
    community_id = fields.Integer(allow_none=True)
    grid_id = fields.Integer(allow_none=True)
    unit_id = fields.Integer(allow_none=True)


class UserOut(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    phone = fields.String(allow_none=True)
    locale = fields.String()
    is_active = fields.Boolean()
    grants = fields.List(fields.Nested(GrantOut), data_key="roles")


class TokenOut(Schema):
    token = fields.String()
    token_type = fields.String()
    expires_at = fields.DateTime()
    user = fields.Nested(UserOut)


class SessionOut(Schema):
    csrf_token = fields.String()
    user = fields.Nested(UserOut)


@blp.route("/token")
class Token(MethodView):
    @blp.arguments(CredentialsIn)
    @blp.response(201, TokenOut)
    @blp.doc(security=[])
    def post(self, creds):
        """Exchange a username and password for a bearer token."""
        user = auth_service.authenticate(db(), creds["username"], creds["password"])
        ttl = current_app.extensions["linli"].settings.token_ttl_hours
        token, row = auth_service.issue_token(db(), user, ttl_hours=ttl)
        return {"token": token, "token_type": "Bearer", "expires_at": row.expires_at, "user": user}

    @blp.response(204)
    def delete(self):
        """Revoke the bearer token this request carries."""
        current_actor()
        auth_service.revoke_token(db(), bearer_token() or "")


@blp.route("/session")
class BrowserSession(MethodView):
    @blp.arguments(CredentialsIn)
    @blp.response(200, SessionOut)
    @blp.doc(security=[])
    def post(self, creds):
        """Sign in a browser: sets an HttpOnly, SameSite=Lax session cookie; writes need X-CSRF-Token."""
        user = auth_service.authenticate(db(), creds["username"], creds["password"])
        session.clear()
        session["user_id"] = user.id
        return {"csrf_token": csrf_token(), "user": user}

    @blp.response(204)
    def delete(self):
        """Sign the browser out."""
        current_actor()
        session.clear()


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, UserOut)
    def get(self):
        """The signed-in user and their roles."""
        actor = current_actor()
        return db().get(User, actor.user_id)
