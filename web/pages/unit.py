"""The co-building unit admin's pages: a work queue (dispatches to answer, claims, work to
report), the unit's resource list (资源清单), the demand board to claim from (自主选单), the
unit's claims, dispatches and 1+N teams, reporting work done, and the contribution record with
a printable annual co-building report (年度共建报告).

Every change goes through the same service function the API calls, checked by the API's own
schema; refusals are shown in the user's language, by field where the service names one.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from scoring.hours import hours_to_minutes, minutes_to_hours
from web.api.common import db
from web.api.demands import ClaimIn, ReportIn
from web.api.resources import ResourceIn, ResourcePatch
from web.domain.actor import Actor
from web.domain.states import CONFIRMED_ASSIGNMENT, COVERAGE_STATES, WORKABLE_STATES
from web.errors import LinliError
from web.models import Assignment, Unit
from web.pages.export import EXPORT_LIMIT, export_or_none
from web.pages.ui import (
    FormInvalid,
    confirm,
    home,
    is_id,
    list_args,
    load_form,
    local_target,
    menu,
    translate,
)
from web.pages.views import bp, category_name, category_options, error_text, signed_in
from web.services import (
    assignments,
    categories,
    demands,
    places,
    reports,
    resources,
    units,
    volunteers,
)
from web.services.base import Page, local_date, utcnow
from web.services.resources import KINDS

home("unit_admin", "pages.unit_home")
menu("unit_admin", "pages.unit_home", _l("Work queue"))
menu("unit_admin", "pages.unit_board", _l("Demand board"))
menu("unit_admin", "pages.unit_resources", _l("Our resources"))
menu("unit_admin", "pages.unit_assignments", _l("Our work"))
menu("unit_admin", "pages.unit_contribution", _l("Contribution record"))

# ---- words for the states and kinds ---------------------------------------------------------

KIND_NAMES = {
    "volunteer_service": _l("Volunteer service"), "skill": _l("Professional skill"),
    "venue": _l("Venue"), "goods": _l("Goods"), "funds": _l("Funds"),
}
RESOURCE_STATUS = {
    "draft": _l("draft, not published"), "published": _l("published"),
    "withdrawn": _l("withdrawn"), "expired": _l("expired"),
}
DEMAND_STATUS = {
    "draft": _l("draft"), "open": _l("open for claims"), "partly_covered": _l("partly taken"),
    "covered": _l("fully taken"), "in_progress": _l("work under way"),
    "reported": _l("reported, waiting to be verified"), "verified": _l("verified"),
    "closed": _l("closed"), "cancelled": _l("cancelled by the community"),
}
ASSIGNMENT_STATUS = {
    "pending": _l("waiting for the community's approval"),
    "offered": _l("waiting for our answer"), "approved": _l("approved"),
    "accepted": _l("accepted"), "rejected": _l("rejected by the community"),
    "declined": _l("declined by us"), "withdrawn": _l("withdrawn by us"),
    "recalled": _l("recalled by the community"), "released": _l("given back by us"),
    "expired": _l("not answered in time"), "cancelled": _l("cancelled"),
    "completed": _l("completed"),
}
REPORT_STATUS = {"submitted": _l("waiting to be verified"), "verified": _l("verified"),
                 "returned": _l("returned for correction")}
ORIGINS = {"claim": _l("Self-claim (自主选单)"), "dispatch": _l("Dispatch (社区派单)")}
URGENCY = {"normal": _l("normal"), "urgent": _l("urgent"), "critical": _l("critical")}
STATUS_GROUPS = [
    ("to_report", _l("Work to report")),
    ("offered", _l("Waiting for our answer")),
    ("pending", _l("Waiting for the community's approval")),
    ("approved,accepted", _l("Agreed: work to do")),
    ("completed", _l("Completed")),
    ("rejected,declined,withdrawn,recalled,released,expired,cancelled", _l("Ended")),
]
BOARD_SORTS = {"-urgency": _l("Most urgent first"), "deadline": _l("Nearest deadline first"),
               "-created_at": _l("Newest first"), "-quantity_open": _l("Most still needed")}

# Refusals the services give on these pages, as sentences (their numbers filled in from the
# error's params); the error's `field` param puts the sentence under that form field.
REFUSALS = {
    "the demand does not need that much any more":
        _l("The item no longer needs that many: %(open)s still open."),
    "the resource has not that much left": _l("Your resource has not that much left."),
    "the resource item is not published": _l("That resource is not published; publish it first."),
    "the resource item has expired": _l("That resource has expired."),
    "your unit already holds an open claim on this demand":
        _l("Your unit already holds a share of this item."),
    "the demand is not open for claims or dispatches":
        _l("This item is no longer open for claims."),
    "the unit is not approved": _l("Your unit is not approved, so it cannot do this yet."),
    "the time to answer this dispatch has passed":
        _l("The time to answer this dispatch has passed."),
    "work on this demand has started; the team can no longer change":
        _l("Work on this item has started; the team can no longer change."),
    "work cannot be reported on this demand now": _l("Work cannot be reported on this item now."),
    "only the lead unit reports for the team": _l("Only the lead unit reports for the team."),
    "an expired item cannot be changed": _l("An expired resource cannot be changed."),
}
# The services' field messages, marked here so the catalogue carries their Chinese
# (ui.translate looks each one up).
FIELD_MESSAGES = (
    _l("not a resource item of this unit"), _l("the resource's category does not fit the demand"),
    _l("the demand's place is outside the resource's service area"),
    _l("the resource is not available in the demand's time window"), _l("at least 1"),
    _l("work cannot be reported for days to come"), _l("cannot be negative"),
    _l("between one minute and 31 days"), _l("no such user"), _l("name at least one volunteer"),
    _l("a volunteer without an account needs a name and a phone"), _l("unknown community"),
    _l("more than the total quantity"), _l("a radius needs a location (lat, lng)"),
    _l("less than what is already committed"), _l("the item has already expired"),
    _l("name the communities served, or a radius"), _l("no such active category"),
)
CAPACITY = re.compile(r"^more than the item's capacity per occasion \((?P<n>\d+)\)$")

REPORT_ROWS, MORE_ROWS, MAX_ROWS = 5, 5, 50
ENDED = "rejected,declined,withdrawn,recalled,released,expired,cancelled"


# ---- what every view shares --------------------------------------------------------------------

def my_unit(actor: Actor) -> Unit:
    """The unit the signed-in admin acts for (the first, if they run several); 403 if none."""
    ids = sorted(actor.admin_units)
    if not ids:
        abort(403)
    return units.get_unit(db(), actor=actor, unit_id=ids[0])


def yuan(fen: int | None) -> str:
    """Fen as yuan with two decimals (12345 → 123.45)."""
    return f"{Decimal(fen or 0) / 100:,.2f}"


def hours(minutes: int | None) -> str:
    """Minutes as hours, trailing zeros dropped (150 → 2.5)."""
    text = str(minutes_to_hours(minutes or 0))
    return text.rstrip("0").rstrip(".") if "." in text else text


MAX_YUAN = Decimal(10_000_000)  # ten million yuan: more is a typing mistake


def fen_of(text: str | None) -> int | None:
    """Yuan typed by a person as fen; None when blank; ValueError when not an amount."""
    text = (text or "").strip().replace(",", "").replace("，", "").lstrip("¥￥")
    if not text:
        return None
    try:
        amount = Decimal(text)
        if not amount.is_finite() or not 0 <= amount <= MAX_YUAN:
            raise ValueError(text)
        return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except ArithmeticError:  # InvalidOperation and its kin
        raise ValueError(text) from None


def render(template: str, unit: Unit, status: int = 200, **context):
    """Render a unit page with the words and helpers every unit page uses."""
    return render_template(
        template, unit=unit, kind_names=KIND_NAMES, resource_status=RESOURCE_STATUS,
        demand_status=DEMAND_STATUS, assignment_status=ASSIGNMENT_STATUS,
        report_status=REPORT_STATUS, origins=ORIGINS, urgency_names=URGENCY, yuan=yuan,
        hours=hours, category_name=category_name, needs_report=needs_report, role_of=role_of,
        coverage=COVERAGE_STATES, **context), status


def field_message(message: str) -> str:
    found = CAPACITY.match(message)
    if found:
        return _("More than this resource offers at one time (%(n)s).", n=found["n"])
    return translate(message)


def refusal(exc: LinliError) -> tuple[str, dict[str, list[str]]]:
    """A service's refusal as (a sentence, errors by field), in the user's language."""
    if exc.message in REFUSALS:
        text = str(REFUSALS[exc.message])
        if "%(" in text:
            text = text % {k: exc.params.get(k, "") for k in ("open",)}
        where = exc.params.get("field")
        return text, ({where: [text]} if where else {})
    errors = {name: [field_message(str(m)) for m in (found if isinstance(found, list)
                                                     else [found])]
              for name, found in (exc.fields or {}).items()}
    return error_text(exc), errors


def every(list_fn, **kwargs) -> list:
    """Every row a service list function returns (page by page), up to the export limit."""
    rows: list = []
    page = 1
    while True:
        found = list_fn(db(), page=page, per_page=500, **kwargs)
        rows += found.items
        if not found.items or len(rows) >= min(found.total, EXPORT_LIMIT):
            return rows
        page += 1


def back(default_endpoint: str = "pages.unit_assignments"):
    return redirect(local_target(request.form.get("next"), url_for(default_endpoint)))


def act(call, done: str, default_endpoint: str = "pages.unit_assignments"):
    """Run one service call; say what happened, or why not, and go back."""
    try:
        call()
        flash(done, "success")
    except LinliError as exc:
        flash(refusal(exc)[0], "danger")
    return back(default_endpoint)


def community_options() -> list[tuple[int, str]]:
    return [(c.id, c.name) for c in places.list_communities(db(), per_page=1000).items]


def published_resources(actor: Actor, unit: Unit) -> list:
    return every(resources.list_resources, actor=actor,
                 filters={"unit_id": unit.id, "status": "published"})


# ---- home: the work queue --------------------------------------------------------------------

def needs_report(assignment) -> bool:
    """The lead unit of an agreed team on an item where work may be reported."""
    return (assignment.is_lead and assignment.status in CONFIRMED_ASSIGNMENT
            and assignment.demand.status in WORKABLE_STATES)


QUEUE_ROWS = 10  # rows a queue section shows; each links to its full list
# Work to report (what `needs_report` says, as list filters): the lead's agreed share of an
# item where work may be reported.
TO_REPORT = {"status": ",".join(sorted(CONFIRMED_ASSIGNMENT)), "is_lead": True,
             "demand_status": ",".join(sorted(WORKABLE_STATES))}


def queue_section(actor: Actor, filters: dict) -> Page:
    """The first rows of a queue section (with their teams) and how many there are in all."""
    found = assignments.list_assignments(db(), actor=actor, filters=filters,
                                         per_page=QUEUE_ROWS)
    found.items = with_teams(found.items)
    return found


@bp.get("/unit")
@signed_in
def unit_home(actor: Actor):
    """The unit's work queue: dispatches to answer, work to report, claims and their status —
    the first few of each, how many in all, and a link to the full list."""
    unit = my_unit(actor)
    mine = {"unit_id": unit.id}
    queue = {
        "dispatches": queue_section(actor, {**mine, "status": "offered"}),
        "to_report": queue_section(actor, {**mine, **TO_REPORT}),
        "claims": assignments.list_assignments(db(), actor=actor, filters={
            **mine, "origin": "claim"}, per_page=QUEUE_ROWS),
    }
    figures = contribution(actor, unit, local_date(utcnow()).year)
    return render("pages/unit_home.html", unit, q=queue, figures=figures,
                  resources=published_resources(actor, unit))


# ---- the resource list (资源清单) -------------------------------------------------------------

RESOURCE_COLUMNS = [
    ("id", _l("No.")), ("title", _l("Title")), ("kind", _l("Resource kind")),
    ("category", _l("Category")), ("status", _l("Status")), ("skills", _l("Skills")),
    ("quantity_total", _l("Total")), ("quantity_remaining", _l("Still free")),
    ("capacity", _l("At one time")), ("value_yuan", _l("Value per unit (yuan)")),
    ("communities", _l("Communities served")), ("expires_on", _l("Offered until")),
]


def resource_row(item) -> dict:
    return {"id": item.id, "title": item.title, "kind": str(KIND_NAMES.get(item.kind, item.kind)),
            "category": category_name(item.category),
            "status": str(RESOURCE_STATUS.get(item.status, item.status)), "skills": item.skills,
            "quantity_total": item.quantity_total, "quantity_remaining": item.quantity_remaining,
            "capacity": item.capacity_per_occasion, "value_yuan": yuan(item.value_fen_per_unit),
            "communities": [c.name for c in item.service_communities],
            "expires_on": item.expires_on}


@bp.get("/unit/resources")
@signed_in
def unit_resources(actor: Actor):
    """The unit's resource list: search, filter by status, kind and category; export."""
    unit = my_unit(actor)
    la = list_args("status", "kind", "category_id", ints=("category_id",))
    filters = {**la.filters, "unit_id": unit.id}
    if filters.get("status") not in RESOURCE_STATUS:
        filters.pop("status", None)
    if filters.get("kind") not in KINDS:
        filters.pop("kind", None)
    exported = export_or_none(RESOURCE_COLUMNS, lambda: [resource_row(r) for r in every(
        resources.list_resources, actor=actor, filters=filters)], _("resources"))
    if exported:
        return exported
    page = resources.list_resources(db(), actor=actor, filters=filters, page=la.page,
                                    per_page=la.per_page)
    return render("pages/unit_resources.html", unit, page=page, la=la,
                  categories=category_options())


def resource_form(form, *, creating: bool, unit: Unit, item=None) -> dict:
    """The resource form's fields as the API's schema reads them; FormInvalid lists every
    error by the form's field names."""
    errors: dict[str, list[str]] = {}
    raw = {k: form.get(k, "") for k in (
        "kind", "category_id", "title", "description", "skills", "capacity_per_occasion",
        "quantity_total", "expires_on", "lat", "lng", "radius_m")}
    raw["service_community_ids"] = form.getlist("service_community_ids")
    raw["is_standing_offer"] = "true" if form.get("is_standing_offer") else "false"
    try:
        value = fen_of(form.get("value_yuan"))
        if value is not None:
            raw["value_fen_per_unit"] = value
    except ValueError:
        errors["value_yuan"] = [_("Please enter an amount in yuan, like 80 or 80.50.")]
    start, end = form.get("available_from", "").strip(), form.get("available_to", "").strip()
    ranges = list((item.availability or {}).get("date_ranges") or []) if item else []
    if start or end:
        window = {k: v for k, v in (("start", start), ("end", end)) if v}
        ranges = [window, *ranges[1:]]
    else:
        ranges = ranges[1:]
    raw["availability"] = {**((item.availability or {}) if item else {}), "date_ranges": ranges}
    if creating:
        raw.update(unit_id=unit.id, publish="true" if form.get("publish") else "false")
    else:
        for key in ("expires_on", "lat", "lng", "radius_m"):
            if not raw[key].strip():
                raw[key] = None
    try:
        data = load_form(ResourceIn if creating else ResourcePatch, raw, lists=("skills",))
    except FormInvalid as exc:
        for name, messages in resource_errors(exc.errors).items():
            errors.setdefault(name, messages)  # the form's own word on a field comes first
    if errors:
        raise FormInvalid(errors)
    return stored_dates(data)


def stored_dates(data: dict) -> dict:
    """The availability's dates as ISO text: the schema reads them as dates, and the JSON
    column stores text (the API has the same gap: see the strict xfail in
    tests/pages/test_unit_pages.py)."""
    for window in (data.get("availability") or {}).get("date_ranges", []):
        for key in ("start", "end"):
            if hasattr(window.get(key), "isoformat"):
                window[key] = window[key].isoformat()
    return data


def resource_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Schema and service error names as the form's field names."""
    out: dict[str, list[str]] = {}
    for name, messages in errors.items():
        if name == "value_fen_per_unit":
            name = "value_yuan"
        elif name.startswith("availability.date_ranges"):
            name = "available_to" if name.endswith("end") else "available_from"
        elif name.startswith("skills"):
            name = "skills"
        elif name.startswith("service_community_ids"):
            name = "service_community_ids"
        out.setdefault(name, []).extend(messages)
    return out


def form_values(item=None) -> dict:
    """A resource's current values as the form shows them (empty for a new one)."""
    if item is None:
        return {"kind": "volunteer_service", "capacity_per_occasion": "1",
                "service_community_ids": []}
    first = ((item.availability or {}).get("date_ranges") or [{}])[0]
    return {
        "kind": item.kind, "category_id": item.category_id, "title": item.title,
        "description": item.description, "skills": "、".join(item.skills or []),
        "capacity_per_occasion": item.capacity_per_occasion,
        "quantity_total": item.quantity_total, "value_yuan": yuan(item.value_fen_per_unit)
        .replace(",", ""), "expires_on": item.expires_on or "",
        "available_from": first.get("start", ""), "available_to": first.get("end", ""),
        "lat": "" if item.lat is None else item.lat, "lng": "" if item.lng is None else item.lng,
        "radius_m": item.radius_m or "", "is_standing_offer": item.is_standing_offer,
        "service_community_ids": [str(c.id) for c in item.service_communities],
    }


def posted_values() -> dict:
    values = request.form.to_dict()
    values["service_community_ids"] = request.form.getlist("service_community_ids")
    values["is_standing_offer"] = bool(request.form.get("is_standing_offer"))
    values["publish"] = bool(request.form.get("publish"))
    return values


def own_resource(actor: Actor, unit: Unit, resource_id: int):
    """A resource item of the actor's unit, else 404 (another unit's published item too)."""
    try:
        item = resources.get_resource(db(), actor=actor, resource_id=resource_id)
    except LinliError:
        abort(404)
    if item.unit_id != unit.id:
        abort(404)
    return item


def show_resource_form(unit, item, values, errors=None, status=200):
    return render("pages/unit_resource_form.html", unit, status, item=item, values=values,
                  errors=errors or {}, kinds=KINDS, categories=category_options(),
                  communities=community_options())


@bp.route("/unit/resources/new", methods=["GET", "POST"])
@signed_in
def unit_resource_new(actor: Actor):
    """Add an item to the unit's resource list, as a draft or published at once."""
    unit = my_unit(actor)
    if request.method == "GET":
        return show_resource_form(unit, None, form_values())
    try:
        data = resource_form(request.form, creating=True, unit=unit)
        unit_id, publish = data.pop("unit_id"), data.pop("publish")
        areas = data.pop("service_community_ids")
        item = resources.create_resource(db(), actor=actor, unit_id=unit_id, data=data,
                                         service_community_ids=areas, publish=publish)
    except FormInvalid as exc:
        flash(_("Please check what you entered."), "danger")
        return show_resource_form(unit, None, posted_values(), exc.errors, 422)
    except LinliError as exc:
        text, errors = refusal(exc)
        flash(text, "danger")
        return show_resource_form(unit, None, posted_values(), resource_errors(errors), 422)
    flash(_("Resource “%(title)s” saved.", title=item.title), "success")
    return redirect(url_for("pages.unit_resources"))


@bp.route("/unit/resources/<int:resource_id>/edit", methods=["GET", "POST"])
@signed_in
def unit_resource_edit(actor: Actor, resource_id: int):
    """Edit an item of the unit's resource list."""
    unit = my_unit(actor)
    item = own_resource(actor, unit, resource_id)
    if request.method == "GET":
        return show_resource_form(unit, item, form_values(item))
    try:
        changes = resource_form(request.form, creating=False, unit=unit, item=item)
        resources.update_resource(db(), actor=actor, resource_id=item.id, changes=changes)
    except FormInvalid as exc:
        flash(_("Please check what you entered."), "danger")
        return show_resource_form(unit, item, posted_values(), exc.errors, 422)
    except LinliError as exc:
        text, errors = refusal(exc)
        flash(text, "danger")
        return show_resource_form(unit, item, posted_values(), resource_errors(errors), 422)
    flash(_("Resource “%(title)s” saved.", title=item.title), "success")
    return redirect(url_for("pages.unit_resources"))


@bp.post("/unit/resources/<int:resource_id>/publish")
@signed_in
def unit_resource_publish(actor: Actor, resource_id: int):
    item = own_resource(actor, my_unit(actor), resource_id)
    return act(lambda: resources.publish_resource(db(), actor=actor, resource_id=item.id),
               _("Published: communities can now see it."), "pages.unit_resources")


@bp.post("/unit/resources/<int:resource_id>/withdraw")
@signed_in
@confirm(_l("Withdraw this resource? It leaves the list; work already agreed stands."))
def unit_resource_withdraw(actor: Actor, resource_id: int):
    item = own_resource(actor, my_unit(actor), resource_id)
    return act(lambda: resources.withdraw_resource(db(), actor=actor, resource_id=item.id,
                                                   reason=request.form.get("reason")),
               _("Withdrawn."), "pages.unit_resources")


# ---- the demand board (自主选单) ---------------------------------------------------------------

BOARD_COLUMNS = [
    ("id", _l("No.")), ("title", _l("Item")), ("community", _l("Community")),
    ("category", _l("Category")), ("urgency", _l("Urgency")), ("skills", _l("Skills")),
    ("still_needed", _l("Still needed")), ("needed", _l("Needed in all")),
    ("window_start", _l("From")), ("window_end", _l("Until")), ("deadline", _l("Deadline")),
]


def board_row(demand) -> dict:
    return {"id": demand.id, "title": demand.title, "community": demand.community.name,
            "category": category_name(demand.category),
            "urgency": str(URGENCY.get(demand.urgency, demand.urgency)),
            "skills": demand.required_skills, "still_needed": demand.quantity_open,
            "needed": demand.quantity_needed, "window_start": demand.window_start,
            "window_end": demand.window_end, "deadline": demand.deadline}


@bp.get("/unit/board")
@signed_in
def unit_board(actor: Actor):
    """Published items still open for claims, by category, community, skill and urgency."""
    unit = my_unit(actor)
    la = list_args("category_id", "community_id", "skill", "urgency", "sort",
                   ints=("category_id", "community_id"))
    filters = {k: v for k, v in la.filters.items() if k != "sort"}
    if filters.get("urgency") not in URGENCY:
        filters.pop("urgency", None)
    filters["claimable"] = True
    sort = la.filters.get("sort") if la.filters.get("sort") in BOARD_SORTS else "-urgency"
    exported = export_or_none(BOARD_COLUMNS, lambda: [board_row(d) for d in every(
        demands.list_demands, actor=actor, filters=filters, sort=sort)], _("demand board"))
    if exported:
        return exported
    page = demands.list_demands(db(), actor=actor, filters=filters, page=la.page,
                                per_page=la.per_page, sort=sort)
    return render("pages/unit_board.html", unit, page=page, la=la,
                  categories=category_options(), communities=community_options(),
                  sorts=list(BOARD_SORTS.items()), now=utcnow())


def fitting(resource, demand) -> bool:
    """Whether a resource looks right for an item: its category and the place it serves (the
    service checks this and more when the claim is sent)."""
    category_fits = resource.category.code == "other" or resource.category_id == \
        demand.category_id
    return category_fits and any(c.id == demand.community_id
                                 for c in resource.service_communities)


def show_claim(unit, demand, mine, values, errors=None, status=200):
    ranked = sorted(mine, key=lambda r: (not fitting(r, demand), r.title))
    is_open = demand.quantity_open > 0 and demand.status in COVERAGE_STATES
    return render("pages/unit_claim.html", unit, status, demand=demand, open=is_open,
                  resources=[(r, fitting(r, demand)) for r in ranked], values=values,
                  errors=errors or {})


@bp.route("/unit/board/<int:demand_id>/claim", methods=["GET", "POST"])
@signed_in
def unit_claim(actor: Actor, demand_id: int):
    """Claim part of an item with one of the unit's published resources."""
    unit = my_unit(actor)
    try:
        demand = demands.get_demand(db(), actor=actor, demand_id=demand_id)
    except LinliError:
        abort(404)
    mine = published_resources(actor, unit)
    if request.method == "GET":
        first = next((r for r in mine if fitting(r, demand)), None)
        quantity = min(demand.quantity_open, first.capacity_per_occasion) if first else 1
        return show_claim(unit, demand, mine, {"resource_id": first.id if first else "",
                                               "quantity": max(quantity, 1)})
    values = {k: request.form.get(k, "") for k in ("resource_id", "quantity", "note")}
    try:
        data = load_form(ClaimIn, {**values, "unit_id": unit.id})
        claim = assignments.claim_demand(db(), actor=actor, demand_id=demand.id, **data)
    except FormInvalid as exc:
        flash(_("Please check what you entered."), "danger")
        return show_claim(unit, demand, mine, values, exc.errors, 422)
    except LinliError as exc:
        text, errors = refusal(exc)
        flash(text, "danger")
        db().refresh(demand)
        return show_claim(unit, demand, mine, values, errors, exc.status)
    flash(_("Claimed. The community's secretary decides; you will see it here.")
          if claim.status == "pending" else
          _("Claimed and approved at once: your unit is paired with this community."), "success")
    return redirect(url_for("pages.unit_assignments"))


# ---- our work: claims, dispatches, teams -----------------------------------------------------

ASSIGNMENT_COLUMNS = [
    ("id", _l("No.")), ("item", _l("Item")), ("community", _l("Community")),
    ("origin", _l("How")), ("quantity", _l("Quantity")), ("status", _l("Status")),
    ("role", _l("Our role in the team")), ("team", _l("Team")), ("item_status", _l("Item status")),
    ("created_at", _l("Since")), ("response_deadline", _l("Answer by")),
]


@dataclass
class Work:
    """One assignment with its team (the units agreed on the same item, lead first)."""

    assignment: object
    team: list = field(default_factory=list)

    @property
    def demand(self):
        return self.assignment.demand


def with_teams(items: list) -> list[Work]:
    """Each assignment with its team (when agreed): one query for the whole list, not one per
    row."""
    agreed = {a.demand_id for a in items if a.status in CONFIRMED_ASSIGNMENT}
    teams: dict[int, list] = defaultdict(list)
    if agreed:
        for member in db().scalars(select(Assignment).where(
                Assignment.demand_id.in_(agreed),
                Assignment.status.in_([str(s) for s in CONFIRMED_ASSIGNMENT]))
                .options(selectinload(Assignment.unit))):
            teams[member.demand_id].append(member)
    return [Work(a, sorted(teams[a.demand_id], key=lambda t: (not t.is_lead, t.id))
                 if a.status in CONFIRMED_ASSIGNMENT else []) for a in items]


def role_of(work: Work) -> str:
    if len(work.team) > 1:
        return _("lead unit") if work.assignment.is_lead else _("helper unit")
    return _("lead unit") if work.assignment.is_lead else ""


def assignment_row(work: Work) -> dict:
    a = work.assignment
    return {"id": a.id, "item": a.demand.title, "community": a.demand.community.name,
            "origin": str(ORIGINS.get(a.origin, a.origin)), "quantity": a.quantity,
            "status": str(ASSIGNMENT_STATUS.get(a.status, a.status)), "role": role_of(work),
            "team": [t.unit.name for t in work.team],
            "item_status": str(DEMAND_STATUS.get(a.demand.status, a.demand.status)),
            "created_at": a.created_at, "response_deadline": a.response_deadline}


def my_work(actor: Actor, unit: Unit, la, page: int, per_page: int) -> Page:
    """One page of the unit's assignments matching the list's filters (a status group, how,
    words in the item's title or the note), with their teams."""
    filters = {k: v for k, v in la.filters.items() if k in ("status", "origin", "q")}
    if filters.get("origin") not in ORIGINS:
        filters.pop("origin", None)
    if filters.get("status") == "to_report":
        filters.update(TO_REPORT)
    found = assignments.list_assignments(db(), actor=actor, page=page, per_page=per_page,
                                         filters={**filters, "unit_id": unit.id})
    found.items = with_teams(found.items)
    return found


@bp.get("/unit/work")
@signed_in
def unit_assignments(actor: Actor):
    """The unit's claims, dispatches and teams, with what can be done on each."""
    unit = my_unit(actor)
    la = list_args("status", "origin")
    exported = export_or_none(ASSIGNMENT_COLUMNS, lambda: [
        assignment_row(w) for w in my_work(actor, unit, la, 1, EXPORT_LIMIT).items],
        _("our work"))
    if exported:
        return exported
    page = my_work(actor, unit, la, la.page, la.per_page)
    return render("pages/unit_assignments.html", unit, page=page, la=la,
                  groups=STATUS_GROUPS, resources=published_resources(actor, unit))


def own_assignment(actor: Actor, assignment_id: int):
    """An assignment of the actor's unit, else 404 (whatever else the actor may see)."""
    try:
        found = assignments.get_assignment(db(), actor=actor, assignment_id=assignment_id)
    except LinliError:
        abort(404)
    if found.unit_id not in actor.admin_units:
        abort(404)
    return found


def resource_choice() -> int | None:
    text = (request.form.get("resource_id") or "").strip()
    return int(text) if is_id(text) else None


@bp.post("/unit/work/<int:assignment_id>/accept")
@signed_in
def unit_accept(actor: Actor, assignment_id: int):
    own_assignment(actor, assignment_id)
    return act(lambda: assignments.accept_dispatch(db(), actor=actor, assignment_id=assignment_id,
                                                   resource_id=resource_choice()),
               _("Dispatch accepted: the item is now on your work list."))


@bp.post("/unit/work/<int:assignment_id>/decline")
@signed_in
@confirm(_l("Decline this dispatch? The community is told your reason."))
def unit_decline(actor: Actor, assignment_id: int):
    own_assignment(actor, assignment_id)
    return act(lambda: assignments.decline_dispatch(db(), actor=actor,
                                                    assignment_id=assignment_id,
                                                    reason=request.form.get("reason")),
               _("Dispatch declined; the community can find another unit."))


@bp.post("/unit/work/<int:assignment_id>/withdraw")
@signed_in
@confirm(_l("Withdraw this claim? The quantity goes back to the board."))
def unit_withdraw(actor: Actor, assignment_id: int):
    own_assignment(actor, assignment_id)
    return act(lambda: assignments.withdraw_claim(db(), actor=actor, assignment_id=assignment_id,
                                                  reason=request.form.get("reason") or None),
               _("Claim withdrawn."))


@bp.post("/unit/work/<int:assignment_id>/release")
@signed_in
@confirm(_l("Give this share back? The community is told your reason."))
def unit_release(actor: Actor, assignment_id: int):
    own_assignment(actor, assignment_id)
    return act(lambda: assignments.release_assignment(db(), actor=actor,
                                                      assignment_id=assignment_id,
                                                      reason=request.form.get("reason")),
               _("Share given back."))


@bp.post("/unit/work/<int:assignment_id>/start")
@signed_in
@confirm(_l("Start the work now? The team is settled from then on."))
def unit_start(actor: Actor, assignment_id: int):
    found = own_assignment(actor, assignment_id)
    return act(lambda: demands.start_work(db(), actor=actor, demand_id=found.demand_id),
               _("Work started."))


# ---- reporting work done ---------------------------------------------------------------------

VOLUNTEER_FIELDS = {"user_id": "user", "name": "name", "phone": "phone", "hours": "hours"}


def row_count() -> int:
    try:
        rows = int(request.values.get("rows", REPORT_ROWS))
    except ValueError:
        rows = REPORT_ROWS
    if request.form.get("action") == "more":
        rows += MORE_ROWS
    return max(1, min(rows, MAX_ROWS))


def volunteer_rows(form, rows: int) -> tuple[list[dict], list[int]]:
    """The filled-in volunteer rows (blank rows skipped) and the form row of each."""
    lines, where = [], []
    for i in range(rows):
        line = {key: (form.get(f"v-{i}-{name}") or "").strip()
                for key, name in VOLUNTEER_FIELDS.items()}
        if not any(line.values()):
            continue
        lines.append({k: v for k, v in line.items() if v})
        where.append(i)
    return lines, where


def report_errors(errors: dict[str, list[str]], where: list[int],
                  lines: list[dict]) -> dict[str, list[str]]:
    """Schema and service error names as the form's: volunteers.2.hours → v-<row>-hours."""
    out: dict[str, list[str]] = {}
    for name, messages in errors.items():
        parts = name.split(".")
        if name == "value_fen":
            name = "value_yuan"
        elif parts[0] == "volunteers" and len(parts) > 1 and is_id(parts[1]) \
                and int(parts[1]) < len(where):
            index = int(parts[1])
            if len(parts) > 2:
                column = VOLUNTEER_FIELDS.get(parts[2], "name")
            else:  # the whole row: the name, or else the phone, is what is missing
                column = "phone" if lines[index].get("name") else "name"
            name = f"v-{where[index]}-{column}"
        out.setdefault(name, []).extend(messages)
    return out


def report_form(form, rows: int) -> tuple[dict, list[int], list[dict]]:
    """The report as ReportIn reads it; FormInvalid names the form's fields."""
    lines, where = volunteer_rows(form, rows)
    raw = {k: form.get(k, "") for k in ("started_on", "ended_on", "beneficiaries_served",
                                          "summary")}
    raw["volunteers"] = lines
    errors: dict[str, list[str]] = {}
    try:
        value = fen_of(form.get("value_yuan"))
        if value is not None:
            raw["value_fen"] = value
    except ValueError:
        errors["value_yuan"] = [_("Please enter an amount in yuan, like 80 or 80.50.")]
    if not lines:
        errors["volunteers"] = [_("Name at least one volunteer, with their hours.")]
    try:
        data = load_form(ReportIn, raw)
    except FormInvalid as exc:
        for name, messages in report_errors(exc.errors, where, lines).items():
            errors.setdefault(name, messages)  # the form's own word on a field comes first
    if errors:
        raise FormInvalid(errors)
    return data, where, lines


def show_report(actor: Actor, unit: Unit, work: Work, values, rows, errors=None, status=200):
    people = [p for p in every(volunteers.list_profiles, actor=actor,
                               filters={"unit_id": unit.id}) if p.report_status != "rejected"]
    returned = every(reports.list_reports, actor=actor,
                     filters={"demand_id": work.demand.id, "status": "returned"})
    estimate = 0
    if work.assignment.resource_id is not None:
        resource = resources.get_resource(db(), actor=actor,
                                          resource_id=work.assignment.resource_id)
        estimate = resource.value_fen_per_unit * work.assignment.quantity
    return render("pages/unit_report.html", unit, status, work=work, values=values, rows=rows,
                  errors=errors or {}, people=people, returned=returned,
                  estimate=estimate)


@bp.route("/unit/work/<int:assignment_id>/report", methods=["GET", "POST"])
@signed_in
def unit_report(actor: Actor, assignment_id: int):
    """Report the work done for the team (the lead unit): dates, volunteers and their hours,
    people served and the value in yuan."""
    unit = my_unit(actor)
    found = own_assignment(actor, assignment_id)
    if found.unit_id != unit.id:
        abort(404)
    work = with_teams([found])[0]
    rows = row_count()
    if request.method == "GET" or request.form.get("action") == "more":
        if not needs_report(found):
            flash(_("A report is made by the lead unit, once the team is agreed and before "
                    "the work is reported."), "warning")
            return redirect(url_for("pages.unit_assignments"))
        today = local_date(utcnow()).isoformat()
        values = request.form.to_dict() or {"started_on": today, "ended_on": today}
        return show_report(actor, unit, work, values, rows)
    where, lines = [], []
    try:
        data, where, lines = report_form(request.form, rows)
        data["volunteers"] = [{**{k: v for k, v in line.items() if k != "hours"},
                               "minutes": hours_to_minutes(line["hours"])}
                              for line in data["volunteers"]]
        reports.submit_report(db(), actor=actor, demand_id=found.demand_id, **data)
    except FormInvalid as exc:
        flash(_("Please check what you entered."), "danger")
        return show_report(actor, unit, work, request.form.to_dict(), rows, exc.errors, 422)
    except LinliError as exc:
        text, errors = refusal(exc)
        flash(text, "danger")
        return show_report(actor, unit, work, request.form.to_dict(), rows,
                           report_errors(errors, where, lines), exc.status)
    flash(_("Report sent. The community's secretary verifies it; then the hours count."),
          "success")
    return redirect(url_for("pages.unit_assignments"))


# ---- the contribution record and the annual report -----------------------------------------

@dataclass
class Contribution:
    """A unit's verified work in one year: reports (items, value, people served) and service
    records (volunteer hours), by month and by category."""

    year: int
    items: list[dict]
    months: list[dict]
    categories: list[dict]
    communities: list[dict]
    totals: dict
    years: list[int]


def blank_figures(name="") -> dict:
    return {"name": name, "items": 0, "value_fen": 0, "served": 0, "minutes": 0, "times": 0}


@dataclass
class Tally:
    """Figures added up by month, by category and by community."""

    months: list[dict] = field(default_factory=lambda: [blank_figures(m) for m in range(1, 13)])
    categories: dict = field(default_factory=lambda: defaultdict(blank_figures))
    communities: dict = field(default_factory=lambda: defaultdict(blank_figures))

    def add(self, day, category: str, community: str, **amounts) -> None:
        for bucket in (self.months[day.month - 1], self.categories[category],
                       self.communities[community]):
            for key, amount in amounts.items():
                bucket[key] += amount

    def ranked(self, buckets: dict) -> list[dict]:
        for name, bucket in buckets.items():
            bucket["name"] = name
        return sorted(buckets.values(), key=lambda b: (-b["items"], -b["minutes"], b["name"]))


def contribution(actor: Actor, unit: Unit, year: int) -> Contribution:
    """The figures come from the unit's verified work reports (items, value, people served,
    counted on the day the community verified them, as the subdistrict's figures count them)
    and its service records (volunteer hours, on the day served)."""
    verified = every(reports.list_reports, actor=actor,
                     filters={"unit_id": unit.id, "status": "verified"})
    records = every(reports.list_service_records, actor=actor, filters={"unit_id": unit.id})
    worked_on = {d.id: d for d in every(demands.list_demands, actor=actor,
                                        filters={"unit_id": unit.id})}
    names = {c.id: category_name(c) for c in categories.list_categories(
        db(), include_inactive=True)}
    done_on = {r.id: local_date(r.decided_at or r.submitted_at) for r in verified}
    years = sorted({d.year for d in done_on.values()} | {r.served_on.year for r in records}
                   | {local_date(utcnow()).year}, reverse=True)
    tally, items = Tally(), []
    for report in sorted((r for r in verified if done_on[r.id].year == year),
                         key=lambda r: (done_on[r.id], r.id)):
        item = report_item(report, worked_on.get(report.demand_id), names, done_on[report.id])
        items.append(item)
        tally.add(item["verified_on"], item["category"], item["community"], items=1,
                  value_fen=report.value_fen, served=report.beneficiaries_served)
    people = set()
    for record in (r for r in records if r.served_on.year == year):
        people.add(record.user_id or record.name)
        demand = worked_on.get(record.demand_id)
        tally.add(record.served_on, names.get(record.category_id, ""),
                  demand.community.name if demand else "", minutes=record.minutes, times=1)
    totals = {key: sum(m[key] for m in tally.months)
              for key in ("items", "value_fen", "served", "minutes", "times")}
    totals["people"] = len(people)
    totals["communities"] = len([c for c in tally.communities.values() if c["items"]])
    return Contribution(year=year, items=items, months=tally.months,
                        categories=tally.ranked(tally.categories),
                        communities=tally.ranked(tally.communities), totals=totals, years=years)


def report_item(report, demand, names: dict, verified_on) -> dict:
    """One verified report as a line of the record."""
    minutes = sum(v.minutes for v in report.volunteers)
    return {"verified_on": verified_on, "ended_on": report.ended_on,
            "started_on": report.started_on, "title": demand.title if demand else "",
            "community": demand.community.name if demand else "",
            "category": names.get(demand.category_id, "") if demand else "",
            "volunteers": len(report.volunteers), "hours": hours(minutes),
            "served": report.beneficiaries_served, "value_yuan": yuan(report.value_fen),
            "value_fen": report.value_fen}


def chosen_year() -> int:
    this_year = local_date(utcnow()).year
    try:
        year = int(request.args.get("year", this_year))
    except ValueError:
        return this_year
    return year if 2000 <= year <= this_year + 1 else this_year


def figure_row(bucket: dict) -> dict:
    return {"name": bucket["name"], "items": bucket["items"], "hours": hours(bucket["minutes"]),
            "times": bucket["times"], "served": bucket["served"],
            "value_yuan": yuan(bucket["value_fen"])}


ITEM_COLUMNS = [
    ("verified_on", _l("Verified on")), ("ended_on", _l("Finished on")), ("started_on", _l("Started on")), ("title", _l("Item")),
    ("community", _l("Community")), ("category", _l("Category")),
    ("volunteers", _l("Volunteers")), ("hours", _l("Hours")), ("served", _l("People served")),
    ("value_yuan", _l("Value (yuan)")),
]
FIGURE_COLUMNS = [("items", _l("Items done")), ("hours", _l("Volunteer hours")),
                  ("times", _l("Volunteer turns")), ("served", _l("People served")),
                  ("value_yuan", _l("Value (yuan)"))]
TABLES = {"month": _l("Month"), "category": _l("Category"), "community": _l("Community")}


def contribution_export(record: Contribution):
    table = request.args.get("table")
    name = _("contribution") + f"-{record.year}"
    if table in TABLES:
        columns = [("name", TABLES[table]), *FIGURE_COLUMNS]
        buckets = {"month": record.months, "category": record.categories,
                   "community": record.communities}[table]
        return export_or_none(columns, lambda: [figure_row(b) for b in buckets],
                              f"{name}-{table}")
    return export_or_none(ITEM_COLUMNS, lambda: record.items, name)


@bp.get("/unit/contribution")
@signed_in
def unit_contribution(actor: Actor):
    """The unit's verified hours, items and value for a year, by month and by category."""
    unit = my_unit(actor)
    record = contribution(actor, unit, chosen_year())
    exported = contribution_export(record)
    if exported:
        return exported
    return render("pages/unit_contribution.html", unit, record=record, figure_row=figure_row,
                  tables=TABLES)


@bp.get("/unit/contribution/annual")
@signed_in
def unit_annual_report(actor: Actor):
    """The printable annual co-building report (年度共建报告)."""
    unit = my_unit(actor)
    record = contribution(actor, unit, chosen_year())
    return render("pages/unit_annual.html", unit, record=record, figure_row=figure_row,
                  today=local_date(utcnow()),
                  kinds=Counter(r.kind for r in published_resources(actor, unit)))
