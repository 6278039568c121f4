"""The resident's pages, phone first: micro-wishes and what became of them, activity sessions and
sign-ups, confirming and rating the service received, and the volunteer record with a printable
certificate of hours (志愿服务证明).

Every page acts with the person's resident grant only, so a resident who is also a grid worker
or a secretary sees here only what is theirs as a resident.
"""

from __future__ import annotations

from collections import defaultdict

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from scoring.hours import minutes_to_hours
from web.api.common import db
from web.api.demands import ConfirmIn
from web.api.wishes import WishIn
from web.domain.actor import Actor
from web.errors import LinliError, NotFoundError
from web.models import Community, DemandItem, Unit, User
from web.models.people import Role
from web.pages.export import EXPORT_LIMIT, export_or_none
from web.pages.ui import FormInvalid, confirm, list_args, load_form, menu, service_errors
from web.pages.views import (
    STATUS_NAMES,
    bp,
    category_names,
    category_options,
    community_of,
    error_text,
    signed_in,
)
from web.services import activities, demands, reports, volunteers, wishes
from web.services.base import Page, local_date, utcnow

menu("resident", "pages.my_wishes", _l("My wishes"))
menu("resident", "pages.my_activities", _l("Activities"))
menu("resident", "pages.my_services", _l("Services for me"))
menu("resident", "pages.my_volunteering", _l("My volunteer record"))

SIGNUP_STATUS = {
    "signed_up": _l("signed up"), "waitlisted": _l("on the waiting list"),
    "withdrawn": _l("withdrawn"), "checked_in": _l("checked in"),
    "checked_out": _l("checked out, hours to be confirmed"),
    "confirmed": _l("hours confirmed"), "no_show": _l("did not come"),
}
WITHDRAWABLE = ("signed_up", "waitlisted")
RATINGS = {1: _l("very poor"), 2: _l("poor"), 3: _l("fair"), 4: _l("good"), 5: _l("very good")}


# ---- shared helpers (the grid worker's pages use them too) -----------------------------------

def acting_as(actor: Actor, role: Role) -> Actor:
    """The same person with only their grants of `role` (403 without one)."""
    grants = tuple(g for g in actor.grants if g.role == role)
    if not grants:
        abort(403)
    return Actor(user_id=actor.user_id, grants=grants)


def demand_events(actor: Actor, demand_id: int) -> list:
    """The demand's own steps (not the units' claims) for a timeline; empty if not readable."""
    try:
        events = demands.history(db(), actor=actor, demand_id=demand_id)
    except LinliError:
        return []
    return [e for e in events
            if e.entity_type == "demand_items" and (e.to_status or e.action == "created")]


def _resident(actor: Actor) -> tuple[Actor, int]:
    me = acting_as(actor, Role.RESIDENT)
    community_id = community_of(me, "resident")
    if community_id is None:
        abort(403)
    return me, community_id


# ---- micro-wishes -----------------------------------------------------------------------------

def _my_wishes(me: Actor, la, page: int, per_page: int) -> Page:
    return wishes.list_wishes(db(), actor=me, filters={
        "mine": True, "status": la.filters.get("status"), "q": la.filters.get("q")},
        page=page, per_page=per_page)


@bp.route("/me/wishes", methods=["GET", "POST"])
@signed_in
def my_wishes(actor: Actor):
    """Submit a micro-wish; my wishes with where each one stands."""
    me, _community = _resident(actor)
    errors, values, status = {}, {}, 200
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            data = load_form(WishIn, {k: values.get(k, "") for k in
                                      ("title", "description", "category_id")})
            wish = wishes.submit_wish(db(), actor=me, **data)
            flash(_("Your wish is sent. Your grid worker will look at it soon."), "success")
            return redirect(url_for("pages.my_wish", wish_id=wish.id))
        except FormInvalid as exc:
            errors, status = exc.errors, 422
        except LinliError as exc:
            errors, status = service_errors(exc), 422
            flash(error_text(exc), "danger")
    la = list_args("status")
    names = category_names()
    exported = export_or_none(_wish_columns(), lambda: [
        _wish_row(w, names) for w in _my_wishes(me, la, 1, EXPORT_LIMIT).items],
        _("my-wishes"))
    if exported is not None:
        return exported
    return render_template("pages/resident_wishes.html", la=la,
                           page=_my_wishes(me, la, la.page, la.per_page), names=names,
                           options=category_options(), errors=errors, values=values), status


def _wish_columns():
    return [("id", _("No.")), ("title", _("Wish")), ("category", _("Category")),
            ("status", _("Status")), ("created_at", _("Sent")), ("decided_at", _("Decided")),
            ("reason", _("Reason"))]


def _wish_row(wish, names) -> dict:
    return {"id": wish.id, "title": wish.title, "category": names.get(wish.category_id, ""),
            "status": str(STATUS_NAMES["wish"].get(wish.status, wish.status)),
            "created_at": wish.created_at, "decided_at": wish.decided_at,
            "reason": wish.decision_reason}


@bp.get("/me/wishes/<int:wish_id>")
@signed_in
def my_wish(actor: Actor, wish_id: int):
    """One wish and what happened: the decision, and the demand it became with its steps."""
    me, _community = _resident(actor)
    try:
        wish = wishes.get_wish(db(), actor=me, wish_id=wish_id)
    except NotFoundError:
        abort(404)
    if wish.resident_id != me.user_id:
        abort(404)
    demand = events = None
    if wish.demand_id is not None:
        try:
            demand = demands.get_demand(db(), actor=me, demand_id=wish.demand_id)
            events = demand_events(me, demand.id)
        except NotFoundError:
            demand = None
    return render_template("pages/resident_wish.html", wish=wish, demand=demand,
                           events=events or [], names=category_names())


@bp.post("/me/wishes/<int:wish_id>/withdraw")
@signed_in
@confirm(_l("Withdraw this wish? It cannot be sent again; you would make a new one."))
def withdraw_my_wish(actor: Actor, wish_id: int):
    me, _community = _resident(actor)
    try:
        wishes.withdraw_wish(db(), actor=me, wish_id=wish_id)
        flash(_("Wish withdrawn."), "success")
    except NotFoundError:
        abort(404)
    except LinliError as exc:
        flash(error_text(exc), "danger")
    return redirect(url_for("pages.my_wish", wish_id=wish_id))


# ---- activities ------------------------------------------------------------------------------

def _my_signups(me: Actor, filters: dict, page: int = 1,
                per_page: int = EXPORT_LIMIT) -> Page:
    """My own sign-ups (newest first) matching `filters`."""
    return activities.list_signups(db(), actor=me, filters={**filters, "user_id": me.user_id},
                                   page=page, per_page=per_page, newest_first=True)


def _sessions_of(me: Actor, signups: list) -> dict:
    """The sessions of `signups`, by id, in one query."""
    ids = list({s.session_id for s in signups})
    return {s.id: s for s in activities.list_sessions(
        db(), actor=me, filters={"ids": ids}, per_page=max(1, len(ids))).items}


def _is_volunteer(me: Actor) -> bool:
    try:
        return bool(volunteers.get_my_profile(db(), actor=me).is_active)
    except NotFoundError:
        return False


@bp.get("/me/activities")
@signed_in
def my_activities(actor: Actor):
    """Coming activity sessions in my community: places left, and sign up in one tap."""
    me, community_id = _resident(actor)
    la = list_args()
    filters = {"community_id": community_id, "status": "scheduled", "starts_from": utcnow(),
               "q": la.filters.get("q")}

    def coming(page: int, per_page: int) -> tuple[Page, dict]:
        """A page of coming sessions and my sign-ups to them (not withdrawn)."""
        found = activities.list_sessions(db(), actor=me, filters=filters, page=page,
                                         per_page=per_page)
        mine = _my_signups(me, {"session_ids": [s.id for s in found.items],
                                "status": ",".join(s for s in SIGNUP_STATUS
                                                   if s != "withdrawn")}).items
        return found, {s.session_id: s for s in mine}

    def rows() -> list[dict]:
        found, mine = coming(1, EXPORT_LIMIT)
        return [{"title": s.title, "place": s.place, "starts_at": s.starts_at,
                 "ends_at": s.ends_at, "headcount": s.headcount,
                 "mine": str(SIGNUP_STATUS[mine[s.id].status]) if s.id in mine else ""}
                for s in found.items]

    exported = export_or_none(
        [("title", _("Activity")), ("place", _("Place")), ("starts_at", _("Starts")),
         ("ends_at", _("Ends")), ("headcount", _("Places")), ("mine", _("My sign-up"))],
        rows, _("activities"))
    if exported is not None:
        return exported
    page, mine = coming(la.page, la.per_page)
    return render_template("pages/resident_activities.html", la=la, page=page, mine=mine,
                           taken=activities.places_taken(db(), [s.id for s in page.items]),
                           signup_status=SIGNUP_STATUS, volunteer=_is_volunteer(me))


@bp.post("/me/activities/<int:session_id>/sign-up")
@signed_in
def sign_up(actor: Actor, session_id: int):
    """Sign up for a session of my community (the waiting list when it is full)."""
    me, community_id = _resident(actor)
    try:
        act = activities.get_session(db(), actor=me, session_id=session_id)
    except NotFoundError:
        abort(404)
    if act.community_id != community_id:
        abort(404)
    if not _is_volunteer(me):
        flash(_("Only registered volunteers sign up. Ask your community to register you."),
              "warning")
        return redirect(url_for("pages.my_activities"))
    try:
        signup = activities.sign_up(db(), actor=me, session_id=session_id)[0]
    except LinliError as exc:
        flash(_("You are already signed up for this activity.")
              if exc.params.get("signup_id") else error_text(exc), "danger")
        return redirect(url_for("pages.my_activities"))
    if signup.status == "waitlisted":
        flash(_("The activity is full: you are on the waiting list and move up when someone "
                "withdraws."), "warning")
    else:
        flash(_("You are signed up for %(title)s.", title=act.title), "success")
    return redirect(url_for("pages.my_signups"))


@bp.get("/me/activities/mine")
@signed_in
def my_signups(actor: Actor):
    """My sign-ups, newest first, with a withdraw button while that is still possible."""
    me, _community = _resident(actor)
    la = list_args("status")
    filters = {k: v for k, v in la.filters.items() if k in ("q", "status")}
    if filters.get("status") not in (None, *SIGNUP_STATUS):
        filters.pop("status")

    def rows() -> list[dict]:
        found = _my_signups(me, filters).items
        sessions = _sessions_of(me, found)
        return [{"title": sessions[s.session_id].title, "place": sessions[s.session_id].place,
                 "starts_at": sessions[s.session_id].starts_at,
                 "status": str(SIGNUP_STATUS.get(s.status, s.status)),
                 "signed_up_at": s.signed_up_at} for s in found]

    exported = export_or_none(
        [("title", _("Activity")), ("place", _("Place")), ("starts_at", _("Starts")),
         ("status", _("Status")), ("signed_up_at", _("Signed up"))], rows, _("my-sign-ups"))
    if exported is not None:
        return exported
    page = _my_signups(me, filters, la.page, la.per_page)
    return render_template("pages/resident_signups.html", la=la, page=page,
                           sessions=_sessions_of(me, page.items), signup_status=SIGNUP_STATUS,
                           withdrawable=WITHDRAWABLE, now=utcnow())


@bp.post("/me/signups/<int:signup_id>/withdraw")
@signed_in
@confirm(_l("Withdraw your sign-up? Your place goes to the next person waiting."))
def withdraw_signup(actor: Actor, signup_id: int):
    me, _community = _resident(actor)
    try:
        activities.withdraw_signup(db(), actor=me, signup_id=signup_id)
        flash(_("Sign-up withdrawn."), "success")
    except NotFoundError:
        abort(404)
    except LinliError as exc:
        flash(error_text(exc), "danger")
    return redirect(url_for("pages.my_signups"))


# ---- services received: confirm and rate ----------------------------------------------------

@bp.get("/me/services")
@signed_in
def my_services(actor: Actor):
    """Work done for me; what is verified waits for my confirmation and rating."""
    me, _community = _resident(actor)
    la = list_args("status")
    filters = {**la.filters}
    found = demands.list_demands(db(), actor=me, filters=filters, page=la.page,
                                 per_page=la.per_page, sort="-created_at")
    waiting = demands.list_demands(db(), actor=me, filters={"status": "verified"},
                                   per_page=10)
    names = category_names()

    def all_rows():
        every = demands.list_demands(db(), actor=me, filters=filters, per_page=EXPORT_LIMIT)
        return [_service_row(d, names) for d in every.items]

    exported = export_or_none(
        [("id", _("No.")), ("title", _("Service")), ("category", _("Category")),
         ("status", _("Status")), ("created_at", _("Recorded")), ("rating", _("My rating")),
         ("comment", _("My comment"))], all_rows, _("services-for-me"))
    if exported is not None:
        return exported
    return render_template("pages/resident_services.html", la=la, page=found, waiting=waiting,
                           names=names, ratings=RATINGS)


def _service_row(demand, names) -> dict:
    return {"id": demand.id, "title": demand.title, "category": names.get(demand.category_id),
            "status": str(STATUS_NAMES["demand"].get(demand.status, demand.status)),
            "created_at": demand.created_at, "rating": demand.rating,
            "comment": demand.rating_comment}


def _mine_to_rate(me: Actor, demand_id: int) -> DemandItem:
    try:
        demand = demands.get_demand(db(), actor=me, demand_id=demand_id)
    except NotFoundError:
        abort(404)
    if demand.beneficiary_user_id != me.user_id:
        abort(404)
    return demand


def confirm_with_rating(me: Actor, demand, reload, done: str, endpoint: str):
    """The POST of 'the work is done, and this is my rating' (the beneficiary, or their grid
    worker for them): a redirect when recorded, else (demand, errors, values, status) to show
    the form again. A GET gives the empty form."""
    if request.method != "POST":
        return demand, {}, {}, 200
    values = request.form.to_dict()
    try:
        data = load_form(ConfirmIn, {k: values.get(k, "") for k in ("rating", "comment")})
        rated = demands.confirm_demand(db(), actor=me, demand_id=demand.id, **data)
        flash(done if rated.status == "closed" else _(
            "The rating is recorded. The work was not satisfactory, so the item is open "
            "again for rework."), "success")
        return redirect(url_for(endpoint, demand_id=demand.id))
    except FormInvalid as exc:
        return demand, exc.errors, values, 422
    except LinliError as exc:
        flash(error_text(exc), "danger")
        return reload(), service_errors(exc), values, exc.status


@bp.route("/me/services/<int:demand_id>", methods=["GET", "POST"])
@signed_in
@confirm(_l("Confirm the work is done and send your rating? This closes the item."))
def rate_service(actor: Actor, demand_id: int):
    """One service for me: its steps, and (once verified) confirm it with a rating 1–5."""
    me, _community = _resident(actor)
    demand = _mine_to_rate(me, demand_id)
    outcome = confirm_with_rating(me, demand, lambda: _mine_to_rate(me, demand_id),
                                  _("Thank you. Your rating is recorded and the item is closed."),
                                  "pages.rate_service")
    if not isinstance(outcome, tuple):
        return outcome
    demand, errors, values, status = outcome
    return render_template("pages/resident_service.html", demand=demand, errors=errors,
                           values=values, ratings=RATINGS, names=category_names(),
                           events=demand_events(me, demand.id)), status


# ---- the volunteer record and its certificate ------------------------------------------------

def _records(me: Actor) -> list:
    return reports.list_service_records(db(), actor=me, filters={"user_id": me.user_id},
                                        per_page=EXPORT_LIMIT).items


def _what(records: list, me: Actor) -> dict[str, str]:
    """What each record was for: the activity's or the demand's title, and the unit if any."""
    mine = _my_signups(me, {}).items
    signups = {s.id: s.session_id for s in mine}
    sessions = {sid: act.title for sid, act in _sessions_of(me, mine).items()}
    demand_ids = {r.demand_id for r in records if r.demand_id and not r.signup_id}
    titles = dict(db().query(DemandItem.id, DemandItem.title).filter(
        DemandItem.id.in_(demand_ids or [0])).all())
    units = dict(db().query(Unit.id, Unit.name).filter(
        Unit.id.in_({r.unit_id for r in records if r.unit_id} or [0])).all())
    out = {}
    for r in records:
        if r.signup_id and r.signup_id in signups:
            out[r.id] = sessions[signups[r.signup_id]]
        else:
            out[r.id] = titles.get(r.demand_id, "")
            if r.unit_id in units:
                out[r.id] += f" ({units[r.unit_id]})"
    return out


def hours_by(records: list, key) -> list[tuple]:
    """(key, times, hours) for each value of `key(record)`, most hours first."""
    minutes, times = defaultdict(int), defaultdict(int)
    for r in records:
        minutes[key(r)] += r.minutes
        times[key(r)] += 1
    return sorted(((k, times[k], minutes_to_hours(m)) for k, m in minutes.items()),
                  key=lambda row: (-row[2], str(row[0])))


@bp.get("/me/volunteering")
@signed_in
def my_volunteering(actor: Actor):
    """My verified service: hours by category and by year (every record), and the records a
    page at a time, by category and year, words in what it was for, the unit or the kind."""
    me, _community = _resident(actor)
    la = list_args("category_id", "year", ints=("category_id", "year"))
    if not 1 <= la.filters.get("year", 2000) < 9999:
        la.filters.pop("year")
    names = category_names()
    mine = {"user_id": me.user_id}
    filters = {**mine, **la.filters}

    def fetch(page: int, per_page: int) -> Page:
        return reports.list_service_records(db(), actor=me, filters=filters, page=page,
                                            per_page=per_page)

    def rows() -> list[dict]:
        records = fetch(1, EXPORT_LIMIT).items
        what = _what(records, me)
        return [{"served_on": r.served_on, "what": what.get(r.id),
                 "category": names.get(r.category_id),
                 "hours": float(minutes_to_hours(r.minutes)), "verified_at": r.verified_at}
                for r in records]

    exported = export_or_none(
        [("served_on", _("Date")), ("what", _("Service")), ("category", _("Category")),
         ("hours", _("Hours")), ("verified_at", _("Verified"))], rows, _("volunteer-record"))
    if exported is not None:
        return exported
    by_category = _hours(_minutes(me, mine, "category"))
    years = _minutes(me, mine, "year")
    by_year = _hours(years)
    page = fetch(la.page, la.per_page)
    return render_template(
        "pages/resident_volunteering.html", la=la, page=page, names=names,
        what=_what(page.items, me), by_category=by_category, by_year=by_year,
        total=minutes_to_hours(sum(m for _k, _n, m in years)),
        year_options=[(y, y) for y, _n, _h in sorted(by_year, reverse=True)],
        category_choices=sorted(((c, names.get(c, "")) for c, _n, _h in by_category),
                                key=lambda c: c[1]),
        hours=minutes_to_hours)


def _minutes(me: Actor, filters: dict, by: str) -> list[tuple[int, int, int]]:
    return reports.service_minutes(db(), actor=me, filters=filters, by=by)


def _hours(minutes: list[tuple[int, int, int]]) -> list[tuple[int, int, object]]:
    """(category or year, times, hours), most hours first."""
    return [(k, n, minutes_to_hours(m)) for k, n, m in minutes]


@bp.get("/me/volunteering/certificate")
@signed_in
def volunteer_certificate(actor: Actor):
    """A printable certificate of my verified hours by category (志愿服务证明); `year` limits
    it to one calendar year."""
    me, community_id = _resident(actor)
    year = request.args.get("year", type=int)
    records = [r for r in _records(me) if year is None or r.served_on.year == year]
    communities = {r.community_id for r in records} or {community_id}
    return render_template(
        "pages/resident_certificate.html", user=db().get(User, me.user_id), year=year,
        records=records, names=category_names(),
        by_category=hours_by(records, lambda r: r.category_id),
        total=minutes_to_hours(sum(r.minutes for r in records)),
        first=min((r.served_on for r in records), default=None),
        last=max((r.served_on for r in records), default=None),
        communities=[c.name for c in db().query(Community).filter(
            Community.id.in_(communities)).order_by(Community.code)],
        today=local_date(utcnow()))
