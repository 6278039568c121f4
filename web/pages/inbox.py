"""The inbox, for every role: what needs my action and what happened to my items, newest first,
with read marks; and my notification settings (e-mail, text messages through the gateway,
quiet hours, the daily digest). The unread count shows in the menu bar on every page."""

from __future__ import annotations

import re

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from web.api.common import db
from web.api.notifications import NotificationSettingsPatch
from web.domain.actor import Actor
from web.errors import LinliError, NotFoundError
from web.pages.ui import FormInvalid, list_args, load_form, local_target, service_errors
from web.pages.views import bp, error_text, signed_in
from web.services import notifications
from web.services.base import utcnow

BOOLEANS = ("email_enabled", "webhook_enabled", "daily_digest")
BLANK_MEANS_NONE = ("email", "webhook_address", "quiet_start_minute", "quiet_end_minute")
TIMES = ("quiet_start_minute", "quiet_end_minute")

KIND_NAMES = {  # each kind of notification in a few words, for the inbox's filter
    "claim_pending": _l("a claim to approve"), "claim_approved": _l("claim approved"),
    "claim_rejected": _l("claim rejected"), "dispatch_offered": _l("a dispatch to answer"),
    "dispatch_accepted": _l("dispatch accepted"), "dispatch_declined": _l("dispatch declined"),
    "dispatch_expired": _l("dispatch not answered in time"),
    "report_submitted": _l("a report to verify"), "report_verified": _l("report verified"),
    "report_returned": _l("report returned"), "confirm_requested": _l("work to confirm"),
    "auto_confirmed": _l("confirmed automatically"),
    "rated_unsatisfactory": _l("rated unsatisfactory"), "escalated": _l("escalated"),
    "due_soon": _l("due soon"), "points_credited": _l("points credited"),
    "points_expiring": _l("points expiring"), "points_expired": _l("points expired"),
    "wish_accepted": _l("wish accepted"), "wish_declined": _l("wish declined"),
}


@bp.app_context_processor
def _inbox_globals() -> dict:
    return {"inbox_unread": _unread}


def _unread() -> int:
    """The signed-in user's unread count, for the menu bar (0 when signed out)."""
    user = g.get("page_user")
    if user is None:
        return 0
    return notifications.unread_count(db(), actor=Actor(user_id=user.id))


@bp.get("/inbox")
@signed_in
def inbox(actor: Actor):
    """My notifications, newest first, a page at a time; `?unread=1` for the unread ones, by
    kind, and words in what they name (the item's title, the unit, the reason)."""
    la = list_args("unread", "kind")
    if la.filters.get("kind") not in KIND_NAMES:
        la.filters.pop("kind", None)
    unread_only = la.filters.get("unread") == "1"
    page = notifications.list_notifications(
        db(), actor=actor, unread_only=unread_only, page=la.page, per_page=la.per_page,
        filters={"kind": la.filters.get("kind"), "q": la.filters.get("q")})
    locale = str(get_locale())
    items = [notifications.present(note, locale) for note in page.items]
    return render_template("pages/inbox.html", la=la, page=page, items=items,
                           unread_only=unread_only, kinds=list(KIND_NAMES.items()),
                           unread=notifications.unread_count(db(), actor=actor))


def _read(actor: Actor, notification_id: int):
    try:
        return notifications.mark_read(db(), actor=actor, notification_id=notification_id,
                                       now=utcnow())
    except NotFoundError:
        abort(404)


@bp.post("/inbox/<int:notification_id>/read")
@signed_in
def inbox_read(actor: Actor, notification_id: int):
    """Mark one notification read and come back to the list as it was."""
    _read(actor, notification_id)
    return redirect(local_target(request.form.get("next"), url_for("pages.inbox")))


@bp.post("/inbox/<int:notification_id>/open")
@signed_in
def inbox_open(actor: Actor, notification_id: int):
    """Mark one notification read and go to the page it is about."""
    note = _read(actor, notification_id)
    return redirect(local_target(note.link, url_for("pages.inbox")))


@bp.post("/inbox/read-all")
@signed_in
def inbox_read_all(actor: Actor):
    """Mark every notification read."""
    marked = notifications.mark_all_read(db(), actor=actor, now=utcnow())
    flash(_("%(count)s notifications marked read.", count=marked), "success")
    return redirect(url_for("pages.inbox"))


# ---- settings ---------------------------------------------------------------------------------

@bp.route("/me/notifications", methods=["GET", "POST"])
@signed_in
def notification_settings(actor: Actor):
    """My channels, quiet hours and digest choice, checked by the API's own schema."""
    errors, status = {}, 200
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            changes = _changes(values)
            notifications.update_settings(db(), actor=actor, changes=changes, now=utcnow())
            flash(_("Your notification settings are saved."), "success")
            return redirect(url_for("pages.notification_settings"))
        except FormInvalid as exc:
            errors, status = exc.errors, 422
        except LinliError as exc:
            errors, status = service_errors(exc), 422
            flash(error_text(exc), "danger")
    else:
        values = _values(notifications.get_settings(db(), actor=actor))
    return render_template("pages/inbox_settings.html", values=values, errors=errors), status


def _changes(values: dict) -> dict:
    """The form as a change for `update_settings`: an unticked box is off, a blank field is
    nothing, times (hh:mm in Shanghai) become minutes of the day."""
    data = {name: values.get(name, "") for name in BLANK_MEANS_NONE}
    data.update({name: "true" if values.get(name) else "false" for name in BOOLEANS})
    bad = {}
    for name in TIMES:
        if data[name].strip():
            data[name] = _minute(data[name])
            if data[name] is None:
                bad[name] = [_("Please enter a time such as 22:00.")]
    if bad:
        raise FormInvalid(bad)
    changes = {name: None for name in BLANK_MEANS_NONE}
    changes.update(load_form(NotificationSettingsPatch, data))
    return changes


def _minute(text: str) -> int | None:
    """'22:30' as 1350; None when it is not a time of day."""
    found = re.fullmatch(r"(\d{1,2}):(\d{2})(:\d{2})?", text.strip())
    if not found or int(found[1]) > 23 or int(found[2]) > 59:
        return None
    return int(found[1]) * 60 + int(found[2])


def _values(settings) -> dict:
    """The saved settings as the form shows them."""
    values = {name: getattr(settings, name) or "" for name in ("email", "webhook_address")}
    values.update({name: "1" if getattr(settings, name) else "" for name in BOOLEANS})
    for name in TIMES:
        minute = getattr(settings, name)
        values[name] = "" if minute is None else f"{minute // 60:02d}:{minute % 60:02d}"
    return values
