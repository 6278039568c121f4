"""What every API view shares: the session, the acting user, the error shape, paging schemas."""

from __future__ import annotations

import secrets
from http import HTTPStatus

from flask import current_app, g, has_request_context, request, session
from flask_smorest import Api
from marshmallow import Schema, fields, validate
from werkzeug.exceptions import HTTPException

from web.domain.actor import Actor
from web.errors import AuthenticationError, LinliError, PermissionDeniedError
from web.services.auth import actor_for_token, load_actor

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_HEADER = "X-CSRF-Token"


def db():
    """The request's database session (opened on first use, closed at teardown)."""
    if "db" not in g:
        linli = current_app.extensions["linli"]
        read_only = request.method in ("GET", "HEAD", "OPTIONS") and linli.read_session_factory
        g.db = (linli.read_session_factory if read_only else linli.session_factory)()
    return g.db


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def current_actor() -> Actor:
    """The signed-in actor: a bearer token, or the session cookie (with CSRF on writes)."""
    if "actor" in g:
        return g.actor
    token = bearer_token()
    if token:
        g.actor = actor_for_token(db(), token)
        return g.actor
    user_id = session.get("user_id")
    if user_id is None:
        raise AuthenticationError("sign in first")
    if request.method in UNSAFE and not _csrf_ok():
        raise PermissionDeniedError("missing or wrong CSRF token", reason="csrf")
    g.actor = load_actor(db(), user_id)
    return g.actor


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _csrf_ok() -> bool:
    sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token")
    return bool(sent) and secrets.compare_digest(sent, session.get("csrf", ""))


def error_body(status: int, code: str, message: str, fields_: dict | None = None,
               **extra) -> dict:
    """The one error shape: {"error": {"status", "code", "message", "fields"?, ...}}."""
    body = {"status": status, "code": code, "message": message}
    if fields_:
        body["fields"] = fields_
    body.update({k: v for k, v in extra.items() if v is not None})
    if has_request_context() and g.get("request_id"):
        body["request_id"] = g.request_id  # the id in the logs and the X-Request-ID header
    return {"error": body}


def handle_linli_error(exc: LinliError):
    # a parameter named like a field of the shape (an object's `status`, say) keeps its value
    # under `current_<name>` instead of replacing the error's own field
    extra = {(f"current_{k}" if k in ("status", "code", "message", "fields") else k): v
             for k, v in exc.params.items() if k != "detail"}
    return (error_body(exc.status, exc.code, exc.message, exc.fields, **extra), exc.status,
            getattr(exc, "headers", None) or {})


def handle_data_error(_exc):
    """A value the database cannot hold (an id beyond INTEGER, say) is bad input, not a crash."""
    db().rollback()
    return error_body(422, "validation_error", "a value is out of range"), 422


def handle_unexpected(exc: Exception):
    current_app.logger.exception("unhandled error")
    return error_body(500, "internal_error", "an unexpected error happened; nothing was changed"), 500


def _flatten(messages, prefix: str = "") -> dict:
    """webargs' {"json": {"a": {"0": {"b": [...]}}}} as {"a.0.b": [...]}."""
    flat = {}
    for key, value in messages.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value if isinstance(value, list) else [value]
    return flat


class LinliApi(Api):
    """flask-smorest's Api, answering every HTTP error in the one error shape."""

    def handle_http_exception(self, error: HTTPException):
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        messages = data.get("messages")
        if status == 422 and messages:
            flat = {}
            for location, errs in messages.items():
                flat.update(_flatten(errs) if location in ("json", "form") else
                            _flatten(errs, location))
            names = ", ".join(sorted(flat))
            return error_body(422, "validation_error", f"invalid fields: {names}", flat), 422
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        code = phrase.lower().replace(" ", "_").replace("-", "_")
        return error_body(status, code, error.description or phrase), status


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class DateRangeArgs(PageArgs):
    created_from = fields.AwareDateTime(default_timezone=None)
    created_to = fields.AwareDateTime(default_timezone=None)
    q = fields.String(validate=validate.Length(max=100))


class PageSchema(Schema):
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
    pages = fields.Integer()


def page_of(item_schema: type[Schema], name: str) -> type[Schema]:
    """A paged envelope schema {items: [...], total, page, per_page, pages} for `item_schema`."""
    return type(name, (PageSchema,), {"items": fields.List(fields.Nested(item_schema))})


def page_out(page) -> dict:
    """A service Page as the envelope dict."""
    pages = (page.total + page.per_page - 1) // page.per_page
    return {"items": page.items, "total": page.total, "page": page.page, "per_page": page.per_page,
            "pages": pages}


class ReasonIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class OptionalReasonIn(Schema):
    reason = fields.String(validate=validate.Length(max=500))


def split_args(args: dict) -> tuple[dict, int, int]:
    """(filters, page, per_page) from query args."""
    args = dict(args)
    return args, args.pop("page", 1), args.pop("per_page", 20)
