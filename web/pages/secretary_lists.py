"""The secretary's full lists behind the work queue: claims and dispatches, proposals, reports
and micro-wishes of her community. Each is paged in the database, filtered by the query string
(so a filtered list can be shared as a link), searchable where its service reads words, and
downloadable as CSV or XLSX; each waiting row keeps its action one click away (the queue's own
forms, coming back to the same page of the list)."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from web.api.common import db
from web.domain.actor import Actor
from web.models import Community, Grid
from web.pages.export import EXPORT_LIMIT, export_or_none
from web.pages.secretary import WHY, report_details
from web.pages.ui import ListArgs, list_args
from web.pages.views import STATUS_NAMES, bp, category_options, community_of, signed_in
from web.services import assignments, matching, reports, units, wishes
from web.services.base import Page

ORIGINS = {"claim": _l("Self-claim (自主选单)"), "dispatch": _l("Dispatch (社区派单)")}
TITLES = {"claims": _l("Claims and dispatches"), "proposals": _l("Proposals"),
          "reports": _l("Completion reports"), "wishes": _l("Micro-wishes")}


def _community(actor: Actor) -> int:
    community_id = community_of(actor, "secretary")
    if community_id is None:
        abort(403)
    return community_id


def _offered(la: ListArgs, choices: dict[str, dict]) -> dict:
    """The list's filters, less any choice the page does not offer (a hand-edited link shows
    everything rather than an error)."""
    return {k: v for k, v in la.filters.items() if k not in choices or v in choices[k]}


def _unit_options(actor: Actor, community_id: int) -> list[tuple[int, str]]:
    """The approved units of the community's subdistrict, for the unit filter."""
    subdistrict_id = db().get(Community, community_id).subdistrict_id
    return [(u.id, u.name) for u in units.list_units(
        db(), actor=actor, status="approved", subdistrict_id=subdistrict_id,
        per_page=1000).items]


def _status(kind: str, value: str) -> str:
    return str(STATUS_NAMES[kind].get(value, value))


def _list(kind: str, la: ListArgs, fetch: Callable[[int, int], Page], columns: list,
          row: Callable, filters: list, *, searchable: bool = True, placeholder=None, **extra):
    """One full list: its download when `?format=` asks for one, else the page."""
    exported = export_or_none(columns, lambda: [row(x) for x in fetch(1, EXPORT_LIMIT).items],
                              str(TITLES[kind]))
    if exported is not None:
        return exported
    return render_template("pages/secretary_list.html", kind=kind, title=TITLES[kind], la=la,
                           page=fetch(la.page, la.per_page), filters=filters,
                           searchable=searchable, placeholder=placeholder, why=WHY, **extra)


# ---- claims and dispatches --------------------------------------------------------------------

CLAIM_COLUMNS = [("id", _l("No.")), ("item", _l("Item")), ("unit", _l("Unit")),
                 ("origin", _l("How")), ("quantity", _l("Quantity")), ("status", _l("Status")),
                 ("created_at", _l("Since"))]


@bp.get("/secretary/claims")
@signed_in
def secretary_claims(actor: Actor):
    """Claims and dispatches on the community's items: by status and how, words in the item's
    title or the unit's name."""
    community_id = _community(actor)
    la = list_args("status", "origin")
    filters = {**_offered(la, {"status": STATUS_NAMES["assignment"], "origin": ORIGINS}),
               "community_id": community_id}

    def fetch(page: int, per_page: int) -> Page:
        return assignments.list_assignments(db(), actor=actor, filters=filters, page=page,
                                            per_page=per_page)

    def row(a) -> dict:
        return {"id": a.id, "item": a.demand.title, "unit": a.unit.name,
                "origin": str(ORIGINS.get(a.origin, a.origin)), "quantity": a.quantity,
                "status": _status("assignment", a.status), "created_at": a.created_at}

    return _list("claims", la, fetch, CLAIM_COLUMNS, row, [
        ("status", _("Status"), list(STATUS_NAMES["assignment"].items())),
        ("origin", _("How"), list(ORIGINS.items()))],
        placeholder=_("Item title, unit or note"))


# ---- proposals ---------------------------------------------------------------------------------

PROPOSAL_COLUMNS = [("id", _l("No.")), ("run", _l("Match run")), ("item", _l("Item")),
                    ("unit", _l("Unit")), ("quantity", _l("Quantity")), ("score", _l("Score")),
                    ("status", _l("Status"))]


@bp.get("/secretary/proposals")
@signed_in
def secretary_proposals(actor: Actor):
    """The match runs' proposals for the community, best first within a run: by status and
    unit, words in the item's title or the unit's name."""
    community_id = _community(actor)
    la = list_args("status", "unit_id", ints=("unit_id",))
    filters = {**_offered(la, {"status": STATUS_NAMES["proposal"]}),
               "community_id": community_id}

    def fetch(page: int, per_page: int) -> Page:
        return matching.list_proposals(db(), actor=actor, filters=filters, page=page,
                                       per_page=per_page)

    def row(p) -> dict:
        return {"id": p.id, "run": p.run_id, "item": p.demand.title, "unit": p.unit.name,
                "quantity": p.quantity, "score": p.score,
                "status": _status("proposal", p.status)}

    return _list("proposals", la, fetch, PROPOSAL_COLUMNS, row, [
        ("status", _("Status"), list(STATUS_NAMES["proposal"].items())),
        ("unit_id", _("Unit"), _unit_options(actor, community_id))],
        placeholder=_("Item title or unit"))


# ---- completion reports ------------------------------------------------------------------------

REPORT_COLUMNS = [("id", _l("No.")), ("item", _l("Item")), ("unit", _l("Unit")),
                  ("volunteers", _l("Volunteers")), ("hours", _l("Hours")),
                  ("status", _l("Status")), ("submitted_at", _l("Sent"))]


@bp.get("/secretary/reports")
@signed_in
def secretary_reports(actor: Actor):
    """The units' completion reports on the community's items: by status and unit, words in
    the item's title or the unit's name."""
    community_id = _community(actor)
    la = list_args("status", "unit_id", ints=("unit_id",))
    filters = _offered(la, {"status": STATUS_NAMES["report"]})

    about: dict[int, dict] = {}  # filled for the rows fetched, three queries a page

    def fetch(page: int, per_page: int) -> Page:
        found = reports.list_reports(db(), actor=actor, filters=filters, page=page,
                                     per_page=per_page)
        about.update(report_details(found.items))
        return found

    def row(r) -> dict:
        return {"id": r.id, "item": about[r.id]["title"], "unit": about[r.id]["unit"],
                "volunteers": about[r.id]["volunteers"],
                "hours": round(about[r.id]["minutes"] / 60, 1),
                "status": _status("report", r.status), "submitted_at": r.submitted_at}

    return _list("reports", la, fetch, REPORT_COLUMNS, row, [
        ("status", _("Status"), list(STATUS_NAMES["report"].items())),
        ("unit_id", _("Unit"), _unit_options(actor, community_id))],
        placeholder=_("Item title or unit"), about=about)


# ---- micro-wishes ------------------------------------------------------------------------------

WISH_COLUMNS = [("id", _l("No.")), ("title", _l("Wish")), ("grid", _l("Grid")),
                ("status", _l("Status")), ("created_at", _l("Sent")),
                ("reason", _l("Reason")), ("demand_id", _l("Item"))]


@bp.get("/secretary/wishes")
@signed_in
def secretary_wishes(actor: Actor):
    """The residents' micro-wishes in the community: by status and grid, words in the title or
    description."""
    community_id = _community(actor)
    grids = dict(db().query(Grid.id, Grid.name).filter(Grid.community_id == community_id)
                 .order_by(Grid.code))
    la = list_args("status", "grid_id", ints=("grid_id",))
    filters = {**_offered(la, {"status": STATUS_NAMES["wish"], "grid_id": grids}),
               "community_id": community_id}

    def fetch(page: int, per_page: int) -> Page:
        return wishes.list_wishes(db(), actor=actor, filters=filters, page=page,
                                  per_page=per_page)

    def row(w) -> dict:
        return {"id": w.id, "title": w.title, "grid": grids.get(w.grid_id, ""),
                "status": _status("wish", w.status), "created_at": w.created_at,
                "reason": w.decision_reason, "demand_id": w.demand_id}

    return _list("wishes", la, fetch, WISH_COLUMNS, row, [
        ("status", _("Status"), list(STATUS_NAMES["wish"].items())),
        ("grid_id", _("Grid"), list(grids.items()))],
        placeholder=_("Words in the wish"), categories=category_options())
