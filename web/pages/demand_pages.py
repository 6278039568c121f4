"""The secretary's demand list (需求清单): find, record, edit, publish and cancel items, dispatch
by hand (社区派单), and each item's page with its claims, dispatches and full history."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from web.api.common import db
from web.api.demands import DemandIn, DemandPatch, DispatchIn
from web.domain.actor import Actor
from web.domain.states import DemandStatus
from web.errors import LinliError
from web.i18n import TIMEZONE
from web.models import Grid, User
from web.pages.export import EXPORT_LIMIT, export_or_none
from web.pages.secretary import ESCALATION_NAMES, OPEN_STATES, rag_of
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
from web.services import assignments, demands, service_levels, units
from web.services.base import utcnow
from web.services.demands import URGENCIES
from web.services.lovebank import may_oversee

menu("secretary", "pages.demand_list", _l("Demand list"))

FORM_FIELDS = ("title", "category_id", "description", "quantity_needed", "required_skills",
               "urgency", "grid_id", "window_start", "window_end", "deadline",
               "beneficiaries_count", "beneficiary_vulnerable", "beneficiary_name",
               "beneficiary_phone", "beneficiary_address")
EDITABLE = {"draft", "open", "partly_covered", "covered"}


def _grid_options(community_id: int) -> list[tuple[int, str]]:
    return [(grid.id, grid.name) for grid in db().query(Grid).filter(
        Grid.community_id == community_id).order_by(Grid.code)]


def _secretary_community(actor: Actor) -> int:
    community_id = community_of(actor, "secretary")
    if community_id is None:
        abort(403)
    return community_id


def _choices() -> dict:
    return {"statuses": [(k, v) for k, v in STATUS_NAMES["demand"].items()],
            "urgencies": [(u, STATUS_NAMES["urgency"][u]) for u in URGENCIES]}


# The list's extra choices: every unfinished item at once (the work queue's "see all"), the
# service-level lights, and the order.
UNFINISHED = {OPEN_STATES: _l("not finished (open to reported)")}
LIGHTS = {"red": _l("overdue"), "amber": _l("due soon"), "red,amber": _l("overdue or due soon")}
SORTS = {"-created_at": _l("Newest first"), "next_due": _l("Next due time first")}


EXPORT_COLUMNS = [("id", _l("No.")), ("title", _l("Title")), ("category", _l("Category")),
                  ("status", _l("Status")), ("urgency", _l("Urgency")),
                  ("quantity_needed", _l("Quantity needed")),
                  ("quantity_open", _l("Still open")), ("deadline", _l("Deadline")),
                  ("created_at", _l("Recorded at"))]


@bp.get("/secretary/demands")
@signed_in
def demand_list(actor: Actor):
    """The community's demand list: search, filter by status, category and urgency, page."""
    community_id = _secretary_community(actor)
    la = list_args("status", "category_id", "urgency", "skill", "sla_state", "sort",
                   ints=("category_id",))
    filters = {**la.filters, "community_id": community_id}
    if la.filters.get("urgency") not in (None, *URGENCIES):
        filters.pop("urgency")
    if la.filters.get("status") not in (None, *STATUS_NAMES["demand"], *UNFINISHED):
        filters.pop("status")
    if la.filters.get("sla_state") not in (None, *LIGHTS):
        filters.pop("sla_state")
    sort = filters.pop("sort", None)
    sort = sort if sort in SORTS else "-created_at"
    names = category_names()

    def rows():
        every = demands.list_demands(db(), actor=actor, filters=filters, per_page=EXPORT_LIMIT,
                                     sort=sort)
        return [{"id": d.id, "title": d.title, "category": names.get(d.category_id),
                 "status": str(STATUS_NAMES["demand"].get(d.status, d.status)),
                 "urgency": str(STATUS_NAMES["urgency"].get(d.urgency, d.urgency)),
                 "quantity_needed": d.quantity_needed, "quantity_open": d.quantity_open,
                 "deadline": d.deadline, "created_at": d.created_at} for d in every.items]

    exported = export_or_none(EXPORT_COLUMNS, rows, _("demand list"))
    if exported is not None:
        return exported
    page = demands.list_demands(db(), actor=actor, filters=filters, page=la.page,
                                per_page=la.per_page, sort=sort)
    choices = _choices()
    choices["statuses"] += list(UNFINISHED.items())
    return render_template("pages/secretary_demands.html", page=page, la=la, rag=rag_of,
                           due=service_levels.next_due,
                           escalation_names=ESCALATION_NAMES, lights=list(LIGHTS.items()),
                           sorts=list(SORTS.items()), categories=list(names.items()),
                           category_names=names, **choices)


def _form_page(template_args: dict, status: int = 200):
    community_id = template_args.pop("community_id")
    return render_template("pages/secretary_demand_form.html",
                           categories=category_options(), grids=_grid_options(community_id),
                           **_choices(), **template_args), status


def _read_form(form: dict, schema, **extra) -> dict:
    fields = {k: v for k, v in form.items() if k in FORM_FIELDS}
    fields["beneficiary_vulnerable"] = "true" if form.get("beneficiary_vulnerable") else "false"
    return load_form(schema, {**fields, **extra}, lists=("required_skills",),
                     datetimes=("window_start", "window_end", "deadline"))


@bp.route("/secretary/demands/new", methods=["GET", "POST"])
@signed_in
def demand_new(actor: Actor):
    """Record an item on the demand list; publish it at once or keep it as a draft."""
    community_id = _secretary_community(actor)
    if request.method == "GET":
        return _form_page({"community_id": community_id, "values": {}, "errors": {},
                           "demand": None})
    form = request.form.to_dict()
    try:
        data = _read_form(form, DemandIn, community_id=community_id)
        data.pop("community_id")
        data.pop("publish")
        demand = demands.create_demand(db(), actor=actor, community_id=community_id,
                                       data=data, publish=bool(request.form.get("publish")))
    except FormInvalid as exc:
        return _form_page({"community_id": community_id, "values": form, "errors": exc.errors,
                           "demand": None}, 422)
    except LinliError as exc:
        flash(error_text(exc), "danger")
        return _form_page({"community_id": community_id, "values": form,
                           "errors": service_errors(exc), "demand": None}, exc.status)
    flash(_("Item recorded.") if demand.status == "draft" else _("Item published."), "success")
    return redirect(url_for("pages.demand_page", demand_id=demand.id))


def local_input(moment) -> str:
    """A stored UTC time as a `datetime-local` value in Shanghai time ('' when none)."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(TIMEZONE)).strftime("%Y-%m-%dT%H:%M")


def _visible_demand(actor: Actor, demand_id: int):
    try:
        return demands.get_demand(db(), actor=actor, demand_id=demand_id)
    except LinliError:
        abort(404)


@bp.route("/demands/<int:demand_id>/edit", methods=["GET", "POST"])
@signed_in
def demand_edit(actor: Actor, demand_id: int):
    """Edit an item before work starts."""
    demand = _visible_demand(actor, demand_id)
    if community_of(actor, "secretary") != demand.community_id:
        abort(403)
    if request.method == "GET":
        values = {name: getattr(demand, name) for name in FORM_FIELDS}
        for name in ("window_start", "window_end", "deadline"):  # as the form shows them
            values[name] = local_input(values[name])
        values["required_skills"] = "、".join(demand.required_skills or [])
        return _form_page({"community_id": demand.community_id, "values": values,
                           "errors": {}, "demand": demand})
    form = request.form.to_dict()
    try:
        data = _read_form(form, DemandPatch)
        demands.update_demand(db(), actor=actor, demand_id=demand_id, changes=data)
    except FormInvalid as exc:
        return _form_page({"community_id": demand.community_id, "values": form,
                           "errors": exc.errors, "demand": demand}, 422)
    except LinliError as exc:
        db().rollback()
        flash(error_text(exc), "danger")
        return _form_page({"community_id": demand.community_id, "values": form,
                           "errors": service_errors(exc), "demand": demand}, exc.status)
    flash(_("Changes saved."), "success")
    return redirect(url_for("pages.demand_page", demand_id=demand_id))


@bp.get("/demands/<int:demand_id>")
@signed_in
def demand_page(actor: Actor, demand_id: int):
    """One item: what is asked, who holds a share, its history, and the secretary's actions."""
    demand = _visible_demand(actor, demand_id)
    session = db()
    mine = community_of(actor, "secretary") == demand.community_id
    grid_worker = any(str(g.role) == "grid_worker" and g.grid_id is not None
                      and g.grid_id == demand.grid_id for g in actor.grants)
    staff = mine or grid_worker or may_oversee(session, actor, demand.community_id)
    if not staff:  # units and residents have their own pages, which show what is theirs
        abort(404)
    shares = assignments.list_assignments(session, actor=actor, filters={
        "demand_id": demand_id}, per_page=200).items
    try:
        events = demands.history(session, actor=actor, demand_id=demand_id)
    except LinliError:
        events = []
    people = {u.id: u.display_name for u in session.query(User).filter(
        User.id.in_({e.actor_id for e in events if e.actor_id} or {0}))}
    dispatchable = []
    if mine and demand.status in {str(s) for s in (DemandStatus.OPEN,
                                                  DemandStatus.PARTLY_COVERED)}:
        dispatchable = units.list_units(session, actor=actor, status="approved",
                                        community_id=demand.community_id, per_page=200).items
    contact = demand.id in demands.contact_visible_ids(session, actor, [demand])
    return render_template("pages/secretary_demand.html", demand=demand, shares=shares,
                           events=[(e, describe(e)) for e in events], people=people, mine=mine, units=dispatchable,
                           editable=mine and demand.status in EDITABLE, contact=contact,
                           category_names=category_names(), sla=_sla(demand),
                           keeps_clock=(mine or grid_worker)
                           and demand.status in service_levels.RUNNING,
                           errors={}, values={})


def _sla(demand) -> dict:
    """What the item's page shows of its service level: the light, the due times, the level."""
    return {"light": service_levels.sla_state(demand, utcnow()),
            "level": ESCALATION_NAMES.get(demand.escalation_level, "")}


ENTITY = {"demand_items": ("demand", _l("Item")), "assignments": ("assignment", _l("Share")),
          "work_reports": ("report", _l("Report")), "micro_wishes": ("wish", _l("Wish"))}
ACTIONS = {"created": _l("recorded"), "updated": _l("edited"), "published": _l("published"),
           "claimed": _l("claimed"), "dispatched": _l("dispatched"),
           "lead_assigned": _l("lead unit named"), "started": _l("work started"),
           "reported": _l("work reported"), "submitted": _l("submitted"),
           "returned": _l("returned for correction"), "confirmed": _l("confirmed and rated"),
           "coverage": _l("coverage changed"), "report_withdrawn": _l("report withdrawn"),
           "paused": _l("clocks paused"), "resumed": _l("clocks resumed"),
           "escalated": _l("escalated"),
           "rated_unsatisfactory": _l("rated unsatisfactory: open again for rework"),
           "auto_confirmed": _l("confirmed automatically (no one confirmed it in time)")}
# Actions said in words even when they move the status (the move alone would not say why).
TOLD_BY_ACTION = {"rated_unsatisfactory", "auto_confirmed"}


def describe(event) -> str:
    """One history line's what, in the user's language: the thing, and what happened to it."""
    machine, thing = ENTITY.get(event.entity_type, (None, event.entity_type))
    if event.action == "escalated":
        level = (json.loads(event.data or "{}")).get("to")
        what = ESCALATION_NAMES.get(level, ACTIONS["escalated"])
    elif event.to_status and machine and event.action not in TOLD_BY_ACTION:
        what = STATUS_NAMES[machine].get(event.to_status, event.to_status)
    else:
        what = ACTIONS.get(event.action, event.action)
    return f"{thing}: {what}"


def _back(demand_id: int):
    return redirect(url_for("pages.demand_page", demand_id=demand_id))


def _act(demand_id: int, done: str, call) -> object:
    """Run one action on the item, say how it went (done, or the error in words), and go back
    to the item's page."""
    try:
        call()
        flash(done, "success")
    except LinliError as exc:
        flash(error_text(exc), "danger")
    return _back(demand_id)


@bp.post("/demands/<int:demand_id>/publish")
@signed_in
def demand_publish(actor: Actor, demand_id: int):
    return _act(demand_id, _("Item published."), lambda: demands.publish_demand(
        db(), actor=actor, demand_id=demand_id))


@bp.post("/demands/<int:demand_id>/cancel")
@signed_in
@confirm(_l("Cancel this item? Its open claims and dispatches are cancelled with it."))
def demand_cancel(actor: Actor, demand_id: int):
    return _act(demand_id, _("Item cancelled."), lambda: demands.cancel_demand(
        db(), actor=actor, demand_id=demand_id, reason=request.form.get("reason")))


@bp.post("/demands/<int:demand_id>/pause")
@signed_in
@confirm(_l("Pause this item's clocks? It does not run late or escalate while paused."))
def demand_pause(actor: Actor, demand_id: int):
    """Pause the item's service-level clocks, with a reason (waiting on the resident, say)."""
    return _act(demand_id, _("The item's clocks are paused."), lambda: service_levels.pause_demand(
        db(), actor=actor, demand_id=demand_id, reason=request.form.get("reason")))


@bp.post("/demands/<int:demand_id>/resume")
@signed_in
@confirm(_l("Restart this item's clocks? Its due times move on by the time it was paused."))
def demand_resume(actor: Actor, demand_id: int):
    """Restart a paused item's clocks; its due times move on by the paused time."""
    return _act(demand_id, _("The item's clocks run again."), lambda: service_levels.resume_demand(
        db(), actor=actor, demand_id=demand_id, reason=request.form.get("reason")))


@bp.post("/demands/<int:demand_id>/dispatch")
@signed_in
def demand_dispatch(actor: Actor, demand_id: int):
    """Dispatch by hand (社区派单): the unit has a deadline to accept or decline."""
    try:
        data = load_form(DispatchIn, {k: v for k, v in request.form.items()
                                      if k in ("unit_id", "quantity", "resource_id",
                                               "response_hours", "note")})
        assignments.dispatch_demand(db(), actor=actor, demand_id=demand_id, **data)
        flash(_("Dispatched: the unit is asked to accept."), "success")
    except FormInvalid as exc:
        flash(_("Please check what you entered.") + " " + " ".join(
            " ".join(v) for v in exc.errors.values()), "danger")
    except LinliError as exc:
        flash(error_text(exc), "danger")
    return _back(demand_id)
