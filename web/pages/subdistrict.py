"""The subdistrict admin's pages: the dashboard (figures with charts and tables, by month,
community and unit), the red list of units (红榜), unit applications to decide, and the open
items running late.

Charts are drawn here, on the server, as SVG by pygal with no script and no stylesheet from
anywhere: every number in a chart is also in the table under it.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

import pygal
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from pygal.style import Style

from web.api.common import db
from web.domain.actor import Actor
from web.errors import LinliError
from web.models import Community
from web.pages.export import EXPORT_LIMIT, export_or_none
from web.pages.secretary import ESCALATION_NAMES, SLA_NAMES, _rag
from web.pages.ui import confirm, home, is_id, list_args, local_target, menu, service_errors
from web.pages.views import STATUS_NAMES, bp, error_text, signed_in
from web.services import figures, service_levels, units
from web.services.base import Page, utcnow

home("subdistrict_admin", "pages.subdistrict_home")
menu("subdistrict_admin", "pages.subdistrict_home", _l("Dashboard"))
menu("subdistrict_admin", "pages.subdistrict_ranking", _l("Red list of units"))
menu("subdistrict_admin", "pages.subdistrict_units", _l("Unit applications"))
menu("subdistrict_admin", "pages.subdistrict_due", _l("Items running late"))

UNIT_TYPES = {
    "enterprise": _l("Enterprise"), "government": _l("Government body"),
    "public_institution": _l("Public institution"),
    "social_organisation": _l("Social organisation"),
    "non_public_company": _l("Non-public company"), "other": _l("Other"),
}
RAG = SLA_NAMES
MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
TOP_UNITS = 10  # units in the chart; the table under it has them all


def _subdistrict_of(actor: Actor) -> int:
    for grant in actor.grants:
        if str(grant.role) == "subdistrict_admin" and grant.subdistrict_id:
            return grant.subdistrict_id
    abort(403)


def _communities(subdistrict_id: int) -> list[tuple[int, str]]:
    return [(c.id, c.name) for c in db().query(Community).filter(
        Community.subdistrict_id == subdistrict_id).order_by(Community.code, Community.id)]


# ---- the period and the community asked for ---------------------------------------------------

def _month(name: str, errors: dict, last: bool = False) -> date | None:
    """A `type=month` field ('2026-03') as its first (or last) day; an error under it if
    unreadable."""
    text = (request.args.get(name) or "").strip()
    if not text:
        return None
    found = MONTH.match(text)
    if found and 2000 <= int(found.group(1)) <= 2100 and 1 <= int(found.group(2)) <= 12:
        year, month = int(found.group(1)), int(found.group(2))
        return date(year, month, calendar.monthrange(year, month)[1] if last else 1)
    errors[name] = [_("Please enter a month, like 2026-03.")]
    return None


def _figures(actor: Actor, subdistrict_id: int):
    """The figures for the period and community in the query string, with any field errors
    (a bad field is left out, so the page still shows figures)."""
    errors: dict[str, list[str]] = {}
    start, end = _month("from", errors), _month("to", errors, last=True)
    if start and end and end < start:
        errors["to"] = [_("The end is before the start.")]
        end = None
    community_id = request.args.get("community_id", "").strip()
    community_id = int(community_id) if is_id(community_id) else None
    if community_id and community_id not in dict(_communities(subdistrict_id)):
        errors["community_id"] = [_("Not a community of this subdistrict.")]
        community_id = None
    try:
        found = figures.subdistrict_figures(db(), actor=actor, subdistrict_id=subdistrict_id,
                                            start=start, end=end, community_id=community_id)
    except LinliError as exc:
        if not exc.fields:
            raise
        errors.update({"to" if k == "end" else k: v for k, v in service_errors(exc).items()})
        found = figures.subdistrict_figures(db(), actor=actor, subdistrict_id=subdistrict_id)
    return found, errors


def _period_args(found) -> dict:
    """The query string that shows the same period and community again (for links)."""
    args = {"from": found.start.strftime("%Y-%m"), "to": found.end.strftime("%Y-%m")}
    if found.community_id:
        args["community_id"] = found.community_id
    return args


# ---- charts -------------------------------------------------------------------------------------

STYLE = Style(
    font_family="system-ui, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif",
    background="white", plot_background="white", foreground="#212529",
    foreground_strong="#212529", foreground_subtle="#6c757d",
    colors=("#dc3545", "#0d6efd", "#198754", "#fd7e14"),
    label_font_size=14, major_label_font_size=14, legend_font_size=15, title_font_size=18,
    value_font_size=13, tooltip_font_size=14)
_COMMENTS = re.compile(r"<!--.*?-->", re.S)
_SCRIPTS = re.compile(r"<script\b.*?</script>", re.S)


def _measured(label: str) -> str:
    """`label` with zero-width spaces in front, so pygal (which reckons every character 0.6 of
    the font size wide) leaves room for Chinese characters, which take the whole size."""
    wide = sum(1 for ch in label if ord(ch) >= 0x2E80)
    return "\u200b" * -(-wide * 7 // 10) + label


def chart(kind, title: str, labels: list[str], series: list[tuple[str, list]]) -> Markup:
    """An SVG chart to put inline: no script, no comment, nothing fetched from anywhere."""
    rotate = kind is not pygal.HorizontalBar and len(labels) > 6
    drawn = kind(js=[], disable_xml_declaration=True, style=STYLE, title=title, width=800,
                 height=420, legend_at_bottom=True, truncate_label=-1, truncate_legend=-1,
                 print_values=False, x_label_rotation=30 if rotate else 0)
    drawn.x_labels = [_measured(label) for label in labels]
    for name, values in series:
        drawn.add(name, values)
    svg = _SCRIPTS.sub("", _COMMENTS.sub("", drawn.render(is_unicode=True)))
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{escape(title)}" '
                      'style="display:block;width:100%;min-width:34rem;height:auto" ', 1)
    return Markup(svg)


def _charts(found) -> dict[str, Markup]:
    months = [r.label for r in found.by_month]
    top = sorted(found.by_unit, key=lambda r: (-r.minutes, -r.closed, r.label))[:TOP_UNITS]
    return {
        "month": chart(pygal.Bar, _("Items and activities by month"), months, [
            (_("Items claimed"), [r.claimed for r in found.by_month]),
            (_("Items closed"), [r.closed for r in found.by_month]),
            (_("Activities held"), [r.activities for r in found.by_month])]),
        "community": chart(pygal.Bar, _("Items and hours by community"),
                           [r.label for r in found.by_community], [
            (_("Items claimed"), [r.claimed for r in found.by_community]),
            (_("Items closed"), [r.closed for r in found.by_community]),
            (_("Volunteer hours"), [float(r.hours) for r in found.by_community])]),
        "unit": chart(pygal.HorizontalBar, _("Units with the most volunteer hours"),
                      [r.label for r in reversed(top)], [
            (_("Volunteer hours"), [float(r.hours) for r in reversed(top)]),
            (_("Items closed"), [r.closed for r in reversed(top)])]),
    }


# ---- the dashboard --------------------------------------------------------------------------------

def columns(first) -> list[tuple[str, object]]:
    return [("label", first), ("activities", _("Activities held")),
            ("claimed", _("Items claimed")), ("closed", _("Items closed")),
            ("closure_rate", _("Closure rate (%)")),
            ("same_day_rate", _("Accepted the same day (%)")),
            ("three_day_rate", _("Closed within three days (%)")),
            ("hours", _("Volunteer hours")), ("value_yuan", _("Value (yuan)")),
            ("points_issued", _("Points issued")), ("points_redeemed", _("Points redeemed"))]


def _export_rows(rows) -> list[dict]:
    out = []
    for row in rows:
        values = row.as_dict()
        out.append({k: (float(v) if hasattr(v, "quantize") else v) for k, v in values.items()})
    return out


@bp.get("/subdistrict")
@signed_in
def subdistrict_home(actor: Actor):
    """The dashboard: totals, and charts with their tables by month, community and unit."""
    subdistrict_id = _subdistrict_of(actor)
    found, errors = _figures(actor, subdistrict_id)
    by_unit = sorted(found.by_unit, key=lambda r: (-r.minutes, -r.closed, -r.claimed, r.label))
    tables = {"month": (_("Month"), found.by_month),
              "community": (_("Community"), found.by_community),
              "unit": (_("Unit"), by_unit)}
    wanted = request.args.get("table", "month")
    first, rows = tables.get(wanted, tables["month"])
    exported = export_or_none(columns(first), lambda: _export_rows(rows),
                              f"{found.subdistrict.name}-{first}")
    if exported is not None:
        return exported
    la = list_args("from", "to", "community_id")  # the unit table is paged; links keep the period
    start = (la.page - 1) * la.per_page
    units_page = Page(by_unit[start:start + la.per_page], len(by_unit), la.page, la.per_page)
    return render_template("pages/subdistrict_dashboard.html", f=found, errors=errors,
                           charts=_charts(found), tables=tables, columns=columns,
                           units_page=units_page, la=la,
                           communities=_communities(subdistrict_id),
                           period=_period_args(found)), 422 if errors else 200


@bp.get("/subdistrict/ranking")
@signed_in
def subdistrict_ranking(actor: Actor):
    """The red list (红榜): units ranked by their contribution in the period."""
    subdistrict_id = _subdistrict_of(actor)
    found, errors = _figures(actor, subdistrict_id)
    la = list_args("from", "to", "community_id")
    # The ranking is worked out whole (figures.ranking); a search keeps each unit's rank.
    text = (la.filters.get("q") or "").casefold()
    shown = [(n, row) for n, row in enumerate(figures.ranking(found), 1)
             if text in row.label.casefold()]
    exported = export_or_none(
        [("rank", _("Rank")), ("label", _("Unit")), ("closed", _("Items closed")),
         ("hours", _("Volunteer hours")), ("value_yuan", _("Value (yuan)")),
         ("claimed", _("Items claimed"))],
        lambda: [{"rank": n, **_export_rows([row])[0]} for n, row in shown],
        f"{found.subdistrict.name}-{_('Red list')}")
    if exported is not None:
        return exported
    start = (la.page - 1) * la.per_page
    page = Page(shown[start:start + la.per_page], len(shown), la.page, la.per_page)
    return render_template("pages/subdistrict_ranking.html", f=found, errors=errors,
                           page=page, la=la,
                           communities=_communities(subdistrict_id),
                           period=_period_args(found)), 422 if errors else 200


# ---- unit applications -----------------------------------------------------------------------------

def _unit_row(unit) -> dict:
    return {"id": unit.id, "name": unit.name, "type": str(UNIT_TYPES.get(unit.type, unit.type)),
            "contact_name": unit.contact_name, "contact_phone": unit.contact_phone,
            "address": unit.address or "", "applied_at": unit.created_at}


@bp.get("/subdistrict/units")
@signed_in
def subdistrict_units(actor: Actor):
    """Units that applied to join the subdistrict, waiting for a decision."""
    subdistrict_id = _subdistrict_of(actor)
    la = list_args("type")
    if la.filters.get("type") not in (None, *UNIT_TYPES):
        la.filters.pop("type")

    def page_of(page: int, per_page: int):
        return units.list_units(db(), actor=actor, status="applied",
                                subdistrict_id=subdistrict_id, type=la.filters.get("type"),
                                q=la.filters.get("q"), page=page, per_page=per_page)

    exported = export_or_none(
        [("id", "ID"), ("name", _("Unit")), ("type", _("Type")),
         ("contact_name", _("Contact")), ("contact_phone", _("Phone")),
         ("address", _("Address")), ("applied_at", _("Applied at"))],
        lambda: [_unit_row(u) for u in page_of(1, EXPORT_LIMIT).items],
        _("Unit applications"))
    if exported is not None:
        return exported
    return render_template("pages/subdistrict_units.html", page=page_of(la.page, la.per_page),
                           la=la, unit_types=UNIT_TYPES)


def _rejecting() -> bool:
    return request.form.get("decision") != "approve"


@bp.post("/subdistrict/units/<int:unit_id>")
@signed_in
@confirm(_l("Reject the application? The unit is told your reason."), when=_rejecting)
def decide_unit(actor: Actor, unit_id: int):
    """Approve an application, or reject it with a reason."""
    _subdistrict_of(actor)
    try:
        if request.form.get("decision") == "approve":
            unit = units.approve_unit(db(), actor=actor, unit_id=unit_id)
            flash(_("%(name)s is approved and can now claim items.", name=unit.name), "success")
        else:
            unit = units.reject_unit(db(), actor=actor, unit_id=unit_id,
                                     reason=request.form.get("reason"))
            flash(_("%(name)s is rejected; the unit is told why.", name=unit.name), "success")
    except LinliError as exc:
        flash(error_text(exc), "danger")
    return redirect(local_target(request.form.get("next"), url_for("pages.subdistrict_units")))


# ---- items running late -----------------------------------------------------------------------------

@bp.get("/subdistrict/due")
@signed_in
def subdistrict_due(actor: Actor):
    """Items of the subdistrict past a due time (red) or near one (amber), and those escalated
    to the subdistrict (大循环)."""
    subdistrict_id = _subdistrict_of(actor)
    la = list_args("community_id", "rag", "urgency", "escalated", ints=("community_id",))
    if la.filters.get("escalated") not in (None, "1"):
        la.filters.pop("escalated")
    communities = _communities(subdistrict_id)
    names = dict(communities)
    now = utcnow()

    def page_of(page: int, per_page: int):
        return figures.due_items(db(), actor=actor, subdistrict_id=subdistrict_id,
                                 filters=la.filters, page=page, per_page=per_page, now=now)

    def rows():
        return [{"id": d.id, "title": d.title, "community": names.get(d.community_id, ""),
                 "status": str(STATUS_NAMES["demand"].get(d.status, d.status)),
                 "urgency": str(STATUS_NAMES["urgency"].get(d.urgency, d.urgency)),
                 "due": service_levels.next_due(d), "rag": str(RAG[_rag(d, now)]),
                 "escalation": str(ESCALATION_NAMES.get(d.escalation_level, "")),
                 "deadline": d.deadline}
                for d in page_of(1, EXPORT_LIMIT).items]

    exported = export_or_none(
        [("id", "ID"), ("title", _("Item")), ("community", _("Community")),
         ("status", _("Status")), ("urgency", _("Urgency")), ("due", _("Due by")),
         ("rag", _("Running late")), ("escalation", _("Handled at")),
         ("deadline", _("Deadline"))], rows, _("Items running late"))
    if exported is not None:
        return exported
    page = page_of(la.page, la.per_page)
    return render_template("pages/subdistrict_due.html", page=page, la=la,
                           items=[(d, _rag(d, now), service_levels.next_due(d))
                                  for d in page.items], names=names,
                           communities=communities, rag_names=RAG,
                           escalation_names=ESCALATION_NAMES)

