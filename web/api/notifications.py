"""The inbox and the outgoing channels: your notifications (each with its text in the request's
language, times in Asia/Shanghai), unread counts, read marks, and your channel settings."""

from __future__ import annotations

from flask import request, session
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as SchemaError

from web.api.common import PageArgs, current_actor, db, page_of, page_out
from web.i18n import LANGUAGES
from web.models import User
from web.services import notifications as service
from web.services.base import utcnow

PREFIX = ""
blp = Blueprint("notifications", __name__, description="Your inbox and notification channels")

MINUTE = validate.Range(min=0, max=service.LAST_MINUTE)


def _known_kinds(text: str) -> None:
    unknown = [k for k in text.split(",") if k.strip() not in service.KINDS]
    if unknown:
        raise SchemaError(f"Must be one of: {', '.join(service.KINDS)}.")


class NotificationArgs(PageArgs):
    unread = fields.Boolean(load_default=False, metadata={"description": "only unread ones"})
    lang = fields.String(validate=validate.OneOf(list(LANGUAGES)))
    kind = fields.String(validate=_known_kinds, metadata={
        "description": "one kind, or several separated by commas"})
    q = fields.String(validate=validate.Length(max=100), metadata={
        "description": "words in what the message names (item title, unit, reason) or in the "
                       "title of the item it is about"})


class NotificationOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    text = fields.String(metadata={"description": "in the request's language"})
    params = fields.Dict()
    link = fields.String(allow_none=True)
    demand_id = fields.Integer(allow_none=True)
    needs_action = fields.Boolean()
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class NotificationLangArgs(Schema):
    lang = fields.String(validate=validate.OneOf(list(LANGUAGES)))


class UnreadCountOut(Schema):
    unread = fields.Integer()


class MarkedReadOut(Schema):
    marked = fields.Integer()


class NotificationSettingsPatch(Schema):
    email = fields.String(allow_none=True, validate=validate.Length(max=254))
    email_enabled = fields.Boolean()
    webhook_address = fields.String(allow_none=True, validate=validate.Length(max=200),
                                    metadata={"description": "a phone number or an OpenID "
                                                             "for the SMS/WeChat gateway"})
    webhook_enabled = fields.Boolean()
    quiet_start_minute = fields.Integer(strict=True, allow_none=True, validate=MINUTE,
                                        metadata={"description": "minutes after midnight, "
                                                                 "Asia/Shanghai"})
    quiet_end_minute = fields.Integer(strict=True, allow_none=True, validate=MINUTE)
    daily_digest = fields.Boolean()


class NotificationSettingsOut(NotificationSettingsPatch):
    user_id = fields.Integer()
    updated_at = fields.DateTime(allow_none=True)


def reader_locale(args: dict) -> str:
    """The language of the answer's texts: ?lang=, then the session's, then the user's."""
    chosen = args.get("lang") or request.args.get("lang") or session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    user_id = current_actor().user_id
    user = db().get(User, user_id) if user_id is not None else None
    return user.locale if user is not None else "zh_CN"


@blp.route("/notifications")
class Notifications(MethodView):
    @blp.arguments(NotificationArgs, location="query")
    @blp.response(200, page_of(NotificationOut, "NotificationPage"))
    def get(self, args):
        """Your notifications, newest first (`unread=true` for the unread ones; by `kind`
        and `q`)."""
        actor, locale = current_actor(), reader_locale(args)
        filters = {"q": args.get("q"),
                   "kind": [k.strip() for k in args["kind"].split(",")] if args.get("kind")
                   else None}
        page = service.list_notifications(db(), actor=actor, unread_only=args["unread"],
                                          filters=filters, page=args["page"],
                                          per_page=args["per_page"])
        page.items = [service.present(note, locale) for note in page.items]
        return page_out(page)


@blp.route("/notifications/unread-count")
class UnreadCount(MethodView):
    @blp.response(200, UnreadCountOut)
    def get(self):
        """How many of your notifications are unread."""
        return {"unread": service.unread_count(db(), actor=current_actor())}


@blp.route("/notifications/<int:notification_id>/read")
class MarkRead(MethodView):
    @blp.arguments(NotificationLangArgs, location="query")
    @blp.response(200, NotificationOut)
    def post(self, args, notification_id):
        """Mark one of your notifications read (someone else's is a 404)."""
        note = service.mark_read(db(), actor=current_actor(), notification_id=notification_id,
                                 now=utcnow())
        return service.present(note, reader_locale(args))


@blp.route("/notifications/read-all")
class MarkAllRead(MethodView):
    @blp.response(200, MarkedReadOut)
    def post(self):
        """Mark all your notifications read."""
        return {"marked": service.mark_all_read(db(), actor=current_actor(), now=utcnow())}


@blp.route("/me/notification-settings")
class Settings(MethodView):
    @blp.response(200, NotificationSettingsOut)
    def get(self):
        """Your channels (e-mail, SMS/WeChat gateway), quiet hours and digest choice."""
        return service.get_settings(db(), actor=current_actor())

    @blp.arguments(NotificationSettingsPatch)
    @blp.response(200, NotificationSettingsOut)
    def patch(self, changes):
        """Change some of your channel settings; the result must hold together."""
        return service.update_settings(db(), actor=current_actor(), changes=changes,
                                       now=utcnow())
