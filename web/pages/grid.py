"""The grid worker's pages: micro-wishes from the grid to triage (accept into a demand, or decline
with a reason), the grid's items by deadline, a demand recorded on a resident's behalf, and one
item's steps (with confirmation for a resident who cannot do it themselves).

Every page acts with the person's grid-worker grants only.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from web.api.common import db
from web.api.demands import DemandIn, DemandPatch
from web.domain.actor import Actor
from web.errors import LinliError, NotFoundError
from web.models.people import Role
from web.pages.demand_pages import SORTS
from web.pages.export import EXPORT_LIMIT, export_or_none
from web.pages.resident import RATINGS, acting_as, confirm_with_rating, demand_events
from web.pages.secretary import OPEN_STATES, _rag
from web.pages.ui import (
    FormInvalid,
    confirm,
    home,
    list_args,
    load_form,
    local_target,
    menu,
    service_errors,
)
from web.pages.views import (
    STATUS_NAMES,
    bp,
    category_names,
    category_options,
    error_text,
    signed_in,
)
from web.services import demands, places, service_levels, wishes
from web.services.base import utcnow
from web.services.demands import URGENCIES

home("grid_worker", "pages.grid_home")
menu("grid_worker", "pages.grid_home", _l("My grid"))
menu("grid_worker", "pages.grid_items", _l("Grid items"))
menu("grid_worker", "pages.grid_wishes", _l("Grid wishes"))
menu("grid_worker", "pages.grid_new_demand", _l("Record a need"))

FOLLOWED = f"draft,{OPEN_STATES},verified"  # not finished: what the grid worker follows up
QUEUE_ROWS = 10  # rows a section of the home shows; each links to its full list
DATETIMES = ("window_start", "window_end", "deadline")
FORM_FIELDS = ("title", "description", "category_id", "grid_id", "quantity_needed", "urgency",
               *DATETIMES, "beneficiary_name", "beneficiary_phone", "beneficiary_address",
               "beneficiaries_count", "required_skills")
RAG_ORDER = {"red": 0, "amber": 1, "green": 2}
TO_FOLLOW = {FOLLOWED: _l("to follow up (not yet closed)")}  # the home's "see all"


def _grid_worker(actor: Actor) -> tuple[Actor, int]:
    """The grid-worker side of the actor and their community."""
    me = acting_as(actor, Role.GRID_WORKER)
    community_id = next((g.community_id for g in me.grants if g.community_id), None)
    if community_id is None:
        abort(403)
    return me, community_id


def _my_grids(me: Actor, community_id: int) -> list[tuple[int, str]]:
    grids = places.list_grids(db(), community_id=community_id, per_page=1000).items
    return [(g.id, g.name) for g in grids if g.id in me.grid_worker_grids]


def _urgencies():
    return [(u, STATUS_NAMES["urgency"][u]) for u in URGENCIES]


def _by_due(items: list, now) -> list[tuple]:
    """Items with their red/amber/green and next due time, the most pressing first (items with
    no due time last)."""
    rows = [(d, _rag(d, now), service_levels.next_due(d)) for d in items]
    return sorted(rows, key=lambda row: (RAG_ORDER[row[1]], row[2] is None, row[2] or now))


@bp.get("/grid")
@signed_in
def grid_home(actor: Actor):
    """Wishes waiting for triage and the grid's unfinished items, red/amber/green by their next
    due time: the first few of each, how many in all, and links to the full lists."""
    me, _community = _grid_worker(actor)
    session = db()
    waiting = wishes.list_wishes(session, actor=me, filters={"status": "submitted"},
                                 per_page=QUEUE_ROWS)
    items = demands.list_demands(session, actor=me, filters={"status": FOLLOWED},
                                 per_page=QUEUE_ROWS, sort="next_due")
    return render_template("pages/grid_home.html", wishes=waiting, items_total=items.total,
                           items=_by_due(items.items, utcnow()), followed=FOLLOWED,
                           names=category_names(), options=category_options(),
                           urgencies=_urgencies())


WISH_COLUMNS = [("id", _l("No.")), ("title", _l("Wish")), ("category", _l("Category")),
                ("status", _l("Status")), ("created_at", _l("Sent")),
                ("reason", _l("Reason")), ("demand_id", _l("Item"))]


@bp.get("/grid/wishes")
@signed_in
def grid_wishes(actor: Actor):
    """Every micro-wish of my grid: by status and kind, words in the wish; each waiting one
    accepted or declined from here."""
    me, _community = _grid_worker(actor)
    la = list_args("status", "category_id", ints=("category_id",))
    filters = dict(la.filters)
    if filters.get("status") not in STATUS_NAMES["wish"]:
        filters.pop("status", None)
    names = category_names()

    def fetch(page: int, per_page: int):
        return wishes.list_wishes(db(), actor=me, filters=filters, page=page,
                                  per_page=per_page)

    exported = export_or_none(WISH_COLUMNS, lambda: [{
        "id": w.id, "title": w.title, "category": names.get(w.category_id, ""),
        "status": str(STATUS_NAMES["wish"].get(w.status, w.status)),
        "created_at": w.created_at, "reason": w.decision_reason, "demand_id": w.demand_id}
        for w in fetch(1, EXPORT_LIMIT).items], _("grid-wishes"))
    if exported is not None:
        return exported
    return render_template("pages/grid_wishes.html", la=la, page=fetch(la.page, la.per_page),
                           names=names, options=category_options(), urgencies=_urgencies(),
                           statuses=list(STATUS_NAMES["wish"].items()))


def _back():
    return redirect(local_target(request.form.get("next"), url_for("pages.grid_home")))


@bp.post("/grid/wishes/<int:wish_id>/accept")
@signed_in
def grid_accept_wish(actor: Actor, wish_id: int):
    """Turn a wish into a draft demand for the secretary to publish."""
    me, _community = _grid_worker(actor)
    try:
        data = load_form(DemandPatch, {k: request.form.get(k, "")
                                       for k in ("category_id", "urgency", "deadline")},
                         datetimes=("deadline",))
        wish, demand = wishes.accept_wish(db(), actor=me, wish_id=wish_id, demand=data)
    except FormInvalid as exc:
        flash(_("Please check what you entered.") + " " + " ".join(
            m for messages in exc.errors.values() for m in messages), "danger")
        return _back()
    except NotFoundError:
        abort(404)
    except LinliError as exc:
        flash(error_text(exc), "danger")
        return _back()
    flash(_("Wish accepted: item %(id)s is recorded for the secretary to publish.",
            id=demand.id), "success")
    return _back()


@bp.post("/grid/wishes/<int:wish_id>/decline")
@signed_in
@confirm(_l("Decline the wish? The resident is told your reason."))
def grid_decline_wish(actor: Actor, wish_id: int):
    me, _community = _grid_worker(actor)
    try:
        wishes.decline_wish(db(), actor=me, wish_id=wish_id, reason=request.form.get("reason"))
        flash(_("Wish declined."), "success")
    except NotFoundError:
        abort(404)
    except LinliError as exc:
        flash(error_text(exc), "danger")
    return _back()


@bp.route("/grid/demands/new", methods=["GET", "POST"])
@signed_in
def grid_new_demand(actor: Actor):
    """Record a need on a resident's behalf (for those without a phone); the secretary
    publishes it."""
    me, community_id = _grid_worker(actor)
    grids = _my_grids(me, community_id)
    errors, values, status = {}, {"quantity_needed": "1", "urgency": "normal"}, 200
    if grids:
        values["grid_id"] = str(grids[0][0])
    if request.method == "POST":
        values = request.form.to_dict()
        form = {k: values.get(k, "") for k in FORM_FIELDS}
        form["community_id"] = str(community_id)
        form["beneficiary_vulnerable"] = "true" if values.get("beneficiary_vulnerable") else ""
        try:
            data = load_form(DemandIn, form, lists=("required_skills",), datetimes=DATETIMES)
            data.pop("community_id"), data.pop("publish")
            demand = demands.create_demand(db(), actor=me, community_id=community_id,
                                           data=data)
            flash(_("Recorded. The secretary publishes it on the demand list."), "success")
            return redirect(url_for("pages.grid_item", demand_id=demand.id))
        except FormInvalid as exc:
            errors, status = exc.errors, 422
        except LinliError as exc:
            errors, status = service_errors(exc), exc.status
            flash(error_text(exc), "danger")
    return render_template("pages/grid_new_demand.html", errors=errors, values=values,
                           grids=grids, options=category_options(),
                           urgencies=_urgencies()), status


def _item_columns():
    return [("id", _("No.")), ("title", _("Item")), ("category", _("Category")),
            ("status", _("Status")), ("urgency", _("Urgency")), ("deadline", _("Deadline")),
            ("beneficiary", _("Who it is for")), ("created_at", _("Recorded"))]


def _item_row(d, names) -> dict:
    return {"id": d.id, "title": d.title, "category": names.get(d.category_id),
            "status": str(STATUS_NAMES["demand"].get(d.status, d.status)),
            "urgency": str(STATUS_NAMES["urgency"].get(d.urgency, d.urgency)),
            "deadline": d.deadline, "beneficiary": d.beneficiary_name,
            "created_at": d.created_at}


@bp.get("/grid/items")
@signed_in
def grid_items(actor: Actor):
    """Every item of my grid: filter by status, kind and urgency, search, page, download."""
    me, _community = _grid_worker(actor)
    la = list_args("status", "category_id", "urgency", "sort", ints=("category_id",))
    filters = dict(la.filters)
    if filters.get("status") not in (*STATUS_NAMES["demand"], *TO_FOLLOW):
        filters.pop("status", None)
    if filters.get("urgency") not in URGENCIES:
        filters.pop("urgency", None)
    sort = filters.pop("sort", None)
    sort = sort if sort in SORTS else "-created_at"
    names = category_names()
    exported = export_or_none(_item_columns(), lambda: [
        _item_row(d, names) for d in demands.list_demands(
            db(), actor=me, filters=filters, per_page=EXPORT_LIMIT, sort=sort).items],
        _("grid-items"))
    if exported is not None:
        return exported
    found = demands.list_demands(db(), actor=me, filters=filters, page=la.page,
                                 per_page=la.per_page, sort=sort)
    now = utcnow()
    return render_template("pages/grid_items.html", la=la, page=found, names=names,
                           rag={d.id: _rag(d, now) for d in found.items},
                           statuses=[*STATUS_NAMES["demand"].items(), *TO_FOLLOW.items()],
                           sorts=list(SORTS.items()), options=category_options(),
                           urgencies=_urgencies())


def _item(me: Actor, demand_id: int):
    try:
        return demands.get_demand(db(), actor=me, demand_id=demand_id)
    except NotFoundError:
        abort(404)


@bp.route("/grid/items/<int:demand_id>", methods=["GET", "POST"])
@signed_in
@confirm(_l("Confirm on the resident's behalf that the work is done? This closes the item."))
def grid_item(actor: Actor, demand_id: int):
    """One item: who it is for, its steps, and (once verified) confirmation on the resident's
    behalf with their rating."""
    me, _community = _grid_worker(actor)
    demand = _item(me, demand_id)
    outcome = confirm_with_rating(me, demand, lambda: _item(me, demand_id),
                                  _("Confirmed on the resident's behalf; the item is closed."),
                                  "pages.grid_item")
    if not isinstance(outcome, tuple):
        return outcome
    demand, errors, values, status = outcome
    return render_template("pages/grid_item.html", demand=demand, errors=errors, values=values,
                           names=category_names(), ratings=RATINGS,
                           rag=_rag(demand, utcnow()), events=demand_events(me, demand.id)), \
        status
